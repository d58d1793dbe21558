"""How the recommender's defaults were chosen: ``python -m bench.recommend_tune``.

Only Instacart's tuning half (customers whose id hashes to 0, see
`bench.recommend_data.customer_half`) is scored, on three folds: each customer's last
order held out, then (their last order left out) the one before, then the one before
that; every fold learns from all customers' orders before the held-out one. The
reporting half's held-out orders are never looked at here; ``bench.recommend`` scores
them once, with the setting chosen. Goal metric: new items only, precision@10 and
NDCG@10 against popularity pooled over the folds' customers. Results go to the
``recommend_tune`` section of ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.ingest import log
from bench.recommend_data import customer_half, instacart
from bench.results_file import write_section
from services.personalize.recommend.evaluate import Split, compare, time_split
from services.personalize.recommend.model import Recommender
from services.personalize.recommend.runs import RecommenderParams

HERE = Path(__file__).resolve().parent
FOLDS = (0, 1, 2)
GRID: dict[str, dict[str, float | int]] = {
    "ALS + co-purchase (previous defaults)": {"neighbours": 0},
    "ALS alone": {"neighbours": 0, "cooc_weight": 0.0},
    "co-purchase alone": {"neighbours": 0, "cooc_weight": 1.0},
    "ALS alpha 1, regularisation 1 + co-purchase": {
        "neighbours": 0,
        "alpha": 1.0,
        "regularization": 1.0,
    },
    "10 neighbours": {"neighbours": 10},
    "20 neighbours": {"neighbours": 20},
    "30 neighbours": {"neighbours": 30},
    "50 neighbours": {"neighbours": 50},
    "100 neighbours": {"neighbours": 100},
    "30 neighbours 0.7, ALS + co-purchase 0.3": {"neighbours": 30, "neighbour_weight": 0.7},
    "30 neighbours 0.5, ALS + co-purchase 0.5": {"neighbours": 30, "neighbour_weight": 0.5},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recommend_tune", description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    base = RecommenderParams().model_params()
    hits: dict[str, list[tuple[float, float, float, float, int]]] = {n: [] for n in GRID}
    for fold in FOLDS:
        data = instacart(drop_last=fold)
        split = time_split(data.users, data.items, data.after_cut, data.shape)
        keep = customer_half(data)[split.test_users] == 0
        split = Split(
            split.train,
            split.test_users[keep],
            [r for r, k in zip(split.relevant, keep.tolist(), strict=True) if k],
        )
        for name, params in GRID.items():
            result = compare(split, Recommender(**{**base, **params, "seed": 1}), k=10)
            hits[name].append(
                (
                    result.model["precision"],
                    result.popularity["precision"],
                    result.model["ndcg"],
                    result.popularity["ndcg"],
                    result.users,
                )
            )
            log(f"fold {fold}, {name}: {result.lift('precision'):+.0%} {result.lift('ndcg'):+.0%}")
    lines = [
        "## Recommendations: tuning (Instacart tuning half only)",
        "",
        "`python -m bench.recommend_tune`: new items only, each tuning customer's last order "
        "and the two before it held out in turn (folds), seed 1; lift = pooled mean over "
        "the folds' customers against popularity's. The chosen default is the best "
        "min(lift precision, lift NDCG).",
        "",
        "| setting | customers x folds | lift precision@10 | lift NDCG@10 | per fold (P/NDCG) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, runs in hits.items():
        users = np.array([r[4] for r in runs], dtype=np.float64)
        pooled = [float(np.average([r[i] for r in runs], weights=users)) for i in range(4)]
        folds = " ".join(f"{r[0] / r[1] - 1:+.0%}/{r[2] / r[3] - 1:+.0%}" for r in runs)
        lines.append(
            f"| {name} | {int(users.sum())} | {pooled[0] / pooled[1] - 1:+.0%} "
            f"| {pooled[2] / pooled[3] - 1:+.0%} | {folds} |"
        )
    markdown = "\n".join(lines)
    write_section(args.out, "recommend_tune", markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
