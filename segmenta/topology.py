"""The platform's processes, defined once.

``segmenta up`` runs these as local processes; ``deploy/Procfile`` and
``deploy/docker-compose.yml`` describe the same set (a test keeps them in step).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    args: tuple[str, ...]
    port: int | None = None


def _worker(service: str) -> ProcessSpec:
    return ProcessSpec(
        f"{service}-worker",
        (
            sys.executable,
            "-m",
            "celery",
            "-A",
            f"services.{service}.worker",
            "worker",
            "-Q",
            service,
            "--concurrency",
            "1",
            "--prefetch-multiplier",
            "1",
            "-n",
            f"{service}@%h",
            "--loglevel",
            "WARNING",
        ),
    )


def _api(service: str, port: int) -> ProcessSpec:
    app = f"services.{service}.main:app"
    args = ("--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    return ProcessSpec(
        service if service == "ingest" else f"{service}-api",
        (sys.executable, "-m", "uvicorn", app, *args),
        port=port,
    )


# Services whose Celery tasks exist. Until a service's handlers land, its queue simply
# holds the relayed messages (Redis keeps them) and nothing is consumed or lost.
WORKER_SERVICES: tuple[str, ...] = ("nlp", "segment")


def _beat(data_dir: str) -> ProcessSpec:
    schedule = f"{data_dir}/celerybeat-schedule"
    args = ("-m", "celery", "-A", "services.segment.worker", "beat", "--schedule", schedule)
    return ProcessSpec("segment-beat", (sys.executable, *args, "--loglevel", "WARNING"))


def processes(
    ingest_port: int = 8001, nlp_port: int = 8004, segment_port: int = 8002, data_dir: str = "."
) -> list[ProcessSpec]:
    return [
        _api("ingest", ingest_port),
        ProcessSpec("relay", (sys.executable, "-m", "services.ingest.relay")),
        _api("nlp", nlp_port),
        _api("segment", segment_port),
        *(_worker(service) for service in WORKER_SERVICES),
        _beat(data_dir),
    ]
