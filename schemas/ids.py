"""Deterministic ids: a UUIDv5's text (RFC 9562 §5.5), computed directly.

``str(uuid.uuid5(namespace, name))`` builds a ``UUID`` object (an int, checks) only to print
it; here the SHA-1 digest's hex is cut and its version and variant digits set, the same text in
about a third of the time. Ids are made per alert raised, per delivery and per imported row,
and they are stored: the text must never change (tests compare with ``uuid.uuid5``).
"""

from __future__ import annotations

import hashlib

# The variant digit: the digest's high two bits of that nibble replaced by 10.
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid5(namespace: bytes, name: bytes) -> str:
    """The text of ``uuid.uuid5(UUID(bytes=namespace), name)``.

    SHA-1 reads the two one after the other, so ``namespace`` may carry the start of the name
    too (a loop making many ids with one prefix encodes it once).
    """
    h = hashlib.sha1(namespace + name, usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"
