"""What a person reads for a feature: its label, its unit and how its values are written.

One place for every screen and text that shows a feature (rules, descriptions, names, the
dashboard): ``avg_order_value > 52.5`` reads "average order value > €50" once rounded
(rounding lives in `rules`). Money needs the shop's currency; the caller passes it (the
segment API takes it from the tenant's orders) and without one amounts carry no symbol.
Features not listed get a label built from their name ("searches_90d" → "searches (90
days)") and a unit guessed from its last word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.segment.modeling.text import format_number

Unit = Literal["money", "days", "count", "share", "score", "rate", "number"]
SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩"}


@dataclass(frozen=True)
class Label:
    text: str
    unit: Unit = "number"
    ordered: bool = False
    """True where ``> 0`` means "has ordered": the value exists only with orders."""


LABELS: dict[str, Label] = {
    "recency_days": Label("days since last order", "days"),
    "frequency": Label("orders", "count", ordered=True),
    "orders_365d": Label("orders in the last year", "count"),
    "monetary": Label("total spend", "money", ordered=True),
    "avg_order_value": Label("average order value", "money", ordered=True),
    "avg_item_price": Label("average item price", "money", ordered=True),
    "items_per_order": Label("items per order", "number"),
    "ipt_mean_days": Label("days between orders", "days"),
    "tenure_days": Label("days as a customer", "days"),
    "discount_share": Label("orders with a discount code", "share"),
    "return_rate": Label("returns per order", "rate"),
    "refund_rate": Label("refunds per order", "rate"),
    "channel_web_share": Label("orders on the web", "share"),
    "channel_app_share": Label("orders in the app", "share"),
    "channel_store_share": Label("orders in a store", "share"),
    "sessions_90d": Label("visits in the last 90 days", "count"),
    "email_opens_90d": Label("email opens in the last 90 days", "count"),
    "email_clicks_90d": Label("email clicks in the last 90 days", "count"),
    "searches_90d": Label("searches in the last 90 days", "count"),
    "add_to_carts_90d": Label("add-to-carts in the last 90 days", "count"),
    "abandoned_cart_days_90d": Label("days with an abandoned cart (last 90)", "count"),
    "store_visits_90d": Label("store visits in the last 90 days", "count"),
    "support_contacts_per_30d": Label("support contacts per month", "rate"),
    "review_sentiment_decayed": Label("review sentiment (-1 to 1)", "score"),
    "review_negative_share": Label("negative reviews", "share"),
    "transcript_sentiment_decayed": Label("support-chat sentiment (-1 to 1)", "score"),
    "transcript_negative_share": Label("negative support chats", "share"),
    "clv": Label("predicted lifetime value", "money"),
    "p_alive": Label("chance still active", "share"),
}
_UNIT_WORDS: dict[str, Unit] = {"days": "days", "share": "share", "rate": "rate"}


def label(feature: str) -> Label:
    known = LABELS.get(feature)
    if known is not None:
        return known
    words = feature.split("_")
    unit = _UNIT_WORDS.get(words[-1], "number")
    window = ""
    if words[-1].endswith("d") and words[-1][:-1].isdigit():
        window, words = f" (last {words[-1][:-1]} days)", words[:-1]
    return Label(" ".join(words).replace("avg ", "average ") + window, unit)


def money(value: float, currency: str | None) -> str:
    amount = format_number(value)
    if not currency:
        return amount
    symbol = SYMBOLS.get(currency.upper())
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"


def value_text(feature: str, value: float, currency: str | None = None) -> str:
    """A value as it reads after the label: "€50", "40%", "2" (labels of days say so)."""
    unit = label(feature).unit
    if unit == "money":
        return money(value, currency)
    if unit == "share":
        return f"{format_number(100 * value)}%"
    return format_number(value)


def condition_text(
    feature: str, above: float | None, at_most: float | None, currency: str | None = None
) -> str:
    """One interval as words: "average order value > €50", "orders: none"."""
    meta = label(feature)
    if meta.ordered and above == 0 and at_most is None:
        return "has ordered"
    if meta.ordered and above is None and at_most == 0:
        return "has never ordered"
    if above is None and at_most == 0 and meta.unit in ("count", "share", "rate", "money"):
        return f"{meta.text}: none"
    if above is not None and at_most is not None:
        low, high = value_text(feature, above, currency), value_text(feature, at_most, currency)
        return f"{meta.text} between {low} and {high}"
    if above is not None:
        return f"{meta.text} > {value_text(feature, above, currency)}"
    return f"{meta.text} ≤ {value_text(feature, at_most or 0.0, currency)}"


def rule_text(paths: list[list[str]]) -> str:
    """Paths of conditions as one line, bracketed wherever "and" meets "or"."""
    parts = [" and ".join(conditions) or "all customers" for conditions in paths]
    if len(parts) == 1:
        return parts[0]
    return " or ".join(
        f"({part})" if len(conditions) > 1 else part
        for part, conditions in zip(parts, paths, strict=True)
    )
