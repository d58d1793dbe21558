"""The work the platform still owes: outbox rows not yet done, and dead letters.

Shown by every API's ``/readyz`` and ``/metrics``, so an operator sees a stalled pipeline
(rows waiting with nothing moving them) without reading the database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from prometheus_client import Gauge
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

_BACKLOG = text(
    """
    SELECT count(*) FILTER (WHERE published_at IS NULL),
           count(*) FILTER (WHERE published_at IS NOT NULL),
           coalesce(extract(epoch FROM now() - min(created_at)), 0),
           (SELECT count(*) FROM dead_letter)
    FROM outbox
    """
)

WAITING = Gauge("segmenta_outbox_waiting", "Outbox rows not yet published")
IN_FLIGHT = Gauge("segmenta_outbox_in_flight", "Outbox rows published and not yet done")
OLDEST = Gauge("segmenta_outbox_oldest_age_seconds", "Age of the oldest outbox row not done")
DEAD = Gauge("segmenta_dead_letters", "Work given up on, kept with its reason")


@dataclass(frozen=True)
class Backlog:
    waiting: int
    in_flight: int
    oldest_age_s: float
    dead_letters: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def read_backlog(engine: Engine) -> Backlog | None:
    """The backlog now (None when Postgres does not answer), also set on the gauges."""
    try:
        with engine.connect() as connection:
            waiting, in_flight, oldest, dead = connection.execute(_BACKLOG).one()
    except SQLAlchemyError:
        return None
    backlog = Backlog(int(waiting), int(in_flight), round(float(oldest), 1), int(dead))
    WAITING.set(backlog.waiting)
    IN_FLIGHT.set(backlog.in_flight)
    OLDEST.set(backlog.oldest_age_s)
    DEAD.set(backlog.dead_letters)
    return backlog
