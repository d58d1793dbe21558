"""``segmenta``: run the platform, manage keys, import and generate data."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segmenta import platform
from segmenta.churn_report import churn_risks
from segmenta.client import upload
from segmenta.console import make_console
from segmenta.demo.generate import generate as generate_shop
from segmenta.demo_recommend import a_buyer, recommendations_table
from segmenta.extras import import_for
from segmenta.ope_cli import app as personalize_app
from segmenta.ops_cli import dead_letters_app
from segmenta.ops_cli import status as status_command
from segmenta.reports import (
    segments_table,
    sentiment_summary,
    train_segmentation,
    wait_for_analyses,
)
from segmenta.settings import CliSettings
from shared.auth import Scope, create_api_key, list_api_keys, revoke_api_key
from shared.db import create_db_engine, session_scope
from shared.db import migrate as migrate_schema
from shared.runs import RunStatus
from shared.settings import PostgresSettings

app = typer.Typer(help="Segmenta: self-hosted AI customer segmentation.", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
clv_app = typer.Typer(help="Customer lifetime value models.", no_args_is_help=True)
app.add_typer(clv_app, name="clv")
app.add_typer(personalize_app, name="personalize")
app.add_typer(dead_letters_app, name="dead-letters")
app.command("status")(status_command)
out = make_console()
IMPORT_ORDER = ("customers", "products", "orders", "events", "reviews", "transcripts")


def _engine(settings: CliSettings):  # type: ignore[no-untyped-def]
    return create_db_engine(PostgresSettings(database_url=platform.database_url(settings)))


@app.command()
def up() -> None:
    """Run the platform in the foreground; Ctrl-C stops everything.

    Without SEGMENTA_DATABASE_URL / SEGMENTA_REDIS_URL, a real PostgreSQL and Redis are
    started from pip packages with their data in SEGMENTA_DATA_DIR (default .segmenta/).
    """
    settings = CliSettings()
    with platform.running_platform(settings) as running:
        out.print(f"[green]Segmenta is up.[/] Ingest API: {running.endpoints.api_url}/docs")
        out.print("Create a key with [bold]segmenta keys create --client NAME --scopes admin[/]")
        running.wait()


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    migrate_schema(platform.database_url(CliSettings()))
    out.print("[green]schema is up to date[/]")


@keys_app.command("create")
def keys_create(
    client: Annotated[str, typer.Option(help="Who the key is for, e.g. 'storefront'")],
    scopes: Annotated[
        list[str], typer.Option(help=f"Repeat or comma-separate: {', '.join(Scope)}")
    ],
    tenant: Annotated[str, typer.Option(help="The tenant (shop) the key belongs to")] = "default",
    rate_limit: Annotated[int | None, typer.Option(help="Requests per minute")] = None,
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    names = [s.strip() for item in scopes for s in item.split(",") if s.strip()]
    try:
        with session_scope(_engine(CliSettings())) as session:
            issued = create_api_key(
                session,
                client=client,
                scopes=names,
                tenant=tenant,
                rate_limit_per_minute=rate_limit,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from None
    out.print(f"Key for [bold]{client}[/] (tenant {tenant}; {', '.join(issued.scopes)}):")
    print(issued.key)
    out.print("[yellow]Store it now: it cannot be shown again.[/]")


@keys_app.command("list")
def keys_list() -> None:
    """List keys (prefixes only; secrets are never shown)."""
    table = Table("prefix", "client", "tenant", "scopes", "created", "revoked")
    with session_scope(_engine(CliSettings())) as session:
        for key in list_api_keys(session):
            table.add_row(
                key.prefix,
                key.client,
                str(key.tenant_id),
                ",".join(key.scopes),
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.revoked_at or ''}",
            )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(prefix: str) -> None:
    """Revoke a key by its prefix; it stops working at once."""
    with session_scope(_engine(CliSettings())) as session:
        if not revoke_api_key(session, prefix=prefix):
            raise typer.BadParameter(f"no key with prefix {prefix}", param_hint="PREFIX")
    out.print(f"revoked {prefix}")


@app.command("import")
def import_file(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(IMPORT_ORDER)}")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSONL")],
    key: Annotated[str | None, typer.Option(envvar="SEGMENTA_API_KEY")] = None,
    api_url: Annotated[str | None, typer.Option(envvar="SEGMENTA_API_URL")] = None,
) -> None:
    """Stream a CSV or JSONL file to the ingest API, with a progress bar."""
    if kind not in IMPORT_ORDER:
        raise typer.BadParameter(f"unknown kind {kind!r}", param_hint="KIND")
    if not key:
        raise typer.BadParameter("an ingest:write key is needed", param_hint="--key")
    settings = CliSettings()
    state = platform.read_state(settings)
    url = api_url or (state.api_url if state else f"http://127.0.0.1:{settings.port('ingest')}")
    result = upload(url, key, kind, file)
    out.print_json(json.dumps(result))


@app.command()
def generate(
    customers: Annotated[int, typer.Option(min=1)] = 2_000,
    seed: int = 7,
    out_dir: Annotated[Path, typer.Option("--out")] = Path("demo-data"),
) -> None:
    """Write a realistic demo shop (JSONL per record kind, plus truth.csv of personas)."""
    counts = generate_shop(customers, seed, out_dir)
    out.print(f"wrote {out_dir}/: " + ", ".join(f"{n:,} {kind}" for kind, n in counts.items()))


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1)] = 2_000,
    seed: int = 7,
    wait: Annotated[bool, typer.Option(help="Keep running after loading")] = True,
    storefront_seconds: Annotated[
        int, typer.Option(min=0, help="Serve offers to a simulated storefront this long")
    ] = 60,
) -> None:
    """Start the platform, load a demo shop through the API, and show where to look."""
    settings = CliSettings()
    with platform.running_platform(settings) as running:
        api = running.endpoints.api_url
        data = settings.data_dir / "demo"
        counts = generate_shop(customers, seed, data)
        out.print(f"Generated a demo shop: {counts}")
        with session_scope(_engine_for(running.endpoints.database_url)) as session:
            key = create_api_key(session, client="demo", scopes=["admin"], tenant="demo").key
        summary = Table("kind", "accepted", "duplicates", "rejected")
        for kind in IMPORT_ORDER:
            result = upload(api, key, kind, data / f"{kind}.jsonl")
            summary.add_row(
                kind, *(str(result[k]) for k in ("accepted", "duplicates", "rejected_count"))
            )
        out.print(summary)
        engine = _engine_for(running.endpoints.database_url)
        if wait_for_analyses(engine, tenant="demo"):
            out.print(sentiment_summary(engine, tenant="demo"))
        else:
            out.print("[yellow]The nlp service is still analysing; see the nlp API later.[/]")
        segment_url = running.endpoints.segment_url
        run = train_segmentation(segment_url, key)
        if run.get("unchanged"):
            out.print(f"Nothing changed since segmentation run {run['id']}: not trained again.")
        if run["status"] == RunStatus.SUCCEEDED:
            out.print(segments_table(segment_url, key))
        else:
            out.print(
                f"[yellow]Segmentation run {run['id']} is {run['status']}[/] "
                f"{run.get('error') or ''}"
            )
        out.print(recommendations_table(running.endpoints.personalize_url, key, a_buyer(data)))
        out.print(churn_risks(segment_url, key, engine))
        if storefront_seconds:
            _demo_storefront(running.endpoints, key, data, storefront_seconds)
        out.print(f"\n[green]Demo loaded.[/] API docs: {api}/docs", soft_wrap=True)
        out.print(f"Dashboard: {segment_url}/dashboard (paste the key below)", soft_wrap=True)
        out.print(f"Segments API: {segment_url}/docs", soft_wrap=True)
        personalize_url = running.endpoints.personalize_url
        out.print(
            f"Offers: {personalize_url}/docs, dashboard {personalize_url}/dashboard", soft_wrap=True
        )
        out.print(f"Sentiment API: {running.endpoints.nlp_url}/docs", soft_wrap=True)
        out.print(f"Metrics: {api}/metrics", soft_wrap=True)
        out.print("Demo admin key (tenant 'demo'):")
        print(key)
        out.print(f"Data files: {data}/ (truth.csv has each customer's behaviour type)")
        if wait:
            out.print("Ctrl-C stops the platform.")
            running.wait()


def _demo_storefront(
    endpoints: platform.Endpoints, admin_key: str, data: Path, seconds: int
) -> None:
    """A simulated storefront asks for offers; print what the bandit learnt per segment."""
    offers = import_for("segmenta.demo.offers", extra="personalize", command="demo")
    personalize_url = endpoints.personalize_url
    with session_scope(_engine_for(endpoints.database_url)) as session:
        scopes = ["offers:read", "feedback:write"]
        # A simulated storefront asks as fast as the machine answers: no per-minute quota.
        key = create_api_key(
            session,
            client="storefront",
            scopes=scopes,
            tenant="demo",
            rate_limit_per_minute=10_000_000,
        ).key
    out.print(f"Serving offers to a simulated storefront for {seconds} s ...")
    tally = offers.run_storefront(
        personalize_url, admin_key, key, data / "truth.csv", seconds=seconds
    )
    home, oracle = tally.rate("home"), tally.rate("oracle")
    out.print(
        f"{tally.answers} offers answered; conversion {home:.1%} "
        f"(a random offer: {tally.rate('uniform (true)'):.1%}, "
        f"each visitor's best: {oracle:.1%})"
    )
    out.print(offers.learned_table(personalize_url, admin_key))


@clv_app.command("fit")
def clv_fit(
    transactions: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="CSV: customer_id,date,amount")
    ],
    calibration_end: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="Fit on purchases up to this day")
    ],
    observation_end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Predict the purchases after calibration"),
    ] = None,
    unit: Annotated[str, typer.Option(help="Time unit: W (weeks) or D (days)")] = "W",
    horizon: Annotated[float | None, typer.Option(help="CLV horizon in UNIT (1 year)")] = None,
    discount_rate: Annotated[float, typer.Option(help="Annual discount rate")] = 0.10,
) -> None:
    """Fit BG/NBD + Gamma-Gamma on your transactions; print parameters and holdout error."""
    # The fit runs the segment service's numpy/scipy code, which segmenta[cli] lacks.
    clv = import_for("services.segment.clv.cli", extra="segment", command="clv fit")
    try:
        report = clv.fit_from_csv(
            transactions,
            calibration_end=calibration_end.date(),
            observation_end=observation_end.date() if observation_end else None,
            unit=unit,
            horizon=horizon,
            discount_rate=discount_rate,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--transactions") from None
    print(json.dumps(report, indent=2))


def _engine_for(url: str):  # type: ignore[no-untyped-def]
    return create_db_engine(PostgresSettings(database_url=url))


def main() -> None:
    app()
