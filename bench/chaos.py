"""Chaos benchmark: the whole platform under every fault, and the ledger of every stage.

``python -m bench.chaos`` starts every process of ``segmenta up`` on a PostgreSQL cluster
and a Redis it owns, sets up a shop (customers, orders, an active segmentation, two offers),
runs a steady mixed load (orders, events, reviews, transcripts, offer requests, feedback)
and injects each fault of `tests.support.chaos.every_fault` in turn, ``--gap`` seconds
apart. Recovery after a fault is the time until fresh work went through every pipeline
(an order into its customer's features, a review into its analysis, an offer answer into
the decision log); the first row injects nothing, so its "recovery" is the pipeline's own
latency, the baseline of the others. Then the load stops, the pipeline drains, and the
ledger of RELIABILITY.md is checked for every stage. The figures go to the ``chaos``
section of bench/RESULTS.md.

    python -m bench.chaos                # every fault, 10 s apart (~6 minutes of load)
    python -m bench.chaos --gap 3 --out /tmp/RESULTS.md
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.results_file import write_section
from bench.servers import machine_info
from tests.support.chaos import Fault, every_fault
from tests.support.chaos_run import ChaosReport, run_chaos

BASELINE = Fault("none (baseline: the pipeline's own latency)", lambda _: None)


def section(report: ChaosReport, args: argparse.Namespace, machine: dict[str, str]) -> str:
    baseline = report.faults[0].recovery_s or 0
    slowest = max((f.recovery_s or float("inf") for f in report.faults[1:]), default=0)
    verdict = "PASS" if report.lost_beyond_design == 0 and report.duplicated == 0 else "FAIL"
    return f"""## Chaos: the whole platform under faults (`python -m bench.chaos`)

Every process of `segmenta up` (4 APIs, relay, 4 workers, 2 beats) under the supervisor, on
a PostgreSQL cluster and a Redis (AOF `everysec`) of the run's own; nlp on its lexicon
backend. A steady mixed load ran for {report.load_s:.0f} s while each fault below was
injected in turn, {args.gap:.0f} s apart (visibility timeout 40 s). "Recovery" is the time
from the fault until an order sent after it was in its customer's features, a review in
its analysis and an offer answer in the decision log; with no fault that takes
{baseline:.1f} s (the first row), the slowest recovery {slowest:.1f} s. The client retries
a failed request with the same ids; "non-2xx answers" counts every refused attempt. The
pipeline drained {f"in {report.drain_s:.1f} s" if report.drain_s is not None else "NOT"}
after the load stopped.

**Ledger: {report.lost} lost, {report.duplicated} duplicated; {report.lost_beyond_design}
lost beyond the design: {verdict}** (target: 0 and 0). Offer decisions live only in Redis
(AOF `everysec`) until the worker drains them, about a second; each personalize API
process keeps what it answered in the last few seconds and logs it again when Redis
restarted or lost its data. Counted as lost by design (no more than that window could
cover): decisions in the stream at the wipe ({len(report.wiped_decisions)} at this run's,
counted with writes paused), and those a SIGKILLed Redis answered in its last 1-3 s but
had not yet written to its file (AOF `everysec`; checked against the file);
{report.decisions_lost_by_design} lost decisions are of those kinds.

{report.markdown()}

Machine: {machine["cpu"]}, {machine["cores"]} cores, {machine["ram"]}; PostgreSQL
{machine["postgres"]}; {machine["date"]}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap", type=float, default=10, help="seconds between faults")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--keep", type=Path, help="keep the servers' data and logs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="segmenta-chaos-") as temporary:
        data = args.keep or temporary
        report = run_chaos(
            Path(data),
            [BASELINE, *every_fault()],
            gap_s=args.gap,
            warmup_s=15,
            describe=machine_info,
        )
    text = section(report, args, report.machine)
    print(text)
    write_section(args.out, "chaos", text)


if __name__ == "__main__":
    main()
