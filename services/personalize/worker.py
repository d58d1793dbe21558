"""The personalize service's Celery worker (`celery -A services.personalize.worker worker`).

The service's task handlers arrive with its issue; until then this is the worker's
skeleton (the platform's queue and reliability settings, no tasks) and `segmenta up` does
not start it. Work relayed for the service waits in its Redis queue meanwhile.
"""

from __future__ import annotations

from services.personalize import erasure as _erasure  # noqa: F401 (registers personalize.erase_customer)
from shared.celery_app import create_celery_app
from shared.logging import configure_logging
from shared.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level)
app = create_celery_app("segmenta-personalize", settings)
