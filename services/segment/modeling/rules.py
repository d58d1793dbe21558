"""Decision-tree surrogate: readable rules that approximate the segmentation.

A shallow tree is trained to predict each customer's segment from the *unscaled* features,
so its thresholds read in the features' own units ("recency_days > 120.5 and monetary >
800"). Fidelity is how often the tree agrees with the segmentation: overall, and per
segment as recall (members the rules catch) and precision (rule hits that are members).
Rules describe the model; they do not replace it, and low fidelity says the segments are
not simple boxes in feature space.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from services.segment.modeling.text import format_number
from shared.contracts.rules import RuleCondition, RulePath

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


class Split(NamedTuple):
    """One step down the tree: ``feature > value`` (op ">") or ``feature <= value``."""

    feature: str
    op: str
    value: float


def surrogate_rules(
    data: FloatArray,
    labels: IntArray,
    feature_names: list[str],
    *,
    max_depth: int | None = None,
    seed: int = 0,
    sample_size: int = 50_000,
) -> dict[str, Any]:
    """The tree (as nodes), overall fidelity, and per label its fidelity and rule paths."""
    n_classes = len(np.unique(labels))
    # Depth 3 has 8 leaves, too few for a greedy tree to isolate more than ~4 segments.
    depth = max_depth or (3 if n_classes <= 4 else 4)
    rows = np.arange(len(data))
    if len(rows) > sample_size:
        rows = np.random.default_rng(seed).choice(len(data), size=sample_size, replace=False)
    tree: Any = DecisionTreeClassifier(
        max_depth=depth, min_samples_leaf=max(1, len(rows) // 200), random_state=seed
    ).fit(data[rows], labels[rows])
    predicted = np.asarray(tree.predict(data), dtype=np.int64)
    leaves = _leaves(tree, feature_names)
    per_label = {}
    for label in np.unique(labels).tolist():
        members, hits = labels == label, predicted == label
        per_label[label] = {
            "recall": float(np.mean(hits[members])),
            "precision": float(np.mean(members[hits])) if hits.any() else 0.0,
            # The stored segment rules carry these paths: written through their contract.
            "paths": [
                leaf.model_dump(mode="json")
                for leaf in sorted(
                    (leaf for leaf in leaves if leaf.label == label),
                    key=lambda leaf: -(leaf.n_customers or 0),
                )
            ],
        }
    return {
        "fidelity": float(np.mean(predicted == labels)),
        "max_depth": depth,
        "n_fit_rows": len(rows),
        "nodes": _nodes(tree, feature_names),
        "segments": per_label,
    }


def _leaves(tree: Any, names: list[str]) -> list[RulePath]:
    """Every leaf with its merged conditions, label, size and purity (on the fit rows)."""
    structure, classes = tree.tree_, tree.classes_
    uniform = _uniform_subtrees(structure)
    leaves: list[RulePath] = []
    stack: list[tuple[int, list[Split]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        left, right = structure.children_left[node], structure.children_right[node]
        if uniform[node]:  # a leaf, or a split whose every leaf says the same: one rule
            fractions = structure.value[node][0] / structure.value[node][0].sum()
            conditions = _merge(path)
            leaves.append(
                RulePath(
                    label=int(classes[int(np.argmax(fractions))]),
                    conditions=tuple(conditions),
                    text=" and ".join(c.text for c in conditions) or "all customers",
                    n_customers=int(structure.n_node_samples[node]),
                    purity=float(fractions.max()),
                )
            )
            continue
        feature = names[structure.feature[node]]
        threshold = float(structure.threshold[node])
        stack.append((right, [*path, Split(feature, ">", threshold)]))
        stack.append((left, [*path, Split(feature, "<=", threshold)]))
    return leaves


def _uniform_subtrees(structure: Any) -> list[bool]:
    """Per node: do all leaves below it predict the same class? Children come after
    their parent in sklearn's node order, so one backwards pass settles every node."""
    majority = np.argmax(structure.value[:, 0, :], axis=1)
    uniform = [True] * structure.node_count
    for node in range(structure.node_count - 1, -1, -1):
        left, right = structure.children_left[node], structure.children_right[node]
        if left != right:
            uniform[node] = bool(
                uniform[left] and uniform[right] and majority[left] == majority[right]
            )
    return uniform


def _merge(path: list[Split]) -> list[RuleCondition]:
    """One interval per feature (the tightest bounds on the path), in order of first use."""
    bounds: dict[str, dict[str, float]] = {}
    for step in path:
        feature_bounds = bounds.setdefault(step.feature, {})
        if step.op == ">":
            feature_bounds["above"] = max(feature_bounds.get("above", -np.inf), step.value)
        else:
            feature_bounds["at_most"] = min(feature_bounds.get("at_most", np.inf), step.value)
    conditions = []
    for feature, limits in bounds.items():
        above, at_most = limits.get("above"), limits.get("at_most")
        if above is not None and at_most is not None:
            text = f"{format_number(above)} < {feature} <= {format_number(at_most)}"
        elif above is not None:
            text = f"{feature} > {format_number(above)}"
        else:
            text = f"{feature} <= {format_number(at_most or 0.0)}"
        conditions.append(RuleCondition(feature=feature, above=above, at_most=at_most, text=text))
    return conditions


def _nodes(tree: Any, names: list[str]) -> list[dict[str, Any]]:
    """The tree for drawing: splits say ``feature <= threshold`` goes left."""
    structure, classes = tree.tree_, tree.classes_
    nodes = []
    for node in range(structure.node_count):
        left, right = int(structure.children_left[node]), int(structure.children_right[node])
        counts = structure.value[node][0]
        entry: dict[str, Any] = {
            "id": node,
            "n_customers": int(structure.n_node_samples[node]),
            "label": int(classes[int(np.argmax(counts))]),
        }
        if left != right:
            entry |= {
                "feature": names[structure.feature[node]],
                "threshold": float(structure.threshold[node]),
                "left": left,
                "right": right,
            }
        nodes.append(entry)
    return nodes
