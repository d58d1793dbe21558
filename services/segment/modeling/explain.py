"""Segment profiles, names, descriptions and rules, in one JSON-able report.

Per segment the report holds the columns of the ``segment`` table: ``name``,
``description``, ``size``, ``profile`` (per feature: mean and median in original units, the
population mean, their ratio and the lift), ``rules`` (surrogate-tree paths and fidelity)
and ``stats`` (share of customers and, when given, of revenue and of CLV). Noise (-1), if
any, is profiled too and always named "Outliers".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.cluster.hierarchy import dendrogram, linkage  # type: ignore[import-untyped]

from services.segment.modeling.labels import label, value_text
from services.segment.modeling.naming import HIGH, base_name, unique_names
from services.segment.modeling.rules import surrogate_rules

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
NOISE_NAME = "Outliers"
MAX_WITHHELD_CLV_SHARE = 0.5


def explain_segments(
    data: FloatArray,
    scaled: FloatArray,
    labels: IntArray,
    feature_names: list[str],
    *,
    revenue: FloatArray | None = None,
    clv: FloatArray | None = None,
    max_depth: int | None = None,
    seed: int = 0,
    currency: str | None = None,
) -> dict[str, Any]:
    """``data`` in original units and ``scaled`` as the model saw it (log1p + z-scores),
    one row per customer; ``revenue`` / ``clv``, when given, one value per customer;
    ``currency`` (ISO code), when known, writes amounts in rules and descriptions."""
    for name, values in (("revenue", revenue), ("clv", clv)):
        if values is not None and values.shape != labels.shape:
            raise ValueError(f"{name} needs one value per customer")
    present = np.unique(labels).tolist()
    segments = [
        _profile(label, data, scaled, labels, feature_names, revenue, clv) for label in present
    ]
    clustered = [segment for segment in segments if segment["label"] >= 0]
    names = unique_names(
        [base_name(segment["lifts"], _means(segment)) for segment in clustered],
        [segment["lifts"] for segment in clustered],
    )
    for segment, name in zip(clustered, names, strict=True):
        segment["name"] = name
    surrogate = surrogate_rules(
        data, labels, feature_names, max_depth=max_depth, seed=seed, currency=currency
    )
    for segment in segments:
        segment.setdefault("name", NOISE_NAME)
        segment["description"] = _describe(segment, currency)
        segment["rules"] = surrogate["segments"][segment["label"]]
        del segment["lifts"]
    del surrogate["segments"]
    return {"segments": segments, "surrogate": surrogate}


def _means(segment: dict[str, Any]) -> dict[str, float]:
    return {name: value["mean"] for name, value in segment["profile"]["features"].items()}


def _profile(
    label: int,
    data: FloatArray,
    scaled: FloatArray,
    labels: IntArray,
    names: list[str],
    revenue: FloatArray | None,
    clv: FloatArray | None,
) -> dict[str, Any]:
    members = labels == label
    spread = scaled.std(axis=0)
    lift = (scaled[members].mean(axis=0) - scaled.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    mean, population = data[members].mean(axis=0), data.mean(axis=0)
    median = np.median(data[members], axis=0)
    # The lift shown beside the means: in the feature's own units, so its sign always
    # agrees with mean vs population mean (``lift``, on the model's log scale, can
    # disagree for a skewed feature: a few big spenders lift a segment's mean only).
    deviation = data.std(axis=0)
    mean_lift = (mean - population) / np.where(deviation > 0, deviation, 1.0)
    features = {
        name: {
            "mean": float(mean[i]),
            "median": float(median[i]),
            "population_mean": float(population[i]),
            "ratio": float(mean[i] / population[i]) if population[i] != 0 else None,
            "lift": float(lift[i]),
            "mean_lift": float(mean_lift[i]),
        }
        for i, name in enumerate(names)
    }
    standouts = [
        {"feature": names[i], "direction": "high" if lift[i] > 0 else "low", "lift": float(lift[i])}
        for i in np.argsort(-np.abs(lift), kind="stable")
        if abs(lift[i]) >= HIGH
    ]
    return {
        "label": label,
        "size": int(members.sum()),
        "profile": {"features": features, "standouts": standouts},
        "stats": _stats(members, revenue, clv),
        "lifts": {name: value["lift"] for name, value in features.items()},
    }


def _stats(
    members: NDArray[np.bool_], revenue: FloatArray | None, clv: FloatArray | None
) -> dict[str, Any]:
    stats: dict[str, Any] = {"size": int(members.sum()), "share": float(members.mean())}
    for name, values in (("revenue", revenue), ("clv", clv)):
        if values is not None:
            total = float(np.nansum(values))
            stats[f"{name}_share"] = float(np.nansum(values[members])) / total if total else None
            stats[f"mean_{name}"] = _known_mean(values[members])
    if clv is not None and members.any():
        # A CLV withheld for too little history (NaN) is left out of the mean; when most
        # members have none, the segment's mean would speak for a few, so it is withheld too.
        withheld = float(np.isnan(clv[members]).mean())
        stats["clv_withheld_share"] = withheld
        if withheld > MAX_WITHHELD_CLV_SHARE:
            stats["mean_clv"] = None
            stats["clv_note"] = (
                f"{withheld:.0%} of members have too little history for a lifetime value"
            )
    return stats


def _known_mean(values: FloatArray) -> float | None:
    known = values[~np.isnan(values)]
    return float(known.mean()) if len(known) else None


def _describe(segment: dict[str, Any], currency: str | None) -> str:
    stats, profile = segment["stats"], segment["profile"]
    sentence = f"{stats['size']:,} customers ({stats['share']:.0%} of all)"
    phrases = []
    for standout in _agreeing(profile)[:3]:
        name = standout["feature"]
        feature = profile["features"][name]
        mean = value_text(name, _readable(feature["mean"]), currency)
        overall = value_text(name, _readable(feature["population_mean"]), currency)
        phrases.append(f"{standout['direction']} {label(name).text} ({mean} vs {overall} overall)")
    if phrases:
        joined = ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]
        sentence += f" with {joined}"
    else:
        sentence += " close to the average on every feature"
    if stats.get("revenue_share") is not None:
        sentence += f", bringing {stats['revenue_share']:.0%} of revenue"
    return sentence + "."


def _agreeing(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Standouts whose direction the means shown beside them bear out."""
    found = []
    for standout in profile["standouts"]:
        feature = profile["features"][standout["feature"]]
        higher = feature["mean"] > feature["population_mean"]
        if higher == (standout["direction"] == "high"):
            found.append(standout)
    return found


def ward_dendrogram(centres: FloatArray, labels: list[str]) -> dict[str, Any] | None:
    """Ward's tree over the segments' centres (as the model scaled them), ready to draw:
    the dashboard shows it for agglomerative runs. None below two segments."""
    if len(centres) < 2:
        return None
    tree = dendrogram(linkage(centres, method="ward"), labels=labels, no_plot=True)
    return {"icoord": tree["icoord"], "dcoord": tree["dcoord"], "labels": tree["ivl"]}


def _readable(value: float) -> float:
    """Three significant digits are enough in a sentence."""
    return float(f"{value:.3g}")
