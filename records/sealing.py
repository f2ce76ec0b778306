"""Secrets at rest: webhook signing secrets and vendor (Kisi) signature keys, encrypted with a
key from the settings.

Lapse must read a webhook secret back to sign each delivery, and a Kisi signature key to check
each Kisi request (HMAC needs the secret itself, a hash would not do), so they are stored
encrypted, not hashed: a copy of the database (a backup, a replica, a support dump) then holds
no usable secret without ``LAPSE_SECRET_KEY``, which lives in the deployment's secrets, not in
the database.

The cipher is Fernet (``cryptography``): AES-128-CBC with an HMAC-SHA256 over the whole token,
a random IV per secret, so a stored value is authenticated (a tampered one fails to open) and
two equal secrets do not look equal. A stored value reads ``fernet:<token>``; a value without
the prefix is a secret stored in clear before a key was set, still accepted so that setting a
key breaks nothing, and encrypted by the next ``lapse migrate`` (or ``lapse secrets reseal``).

Rotation (docs/webhooks.md): put the new key in ``LAPSE_SECRET_KEY`` and the old one in
``LAPSE_SECRET_KEYS_OLD``; every key opens what it sealed, the new one seals; ``lapse secrets
reseal`` re-encrypts every stored secret with the new key, after which the old one can go.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from plumbing.settings import Settings
from records.tables import VendorIntegration, WebhookSubscription

log = logging.getLogger(__name__)

PREFIX = "fernet:"


class SecretUnavailable(RuntimeError):
    """A stored secret that none of the configured keys opens (the message says what to do)."""


def new_key() -> str:
    """A fresh key for ``LAPSE_SECRET_KEY`` (32 random bytes, URL-safe base64)."""
    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Seals with the first key, opens with any of them; with no key, stores in clear."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            self._fernets = [Fernet(k.strip().encode("ascii")) for k in keys if k.strip()]
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError(
                "LAPSE_SECRET_KEY (and LAPSE_SECRET_KEYS_OLD) must be Fernet keys: 32 bytes in "
                "URL-safe base64, as `lapse secrets new-key` prints"
            ) from exc
        self._all = MultiFernet(self._fernets) if self._fernets else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Sealer:
        keys = [settings.secret_key.get_secret_value()]
        keys += [k.get_secret_value() for k in settings.secret_keys_old]
        if not keys[0].strip() and any(k.strip() for k in keys[1:]):
            raise ValueError("LAPSE_SECRET_KEYS_OLD is set but LAPSE_SECRET_KEY is not")
        return cls(keys)

    @property
    def enabled(self) -> bool:
        return self._all is not None

    def seal(self, secret: str) -> str:
        if self._all is None:
            return secret
        return PREFIX + self._fernets[0].encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # stored in clear, before a key was set
        if self._all is None:
            raise SecretUnavailable("a secret is stored encrypted but LAPSE_SECRET_KEY is not set")
        try:
            return self._all.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SecretUnavailable(
                "no configured key opens a stored secret: put the key it was sealed "
                "with in LAPSE_SECRET_KEYS_OLD"
            ) from None

    def current(self, stored: str) -> bool:
        """Whether ``stored`` is as :meth:`seal` would store it now (sealed with the first key,
        or in clear when there is no key)."""
        if self._all is None:
            return not stored.startswith(PREFIX)
        if not stored.startswith(PREFIX):
            return False
        try:
            self._fernets[0].decrypt(stored[len(PREFIX) :].encode("ascii"))
        except InvalidToken:
            return False
        return True


async def reseal_all(sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> int:
    """Store every webhook secret and vendor signature key as :meth:`Sealer.seal` would now;
    returns how many changed.

    Encrypts the secrets stored in clear once a key is set, and re-encrypts those sealed with
    an old key after a rotation. One transaction: a secret that no key opens stops it all,
    leaving everything as it was (and the error says which key is missing).
    """
    if not sealer.enabled:
        return 0
    changed = 0
    async with sessions() as session, session.begin():
        rows = await session.scalars(select(WebhookSubscription).with_for_update())
        for sub in rows:
            if not sealer.current(sub.secret):
                sub.secret = sealer.seal(sealer.open(sub.secret))
                changed += 1
            previous = sub.previous_secret
            if previous is not None and not sealer.current(previous):
                sub.previous_secret = sealer.seal(sealer.open(previous))
                changed += 1
        vendors = await session.scalars(select(VendorIntegration).with_for_update())
        for vendor in vendors:
            if not sealer.current(vendor.secret):
                vendor.secret = sealer.seal(sealer.open(vendor.secret))
                changed += 1
    return changed
