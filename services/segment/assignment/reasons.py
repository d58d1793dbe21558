"""Why a customer is in their segment: the surrogate rule, for every kind of move.

A moved customer's reason names the first path of the new segment's rules that the
customer satisfies. A customer the model puts in a segment without satisfying any of its
paths (a rule catches only part of its segment) still gets the segment's rule, marked
``rule_holds: false``, so a reader never sees a move without a rule.

Vectorised over a whole tenant for an activation: distinct reasons are few (one per path
plus one per segment), so they are returned once each with every customer's number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shared.contracts.rules import RulePath, SegmentRules

FloatArray = NDArray[np.float64]


def _path_mask(path: RulePath, values: FloatArray, columns: Mapping[str, int]) -> NDArray[np.bool_]:
    mask = np.ones(len(values), dtype=bool)
    for condition in path.conditions:
        column = columns.get(condition.feature)
        if column is None:
            return np.zeros(len(values), dtype=bool)
        x = values[:, column]
        if condition.above is not None:
            mask &= x > condition.above
        if condition.at_most is not None:
            mask &= x <= condition.at_most
    return mask


def rule_reasons(
    rules: Mapping[str, SegmentRules],
    *,
    features: Sequence[str],
    values: FloatArray,
    keys: Sequence[str],
) -> tuple[list[dict[str, Any]], NDArray[np.int64]]:
    """The distinct ``{"rule", "rule_holds"}`` parts of the customers' reasons, and each
    customer's index into them. ``values``: one row per customer, columns ``features``;
    ``keys``: each customer's new segment."""
    columns = {name: i for i, name in enumerate(features)}
    key_array = np.asarray(keys, dtype=object)
    distinct: list[dict[str, Any]] = []
    index: dict[tuple[str | None, bool], int] = {}
    numbers = np.zeros(len(key_array), dtype=np.int64)

    def number(rule: str | None, holds: bool) -> int:
        if (rule, holds) not in index:
            index[(rule, holds)] = len(distinct)
            distinct.append({"rule": rule, "rule_holds": holds})
        return index[(rule, holds)]

    for key in dict.fromkeys(key_array.tolist()):
        rows = np.flatnonzero(key_array == key)
        segment_rules = rules.get(str(key))
        left = np.ones(len(rows), dtype=bool)
        for path in segment_rules.paths if segment_rules else ():
            hit = left & _path_mask(path, values[rows], columns)
            numbers[rows[hit]] = number(path.text, True)
            left &= ~hit
        fallback = segment_rules.text if segment_rules else None
        numbers[rows[left]] = number(fallback, False)
    return distinct, numbers


def rule_reason(
    rules: Mapping[str, SegmentRules], *, features: Sequence[str], x: FloatArray, key: str
) -> dict[str, Any]:
    """One customer's ``{"rule", "rule_holds"}`` (``x``: their vector over ``features``)."""
    distinct, numbers = rule_reasons(
        rules, features=features, values=np.asarray([x], dtype=np.float64), keys=[key]
    )
    return distinct[int(numbers[0])]
