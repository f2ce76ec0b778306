"""Deterministic ids: a UUIDv5's text (RFC 9562 §5.5), computed directly.

``str(uuid.uuid5(namespace, name))`` builds a ``UUID`` object (an int, checks) only to print
it; here the SHA-1 digest's hex is cut and its version and variant digits set, the same text in
about a third of the time. Ids are made per alert raised, per delivery and per imported row,
and they are stored: the text must never change (tests compare with ``uuid.uuid5``).
"""

from __future__ import annotations

import hashlib
import uuid

# The variant digit: the digest's high two bits of that nibble replaced by 10.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid5(namespace: bytes, name: bytes) -> str:
    """The text of ``uuid.uuid5(UUID(bytes=namespace), name)``.

    SHA-1 reads the two one after the other, so ``namespace`` may carry the start of the name
    too (a loop making many ids with one prefix encodes it once).
    """
    h = hashlib.sha1(namespace + name, usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# Episode, alert and departure ids: uuid5 of what identifies them, so the same events give the
# same ids live, in replay and after a crash (the detector's core makes them), a CRM can
# de-duplicate on them, and a control-group draw on an episode id (schemas/holdout.py) can be
# repeated by anyone who has the id.
NAMESPACE = uuid.UUID("6f1d3c8e-2b7a-5d4e-9c1f-0a8b7e6d5c4b")
_NS = NAMESPACE.bytes


def episode_id(tenant_id: str, member_id: str, start: float) -> str:
    """An absence episode: the member and the moment their absence began."""
    return uuid5(_NS, f"episode:{tenant_id}:{member_id}:{start:.3f}".encode())


def alert_id(episode: str, alert_type: str, severity: str | None = None) -> str:
    """An alert of an episode: its type (and an escalation's severity)."""
    tag = f"{alert_type}:{severity}" if alert_type == "escalated" and severity else alert_type
    return uuid5(_NS, f"alert:{episode}:{tag}".encode())


def departure_id(tenant_id: str, member_id: str, cancelled_at: float) -> str:
    """The id a win-back alert carries as its episode: one per cancellation."""
    return uuid5(_NS, f"departure:{tenant_id}:{member_id}:{cancelled_at:.3f}".encode())
