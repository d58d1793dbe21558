"""What another policy would have earned at a placement, from its own decision log.

Each decision's first shown offer is the logged action, a conversion of it the reward, its
logged propensity the logging probability; the target's probability of it comes from the
eligible set the decision recorded: ``uniform`` (1/k among the eligible) or ``static:<offer>``
(always that offer when it was eligible). Holdout, default and fallback answers were not
chosen by a policy and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import text
from sqlmodel import Session

from services.personalize.modeling.ope import DecisionLog, OpeReport, evaluate

_LOG = text(
    """
    SELECT d.offers -> 0 ->> 'offer_id', (d.offers -> 0 ->> 'propensity')::float8, d.eligible,
           EXISTS (SELECT 1 FROM feedback f WHERE f.decision_id = d.decision_id
                   AND f.offer_id = d.offers -> 0 ->> 'offer_id' AND f.kind = 'conversion')
    FROM decision d
    WHERE d.tenant_id = :t AND d.placement = :p AND d.created_at >= :since
      AND d.strategy IN ('bandit', 'random', 'static') AND jsonb_array_length(d.offers) > 0
    ORDER BY d.created_at DESC LIMIT :limit
    """
)


class NothingToEvaluate(ValueError):  # noqa: N818 (a 422 for the caller)
    pass


@dataclass(frozen=True)
class Target:
    """``uniform``, or ``static:<offer_id>``."""

    kind: str
    offer_id: str | None = None

    @classmethod
    def parse(cls, value: str) -> Target:
        if value == "uniform":
            return cls("uniform")
        if value.startswith("static:") and len(value) > len("static:"):
            return cls("static", value.removeprefix("static:"))
        raise ValueError("target must be 'uniform' or 'static:<offer_id>'")

    def probabilities(self, eligible: list[str], actions: list[str]) -> np.ndarray:
        row = np.zeros(len(actions))
        index = {a: i for i, a in enumerate(actions)}
        if self.kind == "uniform":
            for offer in eligible:
                if offer in index:
                    row[index[offer]] = 1.0 / len(eligible)
        elif self.offer_id in eligible and self.offer_id in index:
            row[index[self.offer_id]] = 1.0
        return row


def evaluate_placement(
    session: Session,
    *,
    tenant_id: int,
    placement: str,
    target: Target,
    since: datetime,
    limit: int = 200_000,
    seed: int = 0,
) -> OpeReport:
    rows = session.execute(
        _LOG, {"t": tenant_id, "p": placement, "since": since, "limit": limit}
    ).all()
    if not rows:
        raise NothingToEvaluate(f"no decisions chosen by a policy at {placement} since {since}")
    shown = [r[0] for r in rows]
    log_probe = DecisionLog.from_arrays(
        shown, [0.0] * len(rows), [1.0] * len(rows), [0.0] * len(rows)
    )
    actions = log_probe.actions
    pi = np.vstack([target.probabilities(list(r[2]), actions) for r in rows])
    codes = log_probe.codes
    log = DecisionLog.from_arrays(
        shown,
        [1.0 if r[3] else 0.0 for r in rows],
        [r[1] for r in rows],
        pi[np.arange(len(rows)), codes],
    )
    return evaluate(log, target_policy=pi, seed=seed)
