"""A segment's colour follows its key, never its place in a list.

Keys are stable across retrains (``s1``, ``s2``, ...; see `modeling.identity`), so
"Champions" keep their colour when a retrain adds, drops or re-sorts segments, and the
same key has the same colour in every chart and in the report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

# Fifteen distinguishable colours: a run has at most 15 segments on the dashboard.
PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#eeca3b",
    "#b279a2",
    "#ff9da6",
    "#9d755d",
    "#2f4b7c",
    "#a05195",
    "#00876c",
    "#d45087",
    "#8c6d31",
    "#665191",
)
NOISE_COLOR = "#c4c9d2"
_NUMBERED = re.compile(r"^s(\d+)$")


def segment_color(key: str) -> str:
    if key in ("", "noise"):
        return NOISE_COLOR
    numbered = _NUMBERED.match(key)
    if numbered:
        return PALETTE[(int(numbered.group(1)) - 1) % len(PALETTE)]
    digest = hashlib.sha256(key.encode()).digest()
    return PALETTE[digest[0] % len(PALETTE)]


def segment_colors(keys: Iterable[str]) -> dict[str, str]:
    return {key: segment_color(key) for key in keys}
