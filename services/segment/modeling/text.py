"""Numbers as people read them in rules and descriptions."""

from __future__ import annotations

import math


def format_number(value: float, digits: int = 4) -> str:
    """About ``digits`` significant digits, no exponent for everyday magnitudes:
    120.50000762 → "120.5", 0.0412345 → "0.04123", 25000.4 → "25000"."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= digits:
        return f"{value:.0f}"
    decimals = max(0, digits - 1 - magnitude)
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
