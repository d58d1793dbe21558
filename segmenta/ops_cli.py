"""``segmenta status`` and ``segmenta dead-letters``: the operator's view and hands."""

from __future__ import annotations

import json
from typing import Annotated, Any

import psutil
import typer
from redis import Redis
from rich.table import Table

from segmenta import platform
from segmenta.console import make_console
from segmenta.settings import CliSettings
from shared.db import create_db_engine, session_scope
from shared.dead_letters import list_dead_letters, read_dead_letter, replay_dead_letters
from shared.operations import PlatformStatus, read_status
from shared.settings import PostgresSettings

dead_letters_app = typer.Typer(
    help="Work given up on: list, show and replay it.", no_args_is_help=True
)
out = make_console()


def _engine(settings: CliSettings):  # type: ignore[no-untyped-def]
    return create_db_engine(PostgresSettings(database_url=platform.database_url(settings)))


def _redis_url(settings: CliSettings) -> str:
    if settings.redis_url:
        return settings.redis_url
    state = platform.read_state(settings)
    if state is None:
        raise SystemExit(
            "No Redis: set SEGMENTA_REDIS_URL, or start the platform with `segmenta up`."
        )
    return state.redis_url


def process_states(settings: CliSettings) -> dict[str, str]:
    """Each process of a ``segmenta up`` in this data folder: running, stopped or gone."""
    path = settings.data_dir / platform.PROCESSES_FILE
    if not path.exists():
        return {}
    states: dict[str, str] = {}
    for name, pid in json.loads(path.read_text()).items():
        try:
            state: str = psutil.Process(int(pid)).status()
        except psutil.NoSuchProcess:
            state = "gone"
        states[name] = {"zombie": "gone", "dead": "gone"}.get(state, state)
    return states


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _print_status(status: PlatformStatus) -> None:
    if status.processes:
        table = Table("process", "state")
        for name, state in status.processes.items():
            colour = "green" if state in {"running", "sleeping", "disk-sleep"} else "red"
            table.add_row(name, f"[{colour}]{state}[/]")
        out.print(table)
    if status.backlog is None:
        out.print("[red]PostgreSQL does not answer[/]")
    else:
        b = status.backlog
        out.print(
            f"outbox: {b.waiting} waiting, {b.in_flight} in flight, oldest {b.oldest_age_s:.0f} s"
        )
        out.print(f"erasures pending: {status.erasures_pending}")
        runs = Table("model", "last successful run", "in flight")
        for run in status.runs or []:
            runs.add_row(run.model, _age(run.last_success_age_s), str(run.in_flight))
        out.print(runs)
        dead = Table("dead letters: task", "reason", "count", "newest")
        for group in status.dead_letters or []:
            dead.add_row(group.task_name, group.reason, str(group.count), _age(group.newest_age_s))
        out.print(dead if status.dead_letters else "dead letters: none")
    if status.queues is None:
        out.print("[red]Redis does not answer[/]")
    else:
        depths = ", ".join(f"{q.queue} {q.waiting}" for q in status.queues)
        out.print(f"queues: {depths}; delivered, not acknowledged: {status.deliveries_unacked}")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")] = False,
) -> None:
    """Processes, queues, the outbox backlog, dead letters, model runs, pending erasures."""
    settings = CliSettings()
    engine = _engine(settings)
    with Redis.from_url(_redis_url(settings), socket_timeout=3) as redis:
        found = read_status(engine, redis)
    engine.dispose()
    found.processes = process_states(settings)
    if as_json:
        print(json.dumps(found.as_dict()))
    else:
        _print_status(found)


def _as_dict(view: Any) -> dict[str, Any]:
    fields = dict(vars(view))
    fields["created_at"] = fields["created_at"].isoformat()
    return fields


@dead_letters_app.command("list")
def dead_letters_list(
    task: Annotated[
        str | None, typer.Option(help="Only this task, e.g. nlp.analyze_reviews")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dead letters, oldest first."""
    with session_scope(_engine(CliSettings())) as session:
        found = list_dead_letters(session, task_name=task, limit=limit)
    if as_json:
        print(json.dumps([_as_dict(view) for view in found]))
        return
    table = Table("id", "tenant", "task", "subject", "attempts", "reason", "at")
    for v in found:
        table.add_row(
            str(v.id), str(v.tenant_id), v.task_name, str(v.subject_id), str(v.attempts),
            v.reason[:80], f"{v.created_at:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
    out.print(table)


@dead_letters_app.command("show")
def dead_letters_show(dead_letter_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """One dead letter, with its whole reason, as JSON."""
    with session_scope(_engine(CliSettings())) as session:
        found = read_dead_letter(session, dead_letter_id=dead_letter_id)
    if found is None:
        raise typer.BadParameter(f"no dead letter {dead_letter_id}", param_hint="ID")
    print(json.dumps(_as_dict(found), indent=2))


@dead_letters_app.command("replay")
def dead_letters_replay(
    ids: Annotated[list[int] | None, typer.Argument(metavar="ID...")] = None,
    task: Annotated[str | None, typer.Option(help="Every dead letter of this task")] = None,
) -> None:
    """Put dead letters' work back into the outbox. Replaying one twice does nothing more."""
    if not ids and not task:
        raise typer.BadParameter("name dead letter ids, or --task", param_hint="ID")
    with session_scope(_engine(CliSettings())) as session:
        wanted = list(ids or [])
        if task:
            wanted += [v.id for v in list_dead_letters(session, task_name=task, limit=100_000)]
        replayed = replay_dead_letters(session, dead_letter_ids=wanted)
    skipped = sorted(set(wanted) - set(replayed))
    print(json.dumps({"replayed": replayed, "not_found": skipped}))
