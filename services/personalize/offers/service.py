"""Offers and placements: every change is stored with a refresh of the placements it
touches, in one transaction, so the hot path's cached snapshots follow."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import Session, col, select

from services.personalize.offers.schemas import OfferCreate, OfferUpdate, PlacementUpdate
from services.personalize.policies import explore
from shared.contracts import PERSONALIZE_REFRESH_PLACEMENTS
from shared.models.personalize import Offer, Placement
from shared.outbox import enqueue

# A unit of offer work run inside the router's transaction; returns the offer it touched.
OfferWork = Callable[[Session], object]


class OfferDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class OfferAlreadyExists(ValueError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class PlacementDoesNotExist(LookupError):  # noqa: N818 (the project names errors XDoesNotExist)
    pass


class DefaultOfferInvalid(ValueError):  # noqa: N818 (the project names errors XDoesNotExist)
    """The placement's default offer is unknown, retired, or not offered there."""


def _ensure_placements(session: Session, *, tenant_id: int, names: Iterable[str]) -> list[int]:
    """Placement rows for these names (created with the defaults when new); their ids."""
    names = sorted(set(names))
    if not names:
        return []
    session.execute(
        insert(Placement)
        .values([{"tenant_id": tenant_id, "name": name} for name in names])
        .on_conflict_do_nothing(index_elements=["tenant_id", "name"])
    )
    ids = session.exec(
        select(Placement.id).where(Placement.tenant_id == tenant_id, col(Placement.name).in_(names))
    ).all()
    return [int(i) for i in ids if i is not None]


def refresh_placements(session: Session, *, tenant_id: int, names: Iterable[str]) -> None:
    """Queue the rebuild of these placements' cached snapshots (rows made as needed)."""
    ids = _ensure_placements(session, tenant_id=tenant_id, names=names)
    enqueue(session, tenant_id=tenant_id, task_name=PERSONALIZE_REFRESH_PLACEMENTS, subject_ids=ids)


def read_offer(session: Session, *, tenant_id: int, offer_id: str) -> Offer:
    offer = session.exec(
        select(Offer).where(Offer.tenant_id == tenant_id, Offer.offer_id == offer_id)
    ).first()
    if offer is None:
        raise OfferDoesNotExist(offer_id)
    return offer


def list_offers(session: Session, *, tenant_id: int, include_retired: bool) -> Sequence[Offer]:
    query = select(Offer).where(Offer.tenant_id == tenant_id).order_by(col(Offer.offer_id))
    if not include_retired:
        query = query.where(col(Offer.retired_at).is_(None))
    return session.exec(query).all()


def create_offer(session: Session, *, tenant_id: int, body: OfferCreate) -> Offer:
    exists = session.exec(
        select(Offer.id).where(Offer.tenant_id == tenant_id, Offer.offer_id == body.offer_id)
    ).first()
    if exists is not None:
        raise OfferAlreadyExists(body.offer_id)
    offer = Offer(tenant_id=tenant_id, **body.model_dump())
    session.add(offer)
    session.flush()
    refresh_placements(session, tenant_id=tenant_id, names=offer.placements)
    return offer


def update_offer(session: Session, *, tenant_id: int, offer_id: str, body: OfferUpdate) -> Offer:
    offer = read_offer(session, tenant_id=tenant_id, offer_id=offer_id)
    touched = set(offer.placements) | set(body.placements)
    for field, value in body.model_dump().items():
        setattr(offer, field, value)
    offer.updated_at = session.exec(select(func.now())).one()
    session.add(offer)
    session.flush()
    refresh_placements(session, tenant_id=tenant_id, names=touched)
    return offer


def retire_offer(session: Session, *, tenant_id: int, offer_id: str) -> Offer:
    """Stops serving the offer; its decisions and feedback stay."""
    offer = read_offer(session, tenant_id=tenant_id, offer_id=offer_id)
    if offer.retired_at is None:
        offer.retired_at = offer.updated_at = session.exec(select(func.now())).one()
        session.add(offer)
        session.flush()
        refresh_placements(session, tenant_id=tenant_id, names=offer.placements)
    return offer


def read_placement(session: Session, *, tenant_id: int, name: str) -> Placement:
    placement = session.exec(
        select(Placement).where(Placement.tenant_id == tenant_id, Placement.name == name)
    ).first()
    if placement is None:
        raise PlacementDoesNotExist(name)
    return placement


def configure_placement(
    session: Session, *, tenant_id: int, name: str, body: PlacementUpdate
) -> Placement:
    if body.default_offer_id is not None:
        offer = session.exec(
            select(Offer).where(
                Offer.tenant_id == tenant_id, Offer.offer_id == body.default_offer_id
            )
        ).first()
        if offer is None or offer.retired_at is not None or name not in offer.placements:
            raise DefaultOfferInvalid(body.default_offer_id)
    _ensure_placements(session, tenant_id=tenant_id, names=[name])
    placement = read_placement(session, tenant_id=tenant_id, name=name)
    for field, value in body.model_dump().items():
        setattr(placement, field, value)
    placement.updated_at = session.exec(select(func.now())).one()
    session.add(placement)
    session.flush()
    explore(session, tenant_id=tenant_id, placement=name, share=placement.exploration)
    refresh_placements(session, tenant_id=tenant_id, names=[name])
    return placement
