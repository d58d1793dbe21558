"""``segmenta personalize ope``: off-policy evaluation of an analyst's own decision log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from segmenta.extras import import_for

app = typer.Typer(
    help="Personalisation: offer policies and their evaluation.", no_args_is_help=True
)


@app.callback()
def personalize() -> None:
    """Personalisation: offer policies and their evaluation."""
    # The callback keeps this a command group (``personalize ope``, room for more
    # commands) rather than Typer collapsing a one-command app into that command.


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
    csv_log = import_for(
        "services.personalize.evaluation.csv_log", extra="personalize", command="personalize ope"
    )
    ope_module = import_for(
        "services.personalize.modeling.ope", extra="personalize", command="personalize ope"
    )
    try:
        decisions, features = csv_log.read_log(log, context)
        report = ope_module.evaluate(
            decisions, context=features, n_bootstrap=bootstrap, seed=seed, confidence=confidence
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--log") from None
    print(json.dumps(report.to_dict(), indent=2))
