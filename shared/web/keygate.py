"""What an API does before it looks a presented key up: unknown keys remembered briefly,
failed lookups throttled per source address. Without it each made-up key costs a database
lookup, and a flood of them slows every legitimate caller."""

from __future__ import annotations

import math

from prometheus_client import Counter

from shared.auth import FailureThrottle, Principal, RecentKeys
from shared.web.errors import ApiError

KEY_LOOKUPS = Counter(
    "segmenta_auth_key_lookups_total",
    "API keys looked up in the database, by outcome (found or unknown)",
    ["outcome"],
)
KEYS_REFUSED_UNASKED = Counter(
    "segmenta_auth_refused_without_lookup_total",
    "Keys refused without a database lookup: known unknown (401) or source throttled (429)",
    ["reason"],
)


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "a valid API key is required",
        errors=[{"field": "Authorization", "message": "missing, unknown or revoked key"}],
        headers={"WWW-Authenticate": "Bearer"},
    )


class KeyGate:
    """Screens a presented key before its lookup and notes the lookup's outcome.

    - A key found unknown (or revoked) is answered 401 without a lookup for ``unknown_ttl``
      seconds. No new key can appear under it: keys are 256-bit random secrets.
    - Each lookup that finds nothing spends one of its source's ``FailureThrottle`` tokens;
      a source without tokens gets 429 with ``Retry-After`` for keys not seen valid within
      ``known_ttl`` (so a client behind the same address as an attacker, already known,
      keeps being served; a revocation still takes effect, as the lookup is still made).
    """

    def __init__(
        self,
        *,
        unknown_ttl: float = 30.0,
        known_ttl: float = 900.0,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self.unknown = RecentKeys(unknown_ttl)
        self.known = RecentKeys(known_ttl)
        self.throttle = throttle or FailureThrottle()

    def screen(self, raw_key: str, source: str | None) -> None:
        """Raises the answer for ``raw_key`` if it needs no lookup."""
        if raw_key in self.unknown:
            KEYS_REFUSED_UNASKED.labels("unknown").inc()
            raise unauthorized()
        if source is None or raw_key in self.known:
            return
        wait_s = self.throttle.wait_s(source)
        if wait_s > 0:
            KEYS_REFUSED_UNASKED.labels("throttled").inc()
            raise ApiError(
                429,
                "too many requests with unknown API keys from this address",
                errors=[{"field": "Authorization", "message": "too many unknown keys"}],
                headers={"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    def note(self, raw_key: str, source: str | None, principal: Principal | None) -> None:
        """Records what the lookup of ``raw_key`` found."""
        KEY_LOOKUPS.labels("found" if principal else "unknown").inc()
        if principal is not None:
            self.known.add(raw_key)
            return
        self.known.discard(raw_key)
        self.unknown.add(raw_key)
        if source is not None:
            self.throttle.fail(source)
