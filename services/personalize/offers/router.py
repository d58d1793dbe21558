"""``/v1/offers`` and ``/v1/placements``: what the storefront may be shown, and how (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from sqlalchemy import Engine
from sqlmodel import Session

from services.personalize.offers import service
from services.personalize.offers.schemas import (
    OfferCreate,
    OfferPage,
    OfferPublic,
    OfferUpdate,
    PlacementPublic,
    PlacementUpdate,
)
from shared.auth import Principal, Scope
from shared.db import session_scope
from shared.web.deps import DatabaseDep, require
from shared.web.errors import ApiError
from shared.web.responses import error_responses

router = APIRouter(prefix="/v1", tags=["offers"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]
OfferId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
PlacementName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def _error(status: int, field: str, message: str, detail: str) -> ApiError:
    return ApiError(status, detail, errors=[{"field": field, "message": message}])


def _offer_call(engine: Engine, work: service.OfferWork) -> OfferPublic:
    try:
        with session_scope(engine) as session:
            return OfferPublic.model_validate(work(session))
    except service.OfferDoesNotExist as exc:
        raise _error(404, "offer_id", "not found", f"no offer {exc}") from None
    except service.OfferAlreadyExists as exc:
        raise _error(409, "offer_id", "already exists", f"offer {exc} exists") from None


@router.post(
    "/offers",
    status_code=201,
    summary="Create an offer",
    description="The offer serves on its placements (created with the defaults when new), "
    "to the listed segments or to everyone, between `starts_at` and `ends_at`. Needs `admin`.",
    response_model=OfferPublic,
    responses=error_responses(409, 413),
)
async def create_offer(
    body: OfferCreate, principal: AdminDep, database: DatabaseDep, response: Response
) -> OfferPublic:
    def work(session: Session) -> object:
        return service.create_offer(session, tenant_id=principal.tenant_id, body=body)

    offer = await database.run(_offer_call, database.engine, work)
    response.headers["Location"] = f"/v1/offers/{offer.offer_id}"
    return offer


@router.put(
    "/offers/{offer_id}",
    summary="Replace an offer's definition",
    response_model=OfferPublic,
    responses=error_responses(404, 413),
)
async def update_offer(
    offer_id: OfferId, body: OfferUpdate, principal: AdminDep, database: DatabaseDep
) -> OfferPublic:
    def work(session: Session) -> object:
        return service.update_offer(
            session, tenant_id=principal.tenant_id, offer_id=offer_id, body=body
        )

    return await database.run(_offer_call, database.engine, work)


@router.delete(
    "/offers/{offer_id}",
    summary="Retire an offer",
    description="It stops serving at once; its decisions and feedback are kept.",
    response_model=OfferPublic,
    responses=error_responses(404),
)
async def delete_offer(
    offer_id: OfferId, principal: AdminDep, database: DatabaseDep
) -> OfferPublic:
    def work(session: Session) -> object:
        return service.retire_offer(session, tenant_id=principal.tenant_id, offer_id=offer_id)

    return await database.run(_offer_call, database.engine, work)


def _list(engine: Engine, tenant_id: int, include_retired: bool) -> OfferPage:
    with Session(engine) as session:
        offers = service.list_offers(session, tenant_id=tenant_id, include_retired=include_retired)
        return OfferPage(offers=[OfferPublic.model_validate(o) for o in offers])


@router.get(
    "/offers",
    summary="The tenant's offers",
    response_model=OfferPage,
    responses=error_responses(),
)
async def read_offer_list(
    principal: AdminDep,
    database: DatabaseDep,
    include_retired: Annotated[bool, Query()] = False,
) -> OfferPage:
    return await database.run(_list, database.engine, principal.tenant_id, include_retired)


def _configure(engine: Engine, tenant_id: int, name: str, body: PlacementUpdate) -> PlacementPublic:
    try:
        with session_scope(engine) as session:
            placement = service.configure_placement(
                session, tenant_id=tenant_id, name=name, body=body
            )
            return PlacementPublic.model_validate(placement)
    except service.DefaultOfferInvalid as exc:
        message = "no such active offer on this placement"
        raise _error(
            422, "default_offer_id", message, f"offer {exc} cannot be the default"
        ) from None


@router.put(
    "/placements/{placement}",
    summary="Configure a placement",
    description="How its answer is chosen: `bandit` (Thompson sampling per segment, the "
    "default), `static` (the default offer) or `random`; the sticky holdout share; the "
    "offer shown to holdout and non-consenting customers. Needs `admin`.",
    response_model=PlacementPublic,
    responses=error_responses(413),
)
async def update_placement(
    placement: PlacementName, body: PlacementUpdate, principal: AdminDep, database: DatabaseDep
) -> PlacementPublic:
    return await database.run(_configure, database.engine, principal.tenant_id, placement, body)


def _read_placement(engine: Engine, tenant_id: int, name: str) -> PlacementPublic:
    try:
        with Session(engine) as session:
            placement = service.read_placement(session, tenant_id=tenant_id, name=name)
            return PlacementPublic.model_validate(placement)
    except service.PlacementDoesNotExist:
        raise _error(404, "placement", "not found", f"no placement {name}") from None


@router.get(
    "/placements/{placement}",
    summary="A placement's configuration",
    response_model=PlacementPublic,
    responses=error_responses(404),
)
async def read_placement(
    placement: PlacementName, principal: AdminDep, database: DatabaseDep
) -> PlacementPublic:
    return await database.run(_read_placement, database.engine, principal.tenant_id, placement)
