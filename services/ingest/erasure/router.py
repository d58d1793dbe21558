"""GDPR erasure: ``DELETE /v1/customers/{customer_id}`` and ``GET /v1/erasures/{id}``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session, select

from services.ingest.records.schemas import ErrorResponse
from services.ingest.transactions import run_in_transaction
from shared.auth import Principal, Scope
from shared.erasure import StoreReport, erase_customer
from shared.models.messaging import ErasureRequest
from shared.web.deps import EngineDep, SessionDep, SettingsDep, require
from shared.web.errors import ApiError

router = APIRouter(prefix="/v1", tags=["erasure"])
AdminDep = Annotated[Principal, Depends(require(Scope.ADMIN))]


class ErasureOut(BaseModel):
    erasure_id: int
    status: str = Field(description="`pending` until every store has reported, then `completed`")
    stores: dict[str, StoreReport] = Field(description="Each expected store's report")
    requested_at: datetime | None
    completed_at: datetime | None

    @classmethod
    def of(cls, request: ErasureRequest) -> ErasureOut:
        assert request.id is not None
        return cls(
            erasure_id=request.id,
            status=request.status,
            stores={
                name: StoreReport.model_validate(report)
                for name, report in (request.stores or {}).items()
            },
            requested_at=request.requested_at,
            completed_at=request.completed_at,
        )


_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked API key"},
    403: {"model": ErrorResponse, "description": "Only an admin key may do this"},
    422: {"model": ErrorResponse, "description": "The id is malformed"},
    429: {"model": ErrorResponse, "description": "Rate limit exceeded; see `Retry-After`"},
    503: {"model": ErrorResponse, "description": "Postgres unavailable; retry"},
}
CustomerId = Annotated[str, Path(min_length=1, max_length=128, examples=["c-000123"])]


def _erase(engine: Engine, principal: Principal, customer_id: str, secret: str) -> ErasureOut:
    def work(session: Session) -> ErasureOut:
        request = erase_customer(
            session,
            tenant_id=principal.tenant_id,
            customer_id=customer_id,
            secret=secret,
            actor=principal.client,
        )
        session.refresh(request)
        return ErasureOut.of(request)

    return run_in_transaction(engine, work)


@router.delete(
    "/customers/{customer_id}",
    summary="Erase a customer (GDPR)",
    description=(
        "Suppresses records that arrive later for the same id, removes the customer and "
        "every row that refers to them from Postgres at once, and asks every service that "
        "keeps other stores (caches, model artifacts) to erase them. Answered once the "
        "request has committed, usually `pending`; `GET /v1/erasures/{erasure_id}` shows "
        "each store's report and says `completed` once every store has reported."
    ),
    response_model=ErasureOut,
    responses=_RESPONSES,
)
async def erase(
    customer_id: CustomerId, principal: AdminDep, engine: EngineDep, settings: SettingsDep
) -> ErasureOut:
    if "\x00" in customer_id:
        raise ApiError(
            422, "invalid customer id", errors=[{"field": "customer_id", "message": "contains NUL"}]
        )
    secret = settings.secret_key.get_secret_value()
    return await run_in_threadpool(_erase, engine, principal, customer_id, secret)


@router.get(
    "/erasures/{erasure_id}",
    summary="Status of an erasure, per store",
    response_model=ErasureOut,
    responses={**_RESPONSES, 404: {"model": ErrorResponse, "description": "No such erasure"}},
)
def get_erasure(
    erasure_id: Annotated[int, Path(ge=1, le=2**63 - 1)], principal: AdminDep, session: SessionDep
) -> ErasureOut:
    request = session.exec(
        select(ErasureRequest).where(
            ErasureRequest.id == erasure_id, ErasureRequest.tenant_id == principal.tenant_id
        )
    ).first()
    if request is None:
        raise ApiError(
            404,
            f"no erasure {erasure_id}",
            errors=[{"field": "erasure_id", "message": "not found"}],
        )
    return ErasureOut.of(request)
