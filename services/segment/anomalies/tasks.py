"""The anomaly task handlers, registered in the segment ``worker.py``."""

from __future__ import annotations

from sqlalchemy import Engine

from services.segment.anomalies.pipeline import detect_run
from services.segment.settings import SegmentSettings
from shared.reliable import Subject


def detect(engine: Engine, settings: SegmentSettings, subject: Subject) -> None:
    """Work one anomaly run (a no-op once it is finished); `shared.runs.RunBusyError`,
    which the long-job runner turns into a later delivery, while its tenant works another."""
    detect_run(engine, settings, subject.subject_id)
