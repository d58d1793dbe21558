"""Human names and one-line descriptions of segments, by rules on their standout features.

Each feature is given a role by the words of its name (``recency_days`` → recency,
``discount_share`` → discount, ...); a role's signal is the mean lift of its features
(lift: the segment's mean minus the population's, in population standard deviations,
after the same log transform the model used). The first rule that matches names the
segment, so the order below is the priority: a long-lapsed customer is never called
loyal, a new one never lapsing.

Some names claim a fact no lift can carry: only a customer who bought can lapse. Where the
segment's mean number of orders is known (a ``frequency`` or ``orders`` feature) and below
one half, most members never ordered: they are window shoppers (or sign-ups who never
bought), never "lapsing" however long ago they signed up (a customer without orders has
``recency_days`` = their tenure, which reads as a long absence)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from services.segment.modeling.labels import label

HIGH = 0.5
STRONG = 1.0
# (role, sign, patterns): a pattern matches a feature name holding all of its
# "_"-separated words ("avg_order" matches "avg_order_value"). The first match wins.
# A negative sign counts against the role: a high share of negative reviews is low sentiment.
ROLES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("recency", 1.0, ("recency", "since_last")),
    ("tenure", 1.0, ("tenure", "signup", "customer_age", "since_first", "first_order")),
    ("discount", 1.0, ("discount", "coupon", "promo")),
    ("sentiment", -1.0, ("negative",)),
    ("sentiment", 1.0, ("sentiment", "rating", "satisfaction", "nps")),
    ("support", 1.0, ("support", "complaints", "tickets", "contacts", "contact", "churn")),
    ("returns", 1.0, ("return", "returns", "refund", "refunds")),
    ("basket", 1.0, ("avg_order", "aov", "basket", "order_value", "per_order", "item_price")),
    ("monetary", 1.0, ("monetary", "revenue", "spend", "clv", "value")),
    # Days between purchases grow as frequency falls: kept out of "frequency".
    ("purchase_gap", 1.0, ("ipt", "inter_purchase", "interpurchase", "between_orders")),
    ("frequency", 1.0, ("frequency", "order", "orders", "purchase", "purchases")),
    (
        "engagement",
        1.0,
        (
            *("session", "sessions", "page_view", "page_views", "engagement", "visits"),
            *("opens", "clicks", "click", "searches", "search", "carts", "cart", "events"),
        ),
    ),
)
Signals = dict[str, float]
Rule = tuple[str, Callable[[Signals], bool]]


def _high(signals: Signals, role: str, level: float = HIGH) -> bool:
    return signals.get(role, 0.0) >= level


def _low(signals: Signals, role: str, level: float = HIGH) -> bool:
    return signals.get(role, 0.0) <= -level


def _unhappy(s: Signals) -> bool:
    return _low(s, "sentiment") or _high(s, "support") or _high(s, "returns")


def _spender(s: Signals) -> bool:
    return _high(s, "monetary") or _high(s, "basket")


# Set in the signals when the segment's orders are known: 1.0 if most never ordered.
NEVER_BOUGHT = "never_bought"
ORDER_COUNTS = ("frequency", "orders", "n_orders", "order_count")


def _never_bought(s: Signals) -> bool:
    return s.get(NEVER_BOUGHT) == 1.0


def _bought(s: Signals) -> bool:
    return s.get(NEVER_BOUGHT) != 1.0


RULES: tuple[Rule, ...] = (
    ("Window shoppers", lambda s: _never_bought(s) and not _low(s, "engagement")),
    ("Sign-ups who never bought", _never_bought),
    ("Window shoppers", lambda s: _low(s, "frequency", STRONG) and _high(s, "engagement")),
    ("New customers", lambda s: _low(s, "tenure", STRONG)),
    ("Lapsing high spenders", lambda s: _bought(s) and _high(s, "recency") and _spender(s)),
    ("Unhappy at-risk", lambda s: _bought(s) and _high(s, "recency") and _unhappy(s)),
    ("Lapsing customers", lambda s: _bought(s) and _high(s, "recency")),
    ("Unhappy returners", lambda s: _high(s, "returns")),
    ("Unhappy customers", _unhappy),
    ("Bargain hunters", lambda s: _high(s, "discount")),
    ("Champions", lambda s: _high(s, "frequency", STRONG) and _high(s, "monetary", STRONG)),
    ("Loyal frequent buyers", lambda s: _high(s, "frequency")),
    ("Big-basket buyers", lambda s: _high(s, "basket")),
    ("High spenders", lambda s: _high(s, "monetary")),
    ("Loyal regulars", lambda s: _high(s, "tenure")),
    ("New customers", lambda s: _low(s, "frequency") and _low(s, "recency")),
    ("Occasional buyers", lambda s: _low(s, "frequency")),
    ("Engaged browsers", lambda s: _high(s, "engagement")),
)


def feature_role(name: str) -> tuple[str, float] | None:
    """The feature's role and sign, or None: 0/1 ``has_*`` flags say whether data exists,
    not how much, so they play none."""
    words = name.lower().split("_")
    if words[0] == "has":
        return None
    for role, sign, patterns in ROLES:
        if any(set(pattern.split("_")) <= set(words) for pattern in patterns):
            return role, sign
    return None


def role_signals(lifts: dict[str, float], means: dict[str, float] | None = None) -> Signals:
    by_role: dict[str, list[float]] = {}
    for feature, lift in lifts.items():
        role = feature_role(feature)
        if role is not None:
            by_role.setdefault(role[0], []).append(role[1] * lift)
    signals = {role: sum(values) / len(values) for role, values in by_role.items()}
    orders = next((means[n] for n in ORDER_COUNTS if means and n in means), None)
    if orders is not None:
        signals[NEVER_BOUGHT] = 1.0 if orders < 0.5 else 0.0
    return signals


def base_name(lifts: dict[str, float], means: dict[str, float] | None = None) -> str:
    """``means``: the segment's mean per feature in original units (for the facts)."""
    signals = role_signals(lifts, means)
    for name, matches in RULES:
        if matches(signals):
            return name
    top = max(lifts.items(), key=lambda item: abs(item[1]), default=None)
    if top is None or abs(top[1]) < HIGH:
        return "Average customers"
    return f"{'High' if top[1] > 0 else 'Low'} {label(top[0]).text}"


def unique_names(names: Sequence[str], lifts: Sequence[dict[str, float]]) -> list[str]:
    """A repeated name is qualified by what sets the segment apart from the first (largest)
    segment of that name, which keeps the plain name: "Loyal regulars (higher store
    visits in the last 90 days)". Names that still clash are numbered."""
    first: dict[str, dict[str, float]] = {}
    qualified = []
    for base, own in zip(names, lifts, strict=True):
        if base not in first:
            first[base] = own
            qualified.append(base)
            continue
        other = first[base]
        contrast = {f: own[f] - other.get(f, 0.0) for f in own}
        top = max(contrast, key=lambda f: abs(contrast[f]), default=None)
        if top is None or contrast[top] == 0:
            qualified.append(base)
            continue
        direction = "higher" if contrast[top] > 0 else "lower"
        qualified.append(f"{base} ({direction} {label(top).text})")
    result, used = [], Counter[str]()
    for name in qualified:
        used[name] += 1
        result.append(name if used[name] == 1 else f"{name} {used[name]}")
    return result
