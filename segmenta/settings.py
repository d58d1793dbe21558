"""The CLI's settings, and the environment it hands to the processes it starts."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topology import SERVICES


def _port_overrides() -> dict[str, int]:
    # SEGMENTA_<SERVICE>_PORT moves one API off the registry's port (tests run several
    # platforms side by side). Read per service so a new registry entry needs no field here.
    overrides: dict[str, int] = {}
    for service in SERVICES:
        value = os.environ.get(f"SEGMENTA_{service.name.upper()}_PORT")
        if value:
            overrides[service.name] = int(value)
    return overrides


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGMENTA_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    # Embedded PostgreSQL/Redis data, and the URLs of a running `segmenta up`.
    data_dir: Path = Path(".segmenta")
    api_url: str | None = None
    api_key: str | None = None
    port_overrides: dict[str, int] = Field(default_factory=_port_overrides, exclude=True)

    def port(self, service: str) -> int:
        """Where ``segmenta up`` serves ``service``'s API: the registry's port unless moved."""
        default = next(s.port for s in SERVICES if s.name == service)
        return self.port_overrides.get(service, default)


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment plus ``overrides``, for the platform's processes."""
    env = dict(os.environ)
    env.update(overrides)
    return env
