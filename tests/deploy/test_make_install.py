"""`make install` on a system Python that PEP 668 marks "externally managed" (Debian's).

The README promises Python 3.11 and make, nothing else: uv must arrive without pip
touching the system's packages, which such a Python refuses.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.compose_support import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SYSTEM_PYTHON = Path("/usr/bin/python3")


def _externally_managed() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    stdlib = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


@pytest.mark.skipif(not _externally_managed(), reason="no externally managed /usr/bin/python3")
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_uv_is_installed_beside_an_externally_managed_python(tmp_path: Path) -> None:
    target = tmp_path / "uv-bootstrap"
    # Only the system's directories on PATH: no uv, and `python3` is the managed one.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    result = subprocess.run(
        ["make", "--no-print-directory", "uv", f"UV_BOOTSTRAP={target}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "externally-managed-environment" not in result.stdout + result.stderr
    version = subprocess.run(
        [target / "bin" / "uv", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("uv 0.13.8")
