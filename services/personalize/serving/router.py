"""``GET /v1/offers/{customer_id}``: what the storefront shows this visitor now.

The hot path touches Redis only (one round trip to read, one to log the decision) and
never Postgres, so answers keep flowing while Postgres is down. With Redis unreachable
the answer is the placement's default offer as this process last saw it, strategy
``fallback``, its decision logged straight to Postgres; with Postgres unreachable too, a
503 (nothing could log the decision, and an answer is acknowledged only once logged).
A logged decision is also kept in this process for a few seconds, to be written again
if Redis loses it before the drain stored it (``replay.py``).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from sqlalchemy import Engine

from services.personalize.cache import shown_key, subject_hash
from services.personalize.decisions import insert_decisions
from services.personalize.metrics import DECISIONS, UNLOGGED
from services.personalize.serving.decide import Choice, Decider, Shown, Visitor
from services.personalize.serving.log import (
    PlacementUnknown,
    SnapshotCache,
    capped_shown,
    decision_record,
    log_decision,
    read_visitor,
)
from services.personalize.serving.replay import DecisionReplay, Kept
from services.personalize.serving.schemas import OfferAnswer
from services.personalize.settings import PersonalizeSettings
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.deps import BEARER_SECURITY, Database, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

log = logging.getLogger(__name__)
storefront_principal = require(Scope.OFFERS_READ, cached=True)
StorefrontDep = Annotated[Principal, Depends(storefront_principal)]
CUSTOMER_ID_MAX = 128
CustomerId = Annotated[str, Path(min_length=1, max_length=CUSTOMER_ID_MAX, pattern=r"^[^\x00]+$")]
PlacementName = Annotated[str, Query(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
N_MAX = 10
# What the plain path accepts: a subset of what the declared parameters accept (the rest,
# valid or not, goes through FastAPI, which names the field at fault).
_PLACEMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_COUNTS = {str(n): n for n in range(1, N_MAX + 1)}


def _plain_params(request: Request) -> tuple[str, str, int] | None:
    """(customer id, placement, n) when they are plainly valid, else None."""
    customer_id: str = request.path_params["customer_id"]
    if not 0 < len(customer_id) <= CUSTOMER_ID_MAX or "\x00" in customer_id:
        return None
    query = request.query_params
    placement = query.get("placement", "home")
    n = _COUNTS.get(query.get("n", "1"))
    if n is None or _PLACEMENT.fullmatch(placement) is None:
        return None
    return customer_id, placement, n


class OffersRoute(APIRoute):
    """The storefront's route, answered without FastAPI's generic parameter solving when
    its parameters are plainly valid (most of a request's CPU otherwise).

    The key is checked first either way, as FastAPI solves the dependency before it
    validates parameters: an invalid request gets the same 401/403/429 or 422 as before.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        generic = super().get_route_handler()

        async def handler(request: Request) -> Response:
            params = _plain_params(request)
            if params is None:
                return await generic(request)
            customer_id, placement, n = params
            principal = await storefront_principal(request)
            return await read_customer_offers(customer_id, principal, request, placement, n)

        return handler


router = APIRouter(prefix="/v1", tags=["storefront"], route_class=OffersRoute)


def _answer(customer_id: str, placement: str, decision_id: str, choice: Choice) -> Response:
    """The `OfferAnswer`, serialised straight from the decision: on the hot path a response
    model's validation and serialisation cost more than the decision itself."""
    body = {
        "decision_id": decision_id,
        "customer_id": customer_id,
        "placement": placement,
        "segment": choice.segment if choice.personalised else None,
        "strategy": choice.strategy,
        "offers": [_shown(s) for s in choice.shown],
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _shown(shown: Shown) -> dict[str, object]:
    offer = shown.offer
    return {
        "offer_id": offer.offer_id,
        "name": offer.name,
        "kind": offer.kind,
        "discount_code": offer.discount_code,
        "rank": shown.rank,
        "propensity": shown.propensity,  # exactly as logged
    }


def _fallback(cache: SnapshotCache, tenant_id: int, placement: str) -> Choice:
    snapshot = cache.last_good(tenant_id, placement)
    offer = snapshot.offer(snapshot.default_offer_id) if snapshot else None
    shown = (Shown(offer, 0, 1.0),) if offer is not None else ()
    eligible = (offer.offer_id,) if offer is not None else ()
    return Choice("fallback", None, shown, False, eligible=eligible)


@router.get(
    "/offers/{customer_id}",
    summary="Offers for a visitor at a placement",
    description="Chooses up to `n` offers for the customer at the placement and logs the "
    "decision (`decision_id`, to name in feedback). Unknown customers get the cold-start "
    "answer, customers without marketing consent the non-personalised default, holdout "
    "customers the holdout answer. Needs `offers:read`.",
    response_model=None,
    responses={200: {"model": OfferAnswer, "description": "What to show"}, **error_responses(404)},
    openapi_extra={"security": BEARER_SECURITY},
)
async def read_customer_offers(
    customer_id: CustomerId,
    principal: StorefrontDep,
    request: Request,
    placement: PlacementName = "home",
    n: Annotated[int, Query(ge=1, le=N_MAX)] = 1,
) -> Response:
    state = request.app.state
    settings: PersonalizeSettings = state.settings
    cache: SnapshotCache = state.snapshots
    decider: Decider = state.decider
    tenant_id = principal.tenant_id
    subject = subject_hash(state.secret, customer_id)
    decision_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    replay: DecisionReplay = state.replay
    kept: Kept | None = None
    try:
        snapshot, visitor = await read_visitor(
            state.coalescer,
            cache,
            tenant_id=tenant_id,
            placement=placement,
            subject=subject,
            day=now.date(),
        )
        choice = decider.decide(snapshot, visitor, n, now)
        record = decision_record(
            decision_id=decision_id,
            tenant_id=tenant_id,
            placement=placement,
            visitor=visitor,
            choice=choice,
            policy_version=snapshot.policy_version,
            created_at=now,
        )
        kept = replay.keep(tenant_id=tenant_id, decision_id=decision_id, record=record)
        await log_decision(
            state.coalescer,
            tenant_id=tenant_id,
            decision_id=decision_id,
            record=record,
            ttl_s=settings.personalize_decision_ttl_s,
            counted=capped_shown(choice),
            counter_key=shown_key(tenant_id, subject, now.date()),
        )
    except PlacementUnknown:
        errors = [{"field": "placement", "message": "no offers are configured here"}]
        raise ApiError(404, f"no placement {placement}", errors=errors) from None
    except RedisError as exc:
        if kept is not None:  # not acknowledged from Redis: the fallback's record is logged
            replay.drop(kept)
        log.warning("Redis unreachable, answering with the fallback: %s", type(exc).__name__)
        choice = _fallback(cache, tenant_id, placement)
        visitor = Visitor(subject, None, False, None)
        record = decision_record(
            decision_id=decision_id,
            tenant_id=tenant_id,
            placement=placement,
            visitor=visitor,
            choice=choice,
            policy_version=None,
            created_at=now,
        )
        await _log_fallback(state.database, record)
    DECISIONS.labels(choice.strategy).inc()
    return _answer(customer_id, placement, decision_id, choice)


async def _log_fallback(database: Database, record: bytes) -> None:
    """A fallback answer's decision, straight into Postgres (Redis is what failed). With
    Postgres failing too, no answer: an answer is acknowledged only once its decision is
    logged (RELIABILITY.md), so the error goes on to its 503 (Retry-After; the storefront
    asks again) rather than a 200 whose decision would be lost."""

    def work(engine: Engine) -> None:
        with session_scope(engine) as session:
            insert_decisions(session, [record])

    try:
        await database.run(work, database.engine)
    except Exception as exc:
        UNLOGGED.inc()
        log.error("fallback decision not logged, answer refused: %s", type(exc).__name__)
        raise
