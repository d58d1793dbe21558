"""Every move carries the rule of the segment a customer moved to: a real-time move and a
retrain's (the activation's) alike, also when the customer is caught by none of the rule's
paths."""

from __future__ import annotations

import numpy as np
import pytest

from services.segment.assignment.reasons import rule_reason, rule_reasons
from services.segment.modeling import Segmenter
from services.segment.training.result import _record
from shared.contracts.rules import SegmentRules
from tests.segment.modeling.population import FEATURES, make_customers

pytestmark = pytest.mark.unit


def fitted_rules() -> tuple[Segmenter, dict[str, SegmentRules], np.ndarray]:
    data, _ = make_customers(1200, seed=4)
    segmenter = Segmenter(algorithm="kmeans", k=6, seed=3).fit(data, feature_names=FEATURES)
    keys = segmenter.assign_keys(list(range(len(data))))
    report = segmenter.explain(data)
    rules = {
        record.key: record.rules
        for record in (_record(segmenter, keys, segment) for segment in report["segments"])
    }
    return segmenter, rules, data


def test_every_customer_of_an_activation_gets_a_rule_of_their_segment() -> None:
    segmenter, rules, data = fitted_rules()
    keys = segmenter.predict_keys(data)
    distinct, numbers = rule_reasons(rules, features=FEATURES, values=data, keys=keys)
    assert len(numbers) == len(data)
    for i in range(0, len(data), 7):
        reason = distinct[int(numbers[i])]
        segment_rules = rules[keys[i]]
        assert reason["rule"], f"customer {i} in {keys[i]} has no rule"
        values = dict(zip(FEATURES, data[i].tolist(), strict=True))
        path = segment_rules.matching_path(values)
        if path is not None:  # the first path the customer satisfies, as a person checks
            assert reason == {"rule": path.text, "rule_holds": True}
        else:  # caught by no path: the segment's rule, said not to hold for them
            assert reason == {"rule": segment_rules.text, "rule_holds": False}
    # Few distinct reasons travel, however many customers move.
    assert len(distinct) <= sum(len(r.paths) + 1 for r in rules.values())
    assert {r["rule_holds"] for r in distinct} >= {True}


def test_a_real_time_move_outside_every_path_still_names_the_rule() -> None:
    segmenter, rules, data = fitted_rules()
    key = segmenter.predict_keys(data[:1])[0]
    nowhere = np.full(len(FEATURES), np.nan)  # satisfies no condition at all
    reason = rule_reason(rules, features=FEATURES, x=nowhere, key=key)
    assert reason == {"rule": rules[key].text, "rule_holds": False}
    assert reason["rule"]
