"""The outbox relay process: ``python -m shared.relay``.

Publishes committed outbox rows as batched Celery tasks and re-drives stale ones. Run one
or several (``SKIP LOCKED`` shares the rows out); SIGTERM or Ctrl-C stop it between passes.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from redis import Redis

from shared.broker_watch import BrokerWatch
from shared.celery_app import create_celery_app
from shared.db import create_db_engine
from shared.logging import configure_logging
from shared.outbox import OutboxRelay
from shared.settings import Settings, get_settings

log = logging.getLogger("segmenta.relay")


def build_relay(settings: Settings) -> OutboxRelay:
    celery_app = create_celery_app("segmenta-relay", settings)
    watch = BrokerWatch(
        redis=Redis.from_url(settings.require_redis_url(), socket_timeout=5),
        celery_app=celery_app,
        grace_s=settings.relay_lost_after_s,
    )
    return OutboxRelay(
        engine=create_db_engine(settings, pool_size=2),
        celery_app=celery_app,
        batch_size=settings.relay_batch_size,
        stale_after_s=settings.relay_stale_after_s,
        watch=watch,
    )


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    stop = threading.Event()

    def request_stop(signum: int, _: FrameType | None) -> None:
        log.info("signal %d: stopping after this pass", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    relay = build_relay(settings)
    log.info("outbox relay started")
    relay.run(stop=stop, poll_interval_s=settings.relay_poll_interval_s)
    log.info("outbox relay stopped")


if __name__ == "__main__":
    main()
