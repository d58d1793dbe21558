"""``GET /v1/customers/{customer_id}``: one customer's features, segment, scores, sentiment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import Engine
from sqlmodel import Session

from services.segment.anomalies.repository import customer_flags
from services.segment.anomalies.schemas import CustomerAnomaly
from services.segment.customers import repository as repo
from services.segment.customers.schemas import (
    CustomerProfile,
    CustomerScores,
    CustomerSegment,
    CustomerSentiment,
    MembershipChange,
    SentimentSummary,
)
from services.segment.features.registry import FEATURE_SETS
from services.segment.predictions.repository import customer_predictions
from services.segment.predictions.schemas import CustomerPrediction
from services.segment.scoring.clv_trust import untrusted_reason
from services.segment.segmentations.repository import active_run
from services.segment.segmentations.router import SegmentSettingsDep
from services.segment.segmentations.schemas import error_responses
from services.segment.segments.repository import shop_currency
from services.segment.settings import SegmentSettings
from shared.auth import Principal, Scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1/customers", tags=["customers"])
ReaderDep = Annotated[Principal, Depends(require(Scope.SEGMENTS_READ))]
CustomerId = Annotated[
    str,
    Path(min_length=1, max_length=128, pattern=r"^[^\x00]+$", examples=["c-000123"]),
]


def feature_names(feature_set: str) -> list[str] | None:
    """The names of a stored vector: its feature set's, in vector order (a run records
    only the subset it segmented on, which does not name the vector's values)."""
    released = FEATURE_SETS.get(feature_set)
    return None if released is None else released.names


def named_features(
    names: Sequence[str] | None, values: Sequence[float | None] | None
) -> dict[str, float | None] | None:
    if names is None or values is None or len(names) != len(values):
        return None
    return dict(zip(names, values, strict=True))


def clv_note(
    features: dict[str, float | None] | None, clv: float | None, min_history_days: float
) -> str | None:
    """Why the customer has no CLV, when they have none."""
    if clv is not None or features is None:
        return None
    days = features.get("purchase_days") or 0.0
    if not days:
        return "no orders yet"
    age = features.get("first_purchase_age_days")
    if days <= 1 and age is not None and age < min_history_days:
        return untrusted_reason(min_history_days)
    return None


def _read_customer(
    engine: Engine, tenant_id: int, customer_id: str, settings: SegmentSettings
) -> CustomerProfile:
    default_feature_set = settings.segment_feature_set
    with Session(engine) as session:
        pk = repo.customer_pk(session, tenant_id=tenant_id, customer_id=customer_id)
        if pk is None:
            raise ApiError(
                404,
                f"no customer {customer_id!r}",
                errors=[{"field": "customer_id", "message": "not found"}],
            )
        run = active_run(session, tenant_id=tenant_id)
        feature_set = run["feature_set"] if run else default_feature_set
        stored = repo.features(session, tenant_id=tenant_id, pk=pk, feature_set=feature_set)
        member = repo.membership(
            session, tenant_id=tenant_id, pk=pk, active_run_id=run["id"] if run else None
        )
        score = repo.scores(session, tenant_id=tenant_id, pk=pk)
        moods = repo.sentiment(session, tenant_id=tenant_id, pk=pk)
        changes = repo.recent_changes(session, tenant_id=tenant_id, pk=pk)
        predicted = customer_predictions(session, tenant_id=tenant_id, pk=pk)
        flags = customer_flags(session, tenant_id=tenant_id, pk=pk)
        currency = shop_currency(session, tenant_id=tenant_id) or settings.segment_currency
    values = stored["feature_values"] if stored else None
    features = named_features(feature_names(feature_set), values)
    if score:
        note = clv_note(features, score["clv"], settings.clv_min_history_days)
        score = {**score, "clv_note": note}
    return CustomerProfile(
        customer_id=customer_id,
        feature_set=feature_set,
        currency=currency,
        features=features,
        features_as_of=stored["as_of"] if stored else None,
        segment=CustomerSegment.model_validate(member) if member else None,
        scores=CustomerScores.model_validate(score) if score else None,
        sentiment=CustomerSentiment(
            reviews=SentimentSummary.model_validate(moods.get("review", {})),
            transcripts=SentimentSummary.model_validate(moods.get("transcript", {})),
        ),
        history=[MembershipChange.model_validate(change) for change in changes],
        predictions=[CustomerPrediction.model_validate(row) for row in predicted],
        anomalies=[CustomerAnomaly.model_validate(flag) for flag in flags],
    )


@router.get(
    "/{customer_id}",
    summary="One customer: features, segment, value, risk and sentiment",
    description="The customer's features (by name), current segment with since when and "
    "why, CLV, P(alive), expected purchases, churn and anomaly scores, the active churn "
    "and purchase-propensity models' scores with their top reasons, a summary of the "
    "sentiment of their reviews and support transcripts, and their last 10 segment "
    "changes. `customer_id` is the id the customer was sent with. Needs `segments:read`.",
    response_model=CustomerProfile,
    responses=error_responses(404),
)
async def read_customer(
    customer_id: CustomerId,
    principal: ReaderDep,
    database: DatabaseDep,
    settings: SegmentSettingsDep,
) -> CustomerProfile:
    return await database.run(
        _read_customer,
        database.engine,
        principal.tenant_id,
        customer_id,
        settings,
    )
