"""The CLI installed with only its own extra (``segmenta[cli]``): a command that needs
another extra says which, instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.unit

# Loaded by Python at start (first ``sitecustomize`` on the path): the segment extra's
# libraries cannot be imported, as on a host with only segmenta[cli].
WITHOUT_SEGMENT_EXTRA = """
import sys
from importlib.abc import MetaPathFinder

class _NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"numpy", "scipy", "sklearn"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""


def _segmenta_with_cli_extra_only(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITHOUT_SEGMENT_EXTRA)
    return subprocess.run(
        [sys.executable, "-m", "segmenta", *args],
        env={"PYTHONPATH": f"{site}:{ROOT}", "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_clv_fit_without_the_segment_extra_names_the_extra_to_install(tmp_path: Path) -> None:
    transactions = tmp_path / "transactions.csv"
    transactions.write_text("customer_id,date,amount\nc-1,2024-01-05,20.0\n")
    result = _segmenta_with_cli_extra_only(
        tmp_path,
        "clv",
        "fit",
        "--transactions",
        str(transactions),
        "--calibration-end",
        "2024-06-30",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "segmenta clv fit needs the segment extra: pip install 'segmenta[segment]'" in result.stderr
    )
    assert "Traceback" not in result.stderr + result.stdout


def test_the_other_commands_start_without_the_segment_extra(tmp_path: Path) -> None:
    result = _segmenta_with_cli_extra_only(tmp_path, "generate", "--help")
    assert result.returncode == 0, result.stderr
    assert "--customers" in result.stdout


def test_personalize_ope_without_its_extra_names_the_extra_to_install(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text("action,reward,logging_propensity,target_probability\na,1,0.5,0.5\n")
    result = _segmenta_with_cli_extra_only(tmp_path, "personalize", "ope", "--log", str(log))
    assert result.returncode == 2, result.stdout + result.stderr
    expected = "segmenta personalize ope needs the personalize extra: "
    assert expected + "pip install 'segmenta[personalize]'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
