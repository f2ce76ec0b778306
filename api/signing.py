"""Standard Webhooks signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

The signed content is ``f"{msg_id}.{timestamp}."`` followed by the raw body bytes, with
HMAC-SHA256 keyed by the base64-decoded part of the ``whsec_`` secret. Kept in our own code so
the service has no runtime dependency on a signing library; the tests verify with the
reference ``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def generate_secret() -> str:
    """``whsec_`` + base64 of 24 random bytes (shown to the subscriber once)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise ValueError("webhook secret is not valid base64") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` over ``msg_id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signature_headers(
    secret: str, msg_id: str, timestamp: int, body: bytes, *, previous: str | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt.

    During a secret rotation's overlap ``previous`` signs too: the signatures are
    space-separated, so a receiver still holding the old secret keeps verifying.
    """
    signatures = [sign(secret, msg_id, timestamp, body)]
    if previous is not None and previous != secret:
        signatures.append(sign(previous, msg_id, timestamp, body))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }
