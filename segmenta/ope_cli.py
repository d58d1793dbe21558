"""``segmenta personalize ope``: off-policy evaluation of an analyst's own decision log."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from services.personalize.modeling.ope import DecisionLog, evaluate

REQUIRED = ("action", "reward", "logging_propensity", "target_probability")
app = typer.Typer(
    help="Personalisation: offer policies and their evaluation.", no_args_is_help=True
)


@app.callback()
def personalize() -> None:
    """Personalisation: offer policies and their evaluation."""
    # The callback keeps this a command group (``personalize ope``, room for more
    # commands) rather than Typer collapsing a one-command app into that command.


def read_log(path: Path, context: list[str] | None) -> tuple[DecisionLog, np.ndarray | None]:
    """The log and its context matrix (``context`` columns; None: every other column)."""
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        header = [name.strip() for name in reader.fieldnames or []]
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    for name in (*REQUIRED, *(context or [])):
        if name not in header:
            raise ValueError(f"column {name!r} is missing (the header has: {', '.join(header)})")
    if not rows:
        raise ValueError("the log has no rows")
    extra = [name for name in header if name not in REQUIRED] if context is None else context
    log = DecisionLog.from_arrays(
        [row["action"] for row in rows], *(_column(rows, name) for name in REQUIRED[1:])
    )
    features = np.column_stack([_column(rows, name) for name in extra]) if extra else None
    return log, features


def _column(rows: list[dict[str, str]], name: str) -> list[float]:
    values = []
    for line, row in enumerate(rows, start=2):
        try:
            value = float(row.get(name, ""))
        except ValueError:
            raise ValueError(f"column {name!r}, line {line}: not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"column {name!r}, line {line}: not a finite number")
        values.append(value)
    return values


@app.command("ope")
def ope(
    log: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="CSV: action,reward,logging_propensity,target_probability[,context...]",
        ),
    ],
    context: Annotated[
        list[str] | None,
        typer.Option(help="Context columns for the DR reward model (default: all others)"),
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=100, help="Bootstrap resamples")] = 1000,
    seed: Annotated[int, typer.Option(help="Bootstrap seed")] = 0,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
) -> None:
    """Estimate the target policy's mean reward per decision (IPS, SNIPS, DR) as JSON."""
    try:
        decisions, features = read_log(log, context)
        report = evaluate(
            decisions, context=features, n_bootstrap=bootstrap, seed=seed, confidence=confidence
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log") from None
    print(json.dumps(report.to_dict(), indent=2))
