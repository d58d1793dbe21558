"""API keys: per client, bound to a tenant, hashed at rest, shown once, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, text
from sqlmodel import Session, select

from shared.models import ApiKey, Tenant

KEY_PREFIX = "sgm"


class Scope(StrEnum):
    ADMIN = "admin"
    INGEST_WRITE = "ingest:write"
    TRANSCRIPTS_WRITE = "transcripts:write"
    SEGMENTS_READ = "segments:read"
    OFFERS_READ = "offers:read"
    FEEDBACK_WRITE = "feedback:write"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the authenticated key, its tenant and what it may do."""

    key_id: int
    tenant_id: int
    client: str
    scopes: frozenset[str]
    rate_limit_per_minute: int | None

    def allows(self, *scopes: Scope) -> bool:
        return Scope.ADMIN in self.scopes or any(s in self.scopes for s in scopes)


@dataclass(frozen=True)
class IssuedKey:
    key: str  # the only time the secret exists in clear
    prefix: str
    client: str
    tenant: str
    scopes: tuple[str, ...]


def _hash_secret(secret: str) -> str:
    # Keys are 256-bit random secrets, so a fast hash is as strong as a slow one here.
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(raw_key: str) -> tuple[str, str] | None:
    parts = raw_key.split("_")
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def well_formed(raw_key: str) -> bool:
    """Whether ``raw_key`` has a key's shape (one that ``authenticate`` would look up)."""
    return _split(raw_key) is not None


def get_or_create_tenant(session: Session, *, name: str) -> Tenant:
    session.execute(
        text("INSERT INTO tenant (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"),
        {"name": name},
    )
    return session.exec(select(Tenant).where(Tenant.name == name)).one()


def create_api_key(
    session: Session,
    *,
    client: str,
    scopes: list[str],
    tenant: str = "default",
    rate_limit_per_minute: int | None = None,
) -> IssuedKey:
    unknown = set(scopes) - {s.value for s in Scope}
    if unknown or not scopes:
        raise ValueError(f"unknown or missing scopes: {sorted(unknown)}; known: {list(Scope)}")
    tenant_row = get_or_create_tenant(session, name=tenant)
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    assert tenant_row.id is not None
    session.add(
        ApiKey(
            tenant_id=tenant_row.id,
            client=client,
            prefix=prefix,
            secret_hash=_hash_secret(secret),
            scopes=sorted(set(scopes)),
            rate_limit_per_minute=rate_limit_per_minute,
        )
    )
    session.flush()
    key = f"{KEY_PREFIX}_{prefix}_{secret}"
    return IssuedKey(key=key, prefix=prefix, client=client, tenant=tenant, scopes=tuple(scopes))


def authenticate(session: Session, raw_key: str) -> Principal | None:
    """The principal for a presented key, or None if it is unknown, wrong or revoked."""
    parts = _split(raw_key)
    if parts is None:
        return None
    prefix, secret = parts
    row = session.exec(
        select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash_secret(secret)):
        return None
    assert row.id is not None
    return Principal(
        key_id=row.id,
        tenant_id=row.tenant_id,
        client=row.client,
        scopes=frozenset(row.scopes),
        rate_limit_per_minute=row.rate_limit_per_minute,
    )


def active_key_ids(session: Session, key_ids: Iterable[int]) -> set[int]:
    """Those of ``key_ids`` not revoked, read in the caller's transaction."""
    ids = sorted(set(key_ids))
    rows = session.execute(
        text("SELECT id FROM api_key WHERE id = ANY(:ids) AND revoked_at IS NULL"), {"ids": ids}
    )
    return set(rows.scalars())


class PrincipalCache:
    """Recently authenticated keys, by a hash of the presented key, for ``ttl`` seconds.

    Only for callers that re-check the key (``active_key_ids``) in the transaction that
    writes on its behalf: that keeps a revocation effective at once, while the cache
    spares each request its own lookup. Scopes and tenant of a key never change.
    """

    def __init__(
        self, ttl: float = 2.0, max_entries: int = 10_000, outage_grace: float = 900.0
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # While Postgres cannot be asked, a key seen within this long still reads: nobody
        # can revoke it meanwhile (revoking writes to the same Postgres).
        self.outage_grace = outage_grace
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    def _key(raw_key: str) -> bytes:
        return hashlib.sha256(raw_key.encode()).digest()

    def get(self, raw_key: str) -> Principal | None:
        return self.get_due(raw_key)[0]

    def get_due(self, raw_key: str) -> tuple[Principal | None, bool]:
        """The key's principal while cached, and whether its lookup is due again (past
        half its lifetime: looked up again meanwhile, it never expires under load)."""
        entry = self._entries.get(self._key(raw_key))
        if entry is None:
            return None, False
        left = entry[0] - time.monotonic()
        if left < 0:
            return None, False
        return entry[1], left < self.ttl / 2

    def discard(self, raw_key: str) -> None:
        self._entries.pop(self._key(raw_key), None)

    def get_during_outage(self, raw_key: str) -> Principal | None:
        """The key as last seen, for when Postgres is unreachable."""
        entry = self._entries.get(self._key(raw_key))
        if entry is None or entry[0] + self.outage_grace < time.monotonic():
            return None
        return entry[1]

    def put(self, raw_key: str, principal: Principal) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(raw_key)] = (time.monotonic() + self.ttl, principal)

    def forget(self, key_id: int) -> None:
        for digest, (_, principal) in list(self._entries.items()):
            if principal.key_id == key_id:
                del self._entries[digest]


class RecentKeys:
    """Digests of presented keys, each remembered for ``ttl`` seconds (at most
    ``max_entries``; the oldest go first). Only digests: no key is held in clear."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._until: dict[bytes, float] = {}

    def __contains__(self, raw_key: object) -> bool:
        if not isinstance(raw_key, str):
            return False
        until = self._until.get(PrincipalCache._key(raw_key))
        return until is not None and until >= time.monotonic()

    def add(self, raw_key: str) -> None:
        digest = PrincipalCache._key(raw_key)
        self._until.pop(digest, None)
        if len(self._until) >= self.max_entries:
            del self._until[next(iter(self._until))]
        self._until[digest] = time.monotonic() + self.ttl

    def discard(self, raw_key: str) -> None:
        self._until.pop(PrincipalCache._key(raw_key), None)


class FailureThrottle:
    """Failed key lookups per source address, as a token bucket: ``burst`` failures at
    once, then ``per_second``. A source past it is refused before any lookup, so a flood
    of made-up keys costs the database next to nothing."""

    def __init__(
        self, burst: float = 60, per_second: float = 2.0, max_sources: int = 10_000
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self.max_sources = max_sources
        self._buckets: dict[str, tuple[float, float]] = {}  # source: (tokens, at)

    def _tokens(self, source: str, now: float) -> float:
        tokens, at = self._buckets.get(source, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.per_second)

    def wait_s(self, source: str) -> float:
        """0 if ``source`` may have a key looked up now, else the seconds until it may."""
        tokens = self._tokens(source, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.per_second

    def fail(self, source: str) -> None:
        now = time.monotonic()
        tokens = self._tokens(source, now) - 1
        if source not in self._buckets and len(self._buckets) >= self.max_sources:
            del self._buckets[next(iter(self._buckets))]
        self._buckets[source] = (tokens, now)


def revoke_api_key(session: Session, *, prefix: str) -> bool:
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is None:
        return False
    if row.revoked_at is None:
        row.revoked_at = session.exec(select(func.now())).one()
        session.add(row)
        session.flush()
    return True


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.exec(select(ApiKey).order_by(ApiKey.id)))  # type: ignore[arg-type]
