"""Feature sets: a named version, its ordered feature names and the SQL that computes them.

A stored ``customer_features.feature_values`` array is only meaningful next to the
names of the set that wrote it, so a set never changes once released: new or changed
features make a new version (``v2``) with its own rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    expression: str
    """A SQL expression over the columns that the set's ``from_clause`` exposes."""


@dataclass(frozen=True)
class FeatureSet:
    """One version of the per-customer features.

    ``ctes`` are the common table expressions (without ``WITH``) and ``from_clause`` the
    ``FROM`` part of one query that yields a row per customer in scope; the query is
    assembled by ``services.segment.features.sql``, which also defines the placeholders
    and the bound parameters the text may use. ``params`` are further bound parameters
    (windows, half-lives) that belong to the version.

    ``scores`` are features that models compute from the stored ones (CLV, P(alive)):
    their expressions read the customer's ``customer_score`` row (``sc``) and they are
    joined to the stored vector whenever it is read, so a vector always carries the
    latest scores, and scoring never has to rewrite the feature rows.
    """

    name: str
    features: tuple[Feature, ...]
    ctes: str
    from_clause: str
    params: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))
    scores: tuple[Feature, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"feature set {self.name!r} repeats a feature name")

    @property
    def names(self) -> list[str]:
        """Every feature in vector order: the stored ones, then the scores."""
        return [feature.name for feature in (*self.features, *self.scores)]

    @property
    def stored_width(self) -> int:
        """How many values ``customer_features.feature_values`` holds for this set."""
        return len(self.features)

    def describe(self) -> list[dict[str, str]]:
        """Names and one-line descriptions, in vector order."""
        return [
            {"name": f.name, "description": f.description} for f in (*self.features, *self.scores)
        ]


class FeatureSetDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass
