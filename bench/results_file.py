"""``bench/RESULTS.md`` holds one section per benchmark; each benchmark rewrites only its own."""

from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Benchmark results\n\nEach section is rewritten by the benchmark named in it.\n"


def write_section(path: Path, name: str, markdown: str) -> None:
    """Replace the section ``name`` of the results file (added at the end when new)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else TITLE
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")


def read_section(path: Path, name: str) -> str | None:
    """The section ``name`` of the results file as last written, or None."""
    if not path.exists():
        return None
    begin, end = re.escape(f"<!-- {name}:begin -->"), re.escape(f"<!-- {name}:end -->")
    found = re.search(begin + r"\n(.*?)\n" + end, path.read_text(encoding="utf-8"), re.DOTALL)
    return found.group(1) if found else None
