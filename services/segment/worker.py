"""The segment service's Celery worker: ``celery -A services.segment.worker worker -Q segment``.

The service's own task handlers arrive with its issue; until then the worker runs with
the platform's queue and reliability settings and consumes nothing of its own. Work
already enqueued for it waits in the outbox, which re-drives it once the handlers exist.
"""

from __future__ import annotations

from shared.celery_app import create_celery_app
from shared.logging import configure_logging
from shared.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level)
app = create_celery_app("segmenta-segment", settings)
