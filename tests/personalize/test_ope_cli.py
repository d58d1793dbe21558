"""``segmenta personalize ope`` on an analyst's CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segmenta.ope_cli import app

pytestmark = pytest.mark.unit
HEADER = ["action", "reward", "logging_propensity", "target_probability", "loyalty"]


def write_log(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def simulated_rows(rows: int = 3000) -> list[list[object]]:
    """Logged with (0.6, 0.3, 0.1); the target is uniform; true conversion 0.2."""
    rng = np.random.default_rng(0)
    action = rng.choice(3, rows, p=[0.6, 0.3, 0.1])
    reward = rng.binomial(1, np.array([0.1, 0.2, 0.3])[action])
    loyalty = rng.normal(size=rows)
    return [
        [f"offer-{a}", int(r), [0.6, 0.3, 0.1][a], 1 / 3, round(float(x), 4)]
        for a, r, x in zip(action, reward, loyalty, strict=True)
    ]


def ope(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ope", *args])
    return result.exit_code, result.output


def test_a_log_gives_the_three_estimates_as_json(tmp_path: Path) -> None:
    code, output = ope("--log", str(write_log(tmp_path / "log.csv", simulated_rows())))
    assert code == 0, output
    report = json.loads(output)
    assert report["rows"] == 3000
    assert 0.3 * 3000 < report["ess"] < 3000
    assert "warning" not in report
    for name in ("ips", "snips", "dr"):
        estimate = report[name]
        assert estimate["ci_low"] <= estimate["estimate"] <= estimate["ci_high"]
        assert estimate["ci_low"] < 0.2 < estimate["ci_high"]


def test_a_log_far_from_the_target_carries_a_warning(tmp_path: Path) -> None:
    rows = [["a", 1, 0.999, 0.0, 0]] * 990 + [["b", 0, 0.001, 1.0, 0]] * 10
    code, output = ope("--log", str(write_log(tmp_path / "log.csv", rows)))
    assert code == 0, output
    assert "effective sample size" in json.loads(output)["warning"]


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log.csv", [["a", 1, 0.5]], HEADER[:3])
    code, output = ope("--log", str(path))
    assert code == 2
    assert "'target_probability' is missing" in output


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (["a", "yes", 0.5, 0.5, 1], "'reward', line 3: not a number"),
        (["a", 1, 0, 0.5, 1], "logging_propensity"),
        (["a", 1, 0.5, 2, 1], "target_probability"),
        (["a", 1, 0.5, 0.5, "gold"], "'loyalty', line 3"),
    ],
)
def test_an_invalid_value_is_named(tmp_path: Path, row: list[object], column: str) -> None:
    path = write_log(tmp_path / "log.csv", [["b", 0, 0.5, 0.5, 2], row])
    code, output = ope("--log", str(path))
    assert code == 2
    assert column in output.replace("\n", " ")


def test_context_columns_can_be_chosen(tmp_path: Path) -> None:
    rows = [[*row, "note"] for row in simulated_rows(500)]
    path = write_log(tmp_path / "log.csv", rows, [*HEADER, "comment"])
    code, output = ope("--log", str(path), "--context", "loyalty", "--bootstrap", "200")
    assert code == 0, output
    assert json.loads(output)["rows"] == 500
    assert ope("--log", str(path))[0] == 2  # "comment" is not a number
