"""Assembles a feature set's SQL into the statements the repository runs.

A set's ``ctes`` and ``from_clause`` may use two placeholders, replaced here:

* ``{customers}``: a condition on ``customer c`` that selects the customers in scope;
* ``{rows}``: the same condition on an unqualified ``customer_pk`` column, for the source
  tables (orders, events, ...), so that a refresh of a few customers reads them through
  their ``customer_pk`` indexes instead of scanning the tenant.

and these bound parameters: ``:tenant_id``, ``:as_of`` (timestamptz), ``:as_of_days`` (the
same instant in days since 1970-01-01 UTC, a float), ``:feature_set``, the set's own
``params``, and per scope: ``:customer_pks`` (bigint[]) for ``"some"``, ``:pk_from`` and
``:pk_to`` (a half-open range of customer ids) for ``"range"``.
"""

from __future__ import annotations

from typing import Literal

from services.segment.features.sets import FeatureSet

# The customers a statement computes: the whole tenant, some named ones (a refresh), or
# a range of ids (one part of a full run that several connections share).
Scope = Literal["all", "some", "range"]

_CONDITIONS: dict[Scope, dict[str, str]] = {
    "all": {"{customers}": "TRUE", "{rows}": "TRUE"},
    "some": {
        "{customers}": "c.id = ANY(CAST(:customer_pks AS bigint[]))",
        "{rows}": "customer_pk = ANY(CAST(:customer_pks AS bigint[]))",
    },
    "range": {
        "{customers}": "c.id >= :pk_from AND c.id < :pk_to",
        "{rows}": "customer_pk >= :pk_from AND customer_pk < :pk_to",
    },
}

# A refresh scheduled "now" never replaces a row computed at a later cut-off: a full
# run that started before a customer's refresh must not overwrite it with older data.
_NEWER_ONLY = "WHERE customer_features.as_of <= EXCLUDED.as_of"


def _scoped(text: str, scope: Scope) -> str:
    for placeholder, condition in _CONDITIONS[scope].items():
        text = text.replace(placeholder, condition)
    return text


def _values_array(feature_set: FeatureSet) -> str:
    # A NULL feature is stored as 0: missing values must be numbers for the models.
    items = ",\n    ".join(
        f"coalesce(CAST(({f.expression}) AS float8), 0)" for f in feature_set.features
    )
    return f"ARRAY[\n    {items}\n]"


def vectors_sql(feature_set: FeatureSet, *, where: str) -> str:
    """``customer_pk, as_of, feature_values`` of stored rows matching ``where`` (a condition
    on ``f``, the ``customer_features`` row), the set's scores appended to each vector.

    Rows of another width (written by an earlier layout of the set) are left out."""
    scores = "".join(f", coalesce(CAST(({s.expression}) AS float8), 0)" for s in feature_set.scores)
    vector = (
        f"f.feature_values || CAST(ARRAY[{scores[2:]}] AS float8[])"
        if scores
        else "f.feature_values"
    )
    return (
        f"SELECT f.customer_pk, f.as_of, {vector} AS feature_values\n"
        "FROM customer_features f\n"
        "LEFT JOIN customer_score sc ON sc.customer_pk = f.customer_pk\n"
        f"WHERE f.feature_set = '{feature_set.name}'"
        f" AND cardinality(f.feature_values) = {feature_set.stored_width} AND ({where})"
    )


def select_sql(feature_set: FeatureSet, *, scope: Scope) -> str:
    """One row per customer in scope: ``customer_pk, feature_values`` (stored part only)."""
    return _scoped(
        f"WITH {feature_set.ctes}\n"
        f"SELECT s.customer_pk, {_values_array(feature_set)} AS feature_values\n"
        f"{feature_set.from_clause}",
        scope,
    )


def upsert_sql(feature_set: FeatureSet, *, scope: Scope, newer_only: bool) -> str:
    return _scoped(
        "INSERT INTO customer_features"
        " (customer_pk, feature_set, tenant_id, feature_values, as_of, updated_at)\n"
        f"WITH {feature_set.ctes}\n"
        f"SELECT s.customer_pk, :feature_set, :tenant_id, {_values_array(feature_set)},"
        " :as_of, now()\n"
        f"{feature_set.from_clause}\n"
        "ON CONFLICT (customer_pk, feature_set) DO UPDATE SET"
        " tenant_id = EXCLUDED.tenant_id, feature_values = EXCLUDED.feature_values,"
        " as_of = EXCLUDED.as_of, updated_at = EXCLUDED.updated_at\n"
        f"{_NEWER_ONLY if newer_only else ''}",
        scope,
    )
