"""Keyed hashing and redaction of personal data."""

from __future__ import annotations

import hashlib
import hmac
import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w-])\+?\d[\d ()-]{6,}\d(?![\w-])")


def keyed_hash(secret: str, value: str, *, purpose: str) -> str:
    """HMAC-SHA256 of a normalised value; ``purpose`` keeps hashes of different kinds apart."""
    message = f"{purpose}:{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str) -> str:
    return re.sub(r"[^\d+]", "", phone)


def redact(text: str) -> str:
    """Replace emails and phone numbers in free text (logs, LLM prompts)."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[email]", text))
