"""Decision-tree surrogate: readable rules that approximate the segmentation.

A shallow tree is trained to predict each customer's segment from the *unscaled* features,
so its thresholds read in the features' own units. Its thresholds are then moved to round
values ("average order value > €50", not "> 52.37") as long as the tree's agreement with
the segmentation (fidelity) drops by at most one point in all.

Each segment's rule is at most two of the tree's paths (largest first), with two figures
measured on every customer: **coverage**, the share of the segment's members the rule
catches, and **precision**, the share of customers it catches that are members. Where the
shared tree catches too few of a segment (a small segment may have no leaf at all), a
tree of its own (segment against the rest) is tried and the better rule kept, so every
segment has one; a rule still catching under half its segment is marked ``low_coverage``
and must be shown as a partial description, not as the segment's definition.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from services.segment.modeling.labels import condition_text, rule_text
from shared.contracts.rules import RuleCondition, RulePath

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
ROUNDING_BUDGET = 0.01  # fidelity the rounded thresholds may cost, in all
MAX_PATHS = 2
GOOD_COVERAGE = 0.8  # below: try a segment-against-the-rest tree
LOW_COVERAGE = 0.5  # below: the rule describes part of the segment only


class Tree:
    """A fitted sklearn tree with thresholds of our own (the rounded ones)."""

    def __init__(self, fitted: Any, names: list[str]) -> None:
        structure = fitted.tree_
        self.classes = fitted.classes_
        self.left = np.asarray(structure.children_left)
        self.right = np.asarray(structure.children_right)
        self.feature = np.asarray(structure.feature)
        self.threshold = np.asarray(structure.threshold, dtype=np.float64).copy()
        self.value = np.asarray(structure.value[:, 0, :])
        self.size = np.asarray(structure.n_node_samples)
        self.names = names

    def leaf_of(self, data: FloatArray) -> IntArray:
        node = np.zeros(len(data), dtype=np.int64)
        while True:
            inner = self.left[node] != self.right[node]
            if not inner.any():
                return node
            rows = np.flatnonzero(inner)
            at = node[rows]
            go_left = data[rows, self.feature[at]] <= self.threshold[at]
            node[rows] = np.where(go_left, self.left[at], self.right[at])

    def predict(self, data: FloatArray) -> IntArray:
        leaves = self.leaf_of(data)
        return np.asarray(self.classes[np.argmax(self.value[leaves], axis=1)], dtype=np.int64)


def surrogate_rules(
    data: FloatArray,
    labels: IntArray,
    feature_names: list[str],
    *,
    max_depth: int | None = None,
    seed: int = 0,
    sample_size: int = 50_000,
    currency: str | None = None,
) -> dict[str, Any]:
    """The tree (as nodes), overall fidelity, and per label its rule with coverage and
    precision (``recall`` repeats the coverage for readers of older reports)."""
    n_classes = len(np.unique(labels))
    # Depth 3 has 8 leaves, too few for a greedy tree to isolate more than ~4 segments.
    depth = max_depth or (3 if n_classes <= 4 else 4)
    rows = _sample(len(data), sample_size, seed)
    tree = _fit(data[rows], labels[rows], feature_names, depth, seed)
    _round_thresholds(tree, data[rows], labels[rows])
    predicted = tree.predict(data)
    leaves = _leaves(tree, currency)
    per_label = {
        label: _segment_rule(label, leaves, data, labels, rows, feature_names, seed, currency)
        for label in np.unique(labels).tolist()
    }
    return {
        "fidelity": float(np.mean(predicted == labels)),
        "max_depth": depth,
        "n_fit_rows": len(rows),
        "nodes": _nodes(tree),
        "segments": per_label,
    }


def _sample(n: int, size: int, seed: int) -> IntArray:
    if n <= size:
        return np.arange(n, dtype=np.int64)
    return np.asarray(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _fit(data: FloatArray, target: IntArray, names: list[str], depth: int, seed: int) -> Tree:
    fitted = DecisionTreeClassifier(
        max_depth=depth, min_samples_leaf=max(1, len(data) // 200), random_state=seed
    ).fit(data, target)
    return Tree(fitted, names)


def round_candidates(value: float) -> list[float]:
    """Values near ``value``, roundest first: 0, then 1, 2 and 3 significant digits
    (with halves and fifths in between)."""
    candidates = [0.0]
    magnitude = 10.0 ** math.floor(math.log10(abs(value))) if value else 1.0
    for step in (magnitude * 10, magnitude * 5, magnitude * 2, magnitude, magnitude / 2):
        candidates += [round(value / step) * step, math.floor(value / step) * step]
    for step in (magnitude / 10, magnitude / 100):
        candidates.append(round(value / step) * step)
    seen: list[float] = []
    for candidate in candidates:
        tidy = float(f"{candidate:.10g}")
        if tidy not in seen:
            seen.append(tidy)
    return seen


def _agreement(tree: Tree, data: FloatArray, target: IntArray, balanced: bool) -> float:
    """Accuracy, or (``balanced``) the mean of per-class recall, so that a small segment's
    leaves count as much as the rest of the customers in a segment-against-the-rest tree."""
    hits = tree.predict(data) == target
    if not balanced:
        return float(np.mean(hits))
    return float(np.mean([np.mean(hits[target == c]) for c in np.unique(target)]))


def _round_thresholds(
    tree: Tree, data: FloatArray, target: IntArray, *, balanced: bool = False
) -> None:
    """Each split's threshold to the roundest value that keeps the agreement within
    ROUNDING_BUDGET of the exact tree's; root first, so later splits are judged with the
    rounded ones above them."""
    floor = _agreement(tree, data, target, balanced) - ROUNDING_BUDGET
    for node in np.flatnonzero(tree.left != tree.right).tolist():
        exact = float(tree.threshold[node])
        for candidate in round_candidates(exact):
            tree.threshold[node] = candidate
            if _agreement(tree, data, target, balanced) >= floor:
                break
        else:
            tree.threshold[node] = exact


def _leaves(tree: Tree, currency: str | None) -> list[RulePath]:
    """Every leaf with its merged conditions, label, size and purity (on the fit rows);
    a split whose leaves all say the same is one leaf."""
    uniform = _uniform_subtrees(tree)
    leaves: list[RulePath] = []
    stack: list[tuple[int, list[tuple[str, str, float]]]] = [(0, [])]
    while stack:
        node, path = stack.pop()
        if uniform[node]:
            fractions = tree.value[node] / tree.value[node].sum()
            conditions = _merge(path, currency)
            leaves.append(
                RulePath(
                    label=int(tree.classes[int(np.argmax(fractions))]),
                    conditions=tuple(conditions),
                    text=rule_text([[c.text for c in conditions]]),
                    n_customers=int(tree.size[node]),
                    purity=float(fractions.max()),
                )
            )
            continue
        feature = tree.names[tree.feature[node]]
        threshold = float(tree.threshold[node])
        stack.append((int(tree.right[node]), [*path, (feature, ">", threshold)]))
        stack.append((int(tree.left[node]), [*path, (feature, "<=", threshold)]))
    return leaves


def _uniform_subtrees(tree: Tree) -> list[bool]:
    """Per node: do all leaves below it predict the same class? Children come after
    their parent in sklearn's node order, so one backwards pass settles every node."""
    majority = np.argmax(tree.value, axis=1)
    uniform = [True] * len(tree.left)
    for node in range(len(tree.left) - 1, -1, -1):
        left, right = tree.left[node], tree.right[node]
        if left != right:
            uniform[node] = bool(
                uniform[left] and uniform[right] and majority[left] == majority[right]
            )
    return uniform


def _merge(path: list[tuple[str, str, float]], currency: str | None) -> list[RuleCondition]:
    """One interval per feature (the tightest bounds on the path), in order of first use."""
    bounds: dict[str, dict[str, float]] = {}
    for feature, op, value in path:
        limits = bounds.setdefault(feature, {})
        if op == ">":
            limits["above"] = max(limits.get("above", -np.inf), value)
        else:
            limits["at_most"] = min(limits.get("at_most", np.inf), value)
    return [
        RuleCondition(
            feature=feature,
            above=limits.get("above"),
            at_most=limits.get("at_most"),
            text=condition_text(feature, limits.get("above"), limits.get("at_most"), currency),
        )
        for feature, limits in bounds.items()
    ]


def caught_by(paths: list[RulePath], data: FloatArray, names: list[str]) -> NDArray[np.bool_]:
    """Which rows satisfy at least one of ``paths``."""
    column = {name: i for i, name in enumerate(names)}
    caught = np.zeros(len(data), dtype=bool)
    for path in paths:
        hit = np.ones(len(data), dtype=bool)
        for c in path.conditions:
            values = data[:, column[c.feature]]
            if c.above is not None:
                hit &= values > c.above
            if c.at_most is not None:
                hit &= values <= c.at_most
        caught |= hit
    return caught


def _measure(
    paths: list[RulePath], members: NDArray[np.bool_], data: FloatArray, names: list[str]
) -> tuple[float, float]:
    caught = caught_by(paths, data, names)
    coverage = float(np.mean(caught[members])) if members.any() else 0.0
    precision = float(np.mean(members[caught])) if caught.any() else 0.0
    return coverage, precision


def _segment_rule(
    label: int,
    leaves: list[RulePath],
    data: FloatArray,
    labels: IntArray,
    rows: IntArray,
    names: list[str],
    seed: int,
    currency: str | None,
) -> dict[str, Any]:
    members = labels == label
    shared = sorted((p for p in leaves if p.label == label), key=lambda p: -(p.n_customers or 0))
    best = _scored(shared[:MAX_PATHS], members, data, names, "surrogate")
    if best["coverage"] < GOOD_COVERAGE or best["precision"] < GOOD_COVERAGE:
        own = _own_paths(label, data, labels, rows, names, seed, currency)
        alternative = _scored(own, members, data, names, "segment_tree")
        if alternative["f1"] > best["f1"] or not best["paths"]:
            best = alternative
    paths = [p.model_dump(mode="json") for p in best["paths"]]
    return {
        "recall": best["coverage"],
        "coverage": best["coverage"],
        "precision": best["precision"],
        "low_coverage": best["coverage"] < LOW_COVERAGE,
        "source": best["source"],
        "text": rule_text([[c.text for c in p.conditions] for p in best["paths"]]) or None,
        "paths": paths,
    }


def _scored(
    paths: list[RulePath],
    members: NDArray[np.bool_],
    data: FloatArray,
    names: list[str],
    source: str,
) -> dict[str, Any]:
    # A path that rounded thresholds left empty (say "has ordered and total spend: none")
    # catches nobody: it would only make the rule contradict itself.
    paths = [p for p in paths if caught_by([p], data, names).any()] or paths
    coverage, precision = _measure(paths, members, data, names) if paths else (0.0, 0.0)
    f1 = 2 * coverage * precision / (coverage + precision) if coverage + precision else 0.0
    return {
        "paths": paths,
        "coverage": coverage,
        "precision": precision,
        "f1": f1,
        "source": source,
    }


def _own_paths(
    label: int,
    data: FloatArray,
    labels: IntArray,
    rows: IntArray,
    names: list[str],
    seed: int,
    currency: str | None,
) -> list[RulePath]:
    """The segment against the rest, members weighted up so a small segment gets leaves;
    its most member-rich leaf when no leaf has a majority of members."""
    target = (labels[rows] == label).astype(np.int64)
    fitted = DecisionTreeClassifier(
        max_depth=3,
        min_samples_leaf=max(1, len(rows) // 400),
        class_weight="balanced",
        random_state=seed,
    ).fit(data[rows], target)
    tree = Tree(fitted, names)
    _round_thresholds(tree, data[rows], target, balanced=True)
    leaves = [leaf for leaf in _leaves(tree, currency) if leaf.label == 1]
    if not leaves:
        leaves = sorted(_leaves(tree, currency), key=lambda leaf: -(leaf.purity or 0.0))[:1]
    chosen = sorted(leaves, key=lambda p: -(p.n_customers or 0))[:MAX_PATHS]
    return [p.model_copy(update={"label": label}) for p in chosen]


def _nodes(tree: Tree) -> list[dict[str, Any]]:
    """The tree for drawing: splits say ``feature <= threshold`` goes left."""
    nodes = []
    for node in range(len(tree.left)):
        left, right = int(tree.left[node]), int(tree.right[node])
        entry: dict[str, Any] = {
            "id": node,
            "n_customers": int(tree.size[node]),
            "label": int(tree.classes[int(np.argmax(tree.value[node]))]),
        }
        if left != right:
            entry |= {
                "feature": tree.names[tree.feature[node]],
                "threshold": float(tree.threshold[node]),
                "left": left,
                "right": right,
            }
        nodes.append(entry)
    return nodes
