"""A full training run at scale, stage by stage, with its memory and a raw-fit baseline.

Each run is `services.segment.training.pipeline.train_run` itself, in a fresh child
process (spawned, as a worker process would be), on a ``pending`` run row. Inside the
child the pipeline's steps are wrapped with timers for the length of the run (the same
functions are called; only the clock is read around them), so the stages add up to the
run's own wall time. The parent samples the child's RSS and the private memory (USS) of
the database's Postgres backends.
"""

from __future__ import annotations

import multiprocessing
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import orjson
import psutil
import psycopg
from sklearn.cluster import MiniBatchKMeans  # type: ignore[import-untyped]

# The stages in the order the pipeline runs them (features first: they carry the
# purchase history the CLV models are fitted on): (label, where the timed callable
# lives, its attribute). Nested ones (indented labels) are parts of the stage above them.
STAGES: list[tuple[str, str, str]] = [
    (
        "features SQL (compute_features_in_parts)",
        "services.segment.training.pipeline",
        "compute_features_in_parts",
    ),
    ("load_matrix", "services.segment.training.pipeline", "load_matrix"),
    ("CLV fit + score writes", "services.segment.training.pipeline", "score_customers"),
    ("  BG/NBD fit(s)", "services.segment.clv.models:BGNBD", "fit"),
    ("  Gamma-Gamma fit", "services.segment.clv.models:GammaGamma", "fit"),
    ("  CLV values", "services.segment.scoring.clv_scores", "customer_lifetime_value"),
    ("revenue + CLV per customer", "services.segment.training.result", "revenue_and_clv"),
    ("previous run (members, centroids)", "services.segment.training.pipeline", "previous_run"),
    ("fit (Segmenter.fit)", "services.segment.modeling.segmenter:Segmenter", "fit"),
    ("stable keys", "services.segment.modeling.segmenter:Segmenter", "assign_keys"),
    (
        "explain (profiles, names, surrogate)",
        "services.segment.modeling.segmenter:Segmenter",
        "explain",
    ),
    ("projection (PCA + t-SNE sample)", "services.segment.modeling.segmenter:Segmenter", "project"),
    ("store result", "services.segment.segmentations.runs", "save_result"),
    ("load run (artifact)", "services.segment.training.pipeline", "load_run"),
    ("activation", "services.segment.training.pipeline", "activate"),
    ("  load_matrix", "services.segment.assignment.runs", "load_matrix"),
    ("  predict keys", "services.segment.modeling.segmenter:Segmenter", "predict_keys"),
    ("  write memberships", "services.segment.assignment.runs", "write_memberships"),
]
TOP_LEVEL = [label for label, _, _ in STAGES if not label.startswith(" ")]


@dataclass
class RunOutcome:
    """One training run, as the child reports it and the parent measured it."""

    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    customers: int = 0
    chosen_k: int = 0
    silhouette: float | None = None
    fit_rows: int = 0
    raw_fit_s: float = 0.0
    raw_scale_s: float = 0.0
    moved: str = ""
    had_previous: bool = False
    rss_start: int = 0
    rss_peak: int = 0
    pg_peak: int = 0  # Postgres backends of the database: private memory (USS), summed
    running: str | None = None  # the stage under way when the run was stopped
    optimiser: list[tuple[int, int, bool, float]] = field(default_factory=list)
    """CLV maximum-likelihood fits: (parameters, evaluations, converged, seconds); a fit
    stopped before its end has negative seconds (minus the time it ran)."""
    skipped_clv: bool = False

    @property
    def stopped_in_clv(self) -> bool:
        return bool(self.error and self.running and self.running.startswith("CLV"))

    def rest_s(self, label: str) -> float | None:
        """The part of stage ``label`` that none of its nested stages covers."""
        if label not in self.stages:
            return None
        index = [name for name, _, _ in STAGES].index(label)
        nested = 0.0
        for name, _, _ in STAGES[index + 1 :]:
            if not name.startswith(" "):
                break
            nested += self.stages.get(name, 0.0)
        return self.stages[label] - nested

    @property
    def other_s(self) -> float:
        return self.seconds - sum(self.stages.get(label, 0.0) for label in TOP_LEVEL)


def _resolve(where: str) -> Any:
    module_name, _, attr = where.partition(":")
    module = __import__(module_name, fromlist=["_"])
    return getattr(module, attr) if attr else module


Report = Callable[[str, str, float], None]  # (event, stage, seconds)
_Hook = Callable[[str, Callable[..., Any]], Callable[..., Any]]


@contextmanager
def timed_stages(report: Report) -> Iterator[None]:
    """Wrap each stage's callable so its start and wall time are reported as it runs."""
    originals: list[tuple[Any, str, Any]] = []

    def wrap(label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            report("begin", label, 0.0)
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                report("stage", label, time.perf_counter() - started)

        return timed

    def probe(_: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def probed(objective: Any, x0: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            calls = [0]

            def counted(params: Any) -> Any:
                calls[0] += 1
                if calls[0] % 250 == 0:  # progress, in case the run is stopped meanwhile
                    fit = f"{len(x0)},{calls[0]},0"
                    report("optimiser-progress", fit, time.perf_counter() - started)
                return objective(params)

            result = fn(counted, x0, *args, **kwargs)
            seconds = time.perf_counter() - started
            fit = f"{len(x0)},{int(result.nfev)},{int(bool(result.success))}"
            report("optimiser", fit, seconds)
            return result

        return probed

    hooks: list[tuple[str, str, str, _Hook]] = [(lbl, w, a, wrap) for lbl, w, a in STAGES]
    # The CLV models' optimiser: how many likelihood evaluations each fit needed.
    hooks.append(("", "services.segment.clv.models", "minimize", probe))
    for label, where, attr, make in hooks:
        owner = _resolve(where)
        original = getattr(owner, attr, None)
        if original is None:  # not in this version of the pipeline
            continue
        originals.append((owner, attr, original))
        setattr(owner, attr, make(label, original))
    try:
        yield
    finally:
        for owner, attr, original in reversed(originals):
            setattr(owner, attr, original)


def _child(url: str, run_id: int, results: Any, skip_clv: bool) -> None:
    """The training run in a fresh process; reports each stage as it ends, then a dict.
    ``skip_clv``: CLV scoring does nothing (to time every other stage when it is too slow).
    """
    from services.segment.modeling.segmenter import Segmenter
    from services.segment.scoring.clv_scores import ClvOutcome
    from services.segment.settings import SegmentSettings
    from services.segment.training import pipeline
    from shared.db import create_db_engine
    from tests.support.servers import sqlalchemy_url

    settings = SegmentSettings(database_url=sqlalchemy_url(url), environment="test")
    engine = create_db_engine(settings, pool_size=2)  # as the worker makes it
    fitted: list[Segmenter] = []
    fit = Segmenter.fit

    def keep(self: Segmenter, *args: Any, **kwargs: Any) -> Segmenter:
        fitted.append(self)
        return fit(self, *args, **kwargs)

    def report(event: str, stage: str, seconds: float) -> None:
        results.put((event, stage, seconds))

    def no_clv(*args: Any, **kwargs: Any) -> ClvOutcome:
        return ClvOutcome(customers=0, params={"skipped": "by the benchmark"})

    steps: Any = pipeline  # the module whose names the run calls
    score_customers = steps.score_customers
    out: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        Segmenter.fit = keep  # type: ignore[method-assign]
        if skip_clv:
            steps.score_customers = no_clv
        with timed_stages(report):
            pipeline.train_run(engine, settings, run_id)
        out["seconds"] = time.perf_counter() - started
    except Exception as exc:
        out["seconds"] = time.perf_counter() - started
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        Segmenter.fit = fit  # type: ignore[method-assign]
        steps.score_customers = score_customers
    if fitted and "error" not in out:
        out.update(_baseline(engine, fitted[0], run_id, settings.segment_threads))
    engine.dispose()
    results.put(("done", "", out))


def _baseline(engine: Any, segmenter: Any, run_id: int, threads: int) -> dict[str, Any]:
    """The raw scikit-learn fit with the chosen k on the same matrix, same thread limit."""
    from services.segment.features import load_matrix
    from services.segment.modeling.threads import limit_threads
    from shared.db import session_scope

    with session_scope(engine) as session:
        tenant = (
            session.connection()
            .exec_driver_sql(
                "SELECT tenant_id FROM segmentation_run WHERE id = %(r)s", {"r": run_id}
            )
            .scalar_one()
        )
        matrix = load_matrix(session, tenant_id=int(tenant))
    data = matrix.values[:, segmenter.columns_]
    metrics = segmenter.metrics_
    with limit_threads(threads):
        started = time.perf_counter()
        z = segmenter.scaler_.transform(data)  # the matrix the fit saw (log1p, z-scores)
        scale_s = time.perf_counter() - started
        started = time.perf_counter()
        MiniBatchKMeans(
            n_clusters=segmenter.n_segments_, n_init=3, batch_size=1024, random_state=segmenter.seed
        ).fit(z)
        raw_s = time.perf_counter() - started
    return {
        "customers": len(matrix),
        "chosen_k": int(segmenter.n_segments_),
        "silhouette": metrics.get("silhouette"),
        "fit_rows": int(metrics.get("n_rows", 0)),
        "raw_fit_s": raw_s,
        "raw_scale_s": scale_s,
    }


class MemorySampler:
    """Peak RSS of one process and peak summed USS of a database's Postgres backends."""

    def __init__(self, pid: int, database: str, interval: float = 0.2) -> None:
        self.pid, self.database, self.interval = pid, database, interval
        self.rss: list[int] = []
        self.pg_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _backends(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            title = " ".join(proc.info.get("cmdline") or [])
            if title.startswith("postgres:") and f" {self.database} " in f" {title} ":
                found.append(proc)
        return found

    def _run(self) -> None:
        target = psutil.Process(self.pid)
        tick = 0
        while not self._stop.wait(self.interval):
            try:
                self.rss.append(int(target.memory_info().rss))
            except psutil.Error:
                return
            tick += 1
            if tick % 5 == 0:  # reading smaps costs more: once a second
                total = 0
                for proc in self._backends():
                    with suppress(psutil.Error):
                        total += int(proc.memory_full_info().uss)
                self.pg_peak = max(self.pg_peak, total)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _params(algorithm: str, seed: int) -> dict[str, Any]:
    """The run's parameters as the API resolves them (the service's other defaults)."""
    from services.segment.segmentations.runs import SegmentationParams
    from services.segment.settings import SegmentSettings

    resolved = SegmentationParams.resolve(
        SegmentSettings(),
        algorithm=algorithm,  # type: ignore[arg-type]
        seed=seed,
        promote="always",
    )
    return resolved.stored()


def new_run(url: str, tenant_id: int, algorithm: str, seed: int) -> int:
    """A pending run row, as the API creates one (promoted whatever its scores)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO segmentation_run (tenant_id, status, algorithm, params, feature_set, seed)"
            " VALUES (%s, 'pending', %s, %s::jsonb, 'v1', %s) RETURNING id",
            [tenant_id, algorithm, orjson.dumps(_params(algorithm, seed)).decode(), seed],
        ).fetchone()
    assert row is not None
    return int(row[0])


def run_status(url: str, run_id: int) -> tuple[str, bool, str | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT status, active, metrics->>'stage' FROM segmentation_run WHERE id = %s",
            [run_id],
        ).fetchone()
    assert row is not None
    return str(row[0]), bool(row[1]), row[2]


def has_active_run(url: str, tenant_id: int) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM segmentation_run WHERE tenant_id = %s AND active", [tenant_id]
        ).fetchone()
    return bool(row and row[0])


def train_once(
    url: str,
    tenant_id: int,
    algorithm: str,
    timeout_s: float,
    *,
    skip_clv: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> RunOutcome:
    """One `train_run` in a spawned child; its stages, memory and baseline."""
    previous = has_active_run(url, tenant_id)
    run_id = new_run(url, tenant_id, algorithm, seed=7)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(target=_child, args=(url, run_id, results, skip_clv))
    child.start()
    assert child.pid is not None
    sampler = MemorySampler(child.pid, url.rsplit("/", 1)[1])
    sampler.start()
    data: dict[str, Any] = {}
    stages: dict[str, float] = {}
    optimiser: list[tuple[int, int, bool, float]] = []
    running: list[str] = []
    started = time.monotonic()
    while "seconds" not in data:
        if time.monotonic() - started > timeout_s:
            data = {"error": f"stopped after {timeout_s:.0f} s", "seconds": timeout_s}
            break
        try:
            event, stage, value = results.get(timeout=1.0)
        except queue.Empty:
            if not child.is_alive():
                data = {"error": f"the training process died (exit code {child.exitcode})"}
                data["seconds"] = time.monotonic() - started
            continue
        if event == "begin":
            running.append(stage)
        elif event == "stage":
            stages[stage] = stages.get(stage, 0.0) + value
            log(f"    {stage.strip()}: {value:.1f} s")
            if stage in running:
                running.remove(stage)
        elif event.startswith("optimiser"):
            n_params, evaluations, converged = stage.split(",")
            fit = (int(n_params), int(evaluations), converged == "1", value)
            if optimiser and optimiser[-1][3] < 0:  # the progress of this fit so far
                optimiser.pop()
            # A fit still running is kept with negative seconds until it ends.
            optimiser.append(fit if event == "optimiser" else (*fit[:3], -value))
        else:
            data = value
    if child.is_alive() and data.get("error"):
        child.kill()
    child.join(120)
    if child.is_alive():
        child.kill()
        child.join()
    sampler.stop()
    status, active, stage = run_status(url, run_id)
    outcome = RunOutcome(
        seconds=float(data.get("seconds", 0.0)),
        stages=stages,
        error=data.get("error"),
        customers=int(data.get("customers", 0)),
        chosen_k=int(data.get("chosen_k", 0)),
        silhouette=data.get("silhouette"),
        fit_rows=int(data.get("fit_rows", 0)),
        raw_fit_s=float(data.get("raw_fit_s", 0.0)),
        raw_scale_s=float(data.get("raw_scale_s", 0.0)),
        moved=str(stage or ""),
        had_previous=previous,
        rss_start=sampler.rss[0] if sampler.rss else 0,
        rss_peak=max(sampler.rss, default=0),
        pg_peak=sampler.pg_peak,
        running=" > ".join(r.strip() for r in running) if running and data.get("error") else None,
        optimiser=optimiser,
        skipped_clv=skip_clv,
    )
    if outcome.error is None and (status, active) != ("succeeded", True):
        outcome.error = f"run {run_id} ended {status}, active={active}"
    return outcome


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
