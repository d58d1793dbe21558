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


# Services whose Celery tasks exist. Until a service's handlers land, its queue simply
# holds the relayed messages (Redis keeps them) and nothing is consumed or lost.
WORKER_SERVICES: tuple[str, ...] = ()


def processes(ingest_port: int = 8001) -> list[ProcessSpec]:
    return [
        ProcessSpec(
            "ingest",
            (
                sys.executable,
                "-m",
                "uvicorn",
                "services.ingest.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(ingest_port),
                "--no-access-log",
            ),
            port=ingest_port,
        ),
        ProcessSpec("relay", (sys.executable, "-m", "services.ingest.relay")),
        *(_worker(service) for service in WORKER_SERVICES),
    ]
