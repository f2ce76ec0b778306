"""Staff accounts: people log into the staff page with their own name and password.

Passwords are kept only as Argon2id hashes (argon2-cffi, RFC 9106 parameters). Five wrong
passwords in a row lock the account for 15 minutes, which caps online guessing at 20 tries
an hour per account while a mistyping person waits a coffee break. Every answer costs one
Argon2 verification (a dummy hash for unknown or disabled accounts), and every refusal is the
same, so neither timing nor wording tells whether an account exists.

A session is a random token in the cookie; the database holds its SHA-256 only, so every api
replica can check it, and logout or disabling the account revokes it at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import StaffAccount, StaffSession

MAX_FAILURES = 5
LOCK = timedelta(minutes=15)
# Whatever goes wrong, the login form says one thing, i18n's "error.refused" (never "no such
# account" or "locked"): check_password answers None alike.
# The cookie of an account session starts so; a key session's cookie is base64 JSON ("eyJ").
TOKEN_PREFIX = "acct_"


class Role(StrEnum):
    """What a person may open: each role holds the one before it."""

    FRONT_DESK = "front_desk"  # today's list, acknowledge, member page
    MANAGER = "manager"  # + reports, calibration (win-back)
    ADMIN = "admin"  # + staff, keys, webhooks

    def at_least(self, other: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(other)


_HASHER = PasswordHasher()


@functools.cache
def _dummy() -> str:
    """Verified against when no account matches, so unknown names cost what known ones do
    (made on first use: an api that no one logs into by password never pays for it)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def _verify_now(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def _verify(stored: str, password: str) -> bool:
    """Argon2 takes tens of milliseconds of CPU and memory on purpose: off the event loop,
    so other requests of this api are not held up by a login."""
    return await asyncio.to_thread(_verify_now, stored, password)


def normal_login(login: str) -> str:
    return login.strip().lower()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def add_account(
    db: AsyncSession,
    tenant_id: str,
    login: str,
    password: str,
    *,
    role: Role,
    display_name: str,
    now: datetime,
) -> StaffAccount:
    """Add an account to the session (the caller commits); ValueError if the name is taken."""
    name = normal_login(login)
    if not name or len(name) > 254:
        raise ValueError("the login name must be 1 to 254 characters")
    if len(password) < 10:
        raise ValueError("the password must be at least 10 characters")
    if await db.scalar(select(StaffAccount.id).where(StaffAccount.login == name)) is not None:
        raise ValueError(f"the login name {name!r} is taken")
    row = StaffAccount(
        id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        login=name,
        display_name=display_name or name,
        role=role.value,
        password_hash=hash_password(password),
        disabled=False,
        failed_attempts=0,
        locked_until=None,
        language=None,
        created_at=now,
    )
    db.add(row)
    return row


async def check_password(
    db: AsyncSession, login: str, password: str, now: datetime
) -> StaffAccount | None:
    """The account if the password is right and the account active and not locked; commits
    the failure count (a lock after MAX_FAILURES in a row) or its reset."""
    row = await db.scalar(
        select(StaffAccount).where(StaffAccount.login == normal_login(login)).with_for_update()
    )
    if row is None:
        await _verify(_dummy(), password)
        return None
    good = await _verify(row.password_hash, password)
    locked = row.locked_until is not None and row.locked_until > now
    if row.disabled or locked:
        await db.rollback()
        return None
    if not good:
        row.failed_attempts += 1
        if row.failed_attempts >= MAX_FAILURES:
            row.failed_attempts = 0
            row.locked_until = now + LOCK
        await db.commit()
        return None
    row.failed_attempts = 0
    row.locked_until = None
    if _HASHER.check_needs_rehash(row.password_hash):
        row.password_hash = await asyncio.to_thread(hash_password, password)
    await db.commit()
    return row


async def open_session(
    db: AsyncSession, account: StaffAccount, now: datetime, lifetime: timedelta
) -> str:
    """A new session for the account (committed): the cookie's value. The account's ended
    sessions (expired or revoked) are deleted here, so the table holds live ones only."""
    await db.execute(
        delete(StaffSession).where(
            StaffSession.account_id == account.id,
            or_(StaffSession.expires_at <= now, StaffSession.revoked_at.is_not(None)),
        )
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(
        StaffSession(
            digest=_digest(token),
            account_id=account.id,
            created_at=now,
            expires_at=now + lifetime,
            revoked_at=None,
        )
    )
    await db.commit()
    return token


@dataclass(frozen=True, slots=True)
class Held:
    """A live session and its account."""

    digest: str
    expires_at: datetime
    account: StaffAccount


async def session_of(db: AsyncSession, token: str, now: datetime) -> Held | None:
    """The session a cookie names, or None (unknown, expired, revoked, account disabled)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        return None
    found = (
        await db.execute(
            select(StaffSession, StaffAccount)
            .join(StaffAccount, StaffAccount.id == StaffSession.account_id)
            .where(StaffSession.digest == _digest(token))
        )
    ).first()
    if found is None:
        return None
    held, account = found
    if held.revoked_at is not None or held.expires_at <= now or account.disabled:
        return None
    return Held(held.digest, held.expires_at, account)


async def revoke_session(db: AsyncSession, token: str, now: datetime) -> None:
    await db.execute(
        update(StaffSession)
        .where(StaffSession.digest == _digest(token), StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await db.commit()


async def disable_account(db: AsyncSession, tenant_id: str, login: str, now: datetime) -> bool:
    """Disable the tenant's account and revoke its sessions (committed); False if none."""
    account_id = await db.scalar(
        select(StaffAccount.id).where(
            StaffAccount.tenant_id == tenant_id, StaffAccount.login == normal_login(login)
        )
    )
    if account_id is None:
        return False
    await db.execute(
        update(StaffAccount).where(StaffAccount.id == account_id).values(disabled=True)
    )
    await db.execute(
        update(StaffSession)
        .where(StaffSession.account_id == account_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await db.commit()
    return True


async def accounts_of(db: AsyncSession, tenant_id: str) -> list[StaffAccount]:
    """The tenant's accounts by login name (disabled ones too)."""
    rows = await db.scalars(
        select(StaffAccount).where(StaffAccount.tenant_id == tenant_id).order_by(StaffAccount.login)
    )
    return list(rows)


async def set_role(db: AsyncSession, tenant_id: str, login: str, role: Role) -> bool:
    """Give the tenant's account ``role`` (committed); False if none. Its sessions go on: the
    role is read from the account on every request, so the change holds at once."""
    result = await db.execute(
        update(StaffAccount)
        .where(StaffAccount.tenant_id == tenant_id, StaffAccount.login == normal_login(login))
        .values(role=role.value)
    )
    await db.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_language(db: AsyncSession, tenant_id: str, account_id: str, language: str) -> None:
    """Store the account's page language (committed); nothing for another tenant's account."""
    account = await db.get(StaffAccount, account_id)
    if account is not None and account.tenant_id == tenant_id:
        account.language = language
        await db.commit()
