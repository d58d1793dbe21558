"""deploy/prometheus/alerts.yml: well-formed rules over metrics the APIs really export."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.servers import ROOT

pytestmark = pytest.mark.e2e
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
# A metric name in an expression, with the label matchers that follow it, if any.
USE = re.compile(r"\b(segmenta_[a-z0-9_]+)(\{[^}]*\})?")
LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!=|!~|=)")
SUFFIXES = ("_bucket", "_count", "_sum")


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(Path(RULES).read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def exported(api: str) -> tuple[set[str], dict[str, set[str]]]:
    """The metric families an API exports, and the label names seen on each."""
    httpx.get(f"{api}/healthz", timeout=10)  # a request, so the histogram has samples
    httpx.get(f"{api}/metrics", timeout=10)  # a scrape, so the labelled gauges have some
    text = httpx.get(f"{api}/metrics", timeout=10).text
    families = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("segmenta_") and "{" in line:
            name, rest = line.split("{", 1)
            labels.setdefault(name, set()).update(LABEL.findall(rest.split("}", 1)[0]))
    return families, labels


def family(name: str) -> str:
    return next((name.removesuffix(s) for s in SUFFIXES if name.endswith(s)), name)


def test_every_rule_is_complete() -> None:
    found = rules()
    assert len(found) >= 8
    assert len({rule["alert"] for rule in found}) == len(found)
    for rule in found:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert USE.search(rule["expr"]), f"{rule['alert']} names no segmenta metric"


def test_every_expression_names_an_exported_metric_and_its_labels(api: str) -> None:
    families, labels = exported(api)
    for rule in rules():
        for name, matchers in USE.findall(rule["expr"]):
            assert family(name) in families, f"{rule['alert']}: {name} is not exported"
            for label in LABEL.findall(matchers or ""):
                assert label in labels.get(name, set()), f"{rule['alert']}: {name} has no {label}"


def test_the_operator_metrics_are_exported(api: str) -> None:
    families, labels = exported(api)
    for name in (
        "segmenta_outbox_waiting",
        "segmenta_outbox_oldest_age_seconds",
        "segmenta_queue_depth",
        "segmenta_dead_letters_by_reason",
        "segmenta_last_successful_run_age_seconds",
        "segmenta_erasures_pending",
    ):
        assert name in families
    assert labels["segmenta_last_successful_run_age_seconds"] == {"model"}
