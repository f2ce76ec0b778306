"""Staff page sessions: an HMAC-signed token naming the API key, never the key itself.

The cookie holds ``{key id, expiry, nonce}`` signed with the session secret. It grants
nothing alone: every request also checks that the key still exists, is not revoked and may
read alerts, so revoking a key ends its sessions at once. The nonce makes each login's CSRF
token its own; the token is derived from it, so no server-side session table is needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "lapse_session"
# A short-lived cookie binding the login form to this browser (login CSRF).
LOGIN_COOKIE = "lapse_login"
LOGIN_SECONDS = 1800

# Used when LAPSE_SESSION_SECRET is empty: sessions then last as long as this process.
_PROCESS_SECRET = secrets.token_bytes(32)


def session_key(configured: str) -> bytes:
    """The signing key: the configured secret, or this process's random one."""
    if not configured:
        return _PROCESS_SECRET
    return hashlib.sha256(b"lapse-page-session\0" + configured.encode()).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, data: bytes) -> bytes:
    return hmac.new(key, purpose.encode() + b"\0" + data, hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires_at: float
    nonce: str


def issue(key: bytes, key_id: str, now: float, lifetime: float) -> tuple[str, Session]:
    """A new session for ``key_id``: the cookie value and what it holds."""
    session = Session(key_id, round(now + lifetime), secrets.token_urlsafe(16))
    body = json.dumps(
        {"k": session.key_id, "e": session.expires_at, "n": session.nonce},
        separators=(",", ":"),
    ).encode()
    return f"{_b64(body)}.{_b64(_mac(key, 'session', body))}", session


def verify(key: bytes, token: str, now: float) -> Session | None:
    """The session a cookie value holds, or None if forged, malformed or expired."""
    body_part, _, mac_part = token.partition(".")
    if not body_part or not mac_part or len(token) > 1024:
        return None
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(mac, _mac(key, "session", body)):
        return None
    try:
        data = json.loads(body)
        session = Session(str(data["k"]), float(data["e"]), str(data["n"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires_at <= now:
        return None
    return session


def csrf_token(key: bytes, session: Session) -> str:
    """The token the session's forms carry: bound to this login, useless without its cookie."""
    return _b64(_mac(key, "csrf", f"{session.key_id}\0{session.nonce}".encode()))


def csrf_ok(key: bytes, session: Session, presented: str) -> bool:
    return hmac.compare_digest(presented.encode(), csrf_token(key, session).encode())


def login_nonce() -> str:
    return secrets.token_urlsafe(16)


def login_token(key: bytes, nonce: str) -> str:
    """The login form's token: matches only the ``lapse_login`` cookie set with the form."""
    return _b64(_mac(key, "login", nonce.encode()))


def login_ok(key: bytes, nonce: str | None, presented: str) -> bool:
    if not nonce:
        return False
    return hmac.compare_digest(presented.encode(), login_token(key, nonce).encode())
