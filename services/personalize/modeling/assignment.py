"""Sticky, hash-based assignment: holdouts and experiment arms without storing anything.

A customer's bucket is a BLAKE2b hash of the unit (namespace, ids) mapped to [0, 1): the
same inputs give the same bucket in every process and after every restart, buckets are
uniform, and two experiments hash different strings so their splits are independent (a
customer in arm B of one experiment is no likelier to be in arm B of the next). Changing
a share or split moves only the customers whose bucket crosses a boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_SEPARATOR = "\x1f"  # cannot appear in ids typed by people, so ("a", "bc") != ("ab", "c")
_SCALE = float(2**64)


def unit_hash(namespace: str, *parts: str) -> float:
    """A number in [0, 1), uniform over inputs and fixed for these inputs."""
    text = _SEPARATOR.join((namespace, *parts)).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def in_holdout(tenant_id: str, customer_id: str, placement: str, share: float) -> bool:
    """Whether the customer is held out of personalisation at this placement."""
    if not 0.0 <= share <= 1.0:
        raise ValueError("holdout share must be between 0 and 1")
    return unit_hash("holdout", tenant_id, placement, customer_id) < share


def experiment_arm(
    experiment_id: str, customer_id: str, arms: Sequence[str], split: Sequence[float]
) -> str:
    """The customer's arm; ``split`` gives each arm's share of traffic (summing to 1)."""
    if len(arms) != len(split) or not arms:
        raise ValueError("split must give one share per arm")
    if any(share < 0 for share in split) or abs(sum(split) - 1.0) > 1e-9:
        raise ValueError("split shares must be non-negative and sum to 1")
    bucket = unit_hash("experiment", experiment_id, customer_id)
    edge = 0.0
    for arm, share in zip(arms, split, strict=True):
        edge += share
        if bucket < edge:
            return arm
    return next(arm for arm, share in zip(arms[::-1], split[::-1], strict=True) if share > 0)
