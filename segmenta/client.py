"""Uploading files to the ingest API with a progress bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

CHUNK = 1 << 20


def content_type(path: Path) -> str:
    return "text/csv" if path.suffix.lower() == ".csv" else "application/x-ndjson"


def upload(api_url: str, key: str, kind: str, path: Path, *, quiet: bool = False) -> Any:
    """Stream ``path`` to ``POST /v1/import/{kind}``; the server's counts."""
    size = path.stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        disable=quiet,
    ) as progress:
        task = progress.add_task(f"{kind:<12}", total=size)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(CHUNK):
                    progress.advance(task, len(chunk))
                    yield chunk

        response = httpx.post(
            f"{api_url}/v1/import/{kind}",
            content=chunks(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": content_type(path)},
            timeout=httpx.Timeout(30, read=3_600),
        )
    if response.status_code != 200:
        raise SystemExit(f"import of {path} failed: {response.status_code} {response.text}")
    return response.json()
