"""How a delivery is signed: HMAC-SHA256 of the exact body bytes with the subscription's
secret, sent as ``X-Segmenta-Signature: sha256=<hex>``. The body carries ``sent_at``, so
a receiver can refuse replays of old bodies."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

SIGNATURE_HEADER: Final = "X-Segmenta-Signature"
DELIVERY_HEADER: Final = "X-Segmenta-Delivery"
ATTEMPT_HEADER: Final = "X-Segmenta-Attempt"
SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix that tells what the value is)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does (constant-time comparison)."""
    return hmac.compare_digest(signature(secret, body), header)
