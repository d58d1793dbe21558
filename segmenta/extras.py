"""Commands that run a service's code, which `segmenta[cli]` alone does not install."""

from __future__ import annotations

import importlib
from types import ModuleType

import typer

OURS = frozenset({"services", "shared", "segmenta"})


def import_for(module: str, *, extra: str, command: str) -> ModuleType:
    """``module``, or a clear message naming the extra to install and exit code 2."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] in OURS:
            raise  # our own module missing is a bug, not an extra to install
        typer.echo(
            f"segmenta {command} needs the {extra} extra: pip install 'segmenta[{extra}]'", err=True
        )
        raise typer.Exit(2) from None
