"""Install uv into a private folder with nothing but the Python standard library.

``make install`` runs this when uv is not on PATH. It never touches the system Python:
Debian and Ubuntu mark theirs "externally managed" (PEP 668), so ``pip install uv`` there
stops with ``externally-managed-environment``, and their ``python3`` may lack pip
(python3-pip) or ensurepip (python3-venv). Routes, first that works:

1. a virtual environment with pip (needs ensurepip), then ``pip install uv``;
2. a virtual environment without pip, filled by the system's pip (``pip --python``);
3. the uv wheel from PyPI, checked against its published sha256, unpacked by hand.

Usage: ``python3 scripts/bootstrap_uv.py VERSION DIR``; uv ends up in ``DIR/bin/uv``.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import subprocess
import sys
import urllib.request
import venv
import zipfile
from pathlib import Path


def _run(*args: str | Path) -> bool:
    return subprocess.run([str(a) for a in args], check=False).returncode == 0  # noqa: S603


def _with_venv_pip(version: str, target: Path) -> bool:
    try:
        venv.create(target, with_pip=True, clear=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    return _run(target / "bin" / "python", "-m", "pip", "install", "--quiet", f"uv=={version}")


def _with_system_pip(version: str, target: Path) -> bool:
    venv.create(target, with_pip=False, clear=True)
    python = target / "bin" / "python"
    return _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", f"uv=={version}"
    )


def _wheel_matches(filename: str) -> bool:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    machine = machine or platform.machine().lower()
    system = sys.platform
    if system.startswith("linux"):
        return "manylinux" in filename and filename.endswith(f"_{machine}.whl")
    if system == "darwin":
        wanted = "arm64" if machine == "aarch64" else "x86_64"
        return "macosx" in filename and wanted in filename
    return False


def _from_pypi(version: str, target: Path) -> bool:
    index = f"https://pypi.org/pypi/uv/{version}/json"
    with urllib.request.urlopen(index, timeout=60) as answer:
        files = json.load(answer)["urls"]
    wheel = next((f for f in files if _wheel_matches(f["filename"])), None)
    if wheel is None:
        return False
    with urllib.request.urlopen(wheel["url"], timeout=300) as answer:  # noqa: S310
        data = answer.read()
    if hashlib.sha256(data).hexdigest() != wheel["digests"]["sha256"]:
        raise SystemExit(f"{wheel['filename']}: sha256 mismatch, refusing to install it")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        member = next(n for n in archive.namelist() if n.endswith(".data/scripts/uv"))
        binary = target / "bin" / "uv"
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_bytes(archive.read(member))
    binary.chmod(0o755)
    return True


def main(version: str, target: Path) -> None:
    for route in (_with_venv_pip, _with_system_pip, _from_pypi):
        try:
            if route(version, target) and (target / "bin" / "uv").is_file():
                sys.stdout.write(f"uv {version} installed in {target}/bin ({route.__name__})\n")
                return
        except OSError as exc:
            sys.stderr.write(f"{route.__name__}: {exc}\n")
        shutil.rmtree(target, ignore_errors=True)
    raise SystemExit(f"could not install uv {version}; install it yourself and re-run")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
