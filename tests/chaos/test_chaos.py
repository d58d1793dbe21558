"""The whole platform under faults: every acknowledged record reaches every stage once.

Plain ``pytest`` runs a short chaos run (a kill of an API, of two workers and of the relay,
Redis and PostgreSQL restarted: about a minute of load); ``make chaos`` runs every fault of
the topology (``SEGMENTA_CHAOS=full``, about three minutes of load); ``python -m
bench.chaos`` runs that longer and writes the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.chaos import every_fault, short_faults
from tests.support.chaos_run import run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.chaos]


def test_nothing_acknowledged_is_lost_or_doubled_whatever_dies(tmp_path: Path) -> None:
    full = os.environ.get("SEGMENTA_CHAOS") == "full"
    report = run_chaos(tmp_path, every_fault() if full else short_faults(), gap_s=2)
    print(report.markdown())
    assert not report.gave_up, report.gave_up
    assert report.drain_s is not None, f"the pipeline did not drain\n{report.markdown()}"
    *stages, decisions = report.stages
    for stage in stages:
        assert stage.accepted > 0, stage.name
        assert stage.lost == [], f"{stage.name}: lost {stage.lost[:10]}\n{report.markdown()}"
    for stage in report.stages:
        assert stage.duplicated == [], f"{stage.name}: {stage.duplicated[:10]}"
    # Decisions live in Redis (AOF `everysec`) until drained, about a second: a Redis that
    # loses its data, or is SIGKILLed before writing its file, loses those, and only those.
    assert len(decisions.lost) == report.decisions_lost_by_design, report.markdown()
    for fault in report.faults:
        assert fault.recovery_s is not None, f"no recovery after {fault.name}"
        assert fault.accepted > 0, f"nothing accepted after {fault.name}"
