"""The holdout as the api reads it: the periods, and why an episode is held back.

Read by ``/v1/holdout``, the members and episodes api and the staff page alike, so each says
the same words about the same control episode (schemas/holdout.py, records/holdout.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from records import holdout
from records.tables import AlertRow, ApiKey, HoldoutPeriodRow, StaffAccount
from schemas.holdout import CONTROL, period_at

WHY = "held back to measure whether reaching out helps"


class Period(BaseModel):
    start: AwareDatetime = Field(description="episodes opened from then on were drawn")
    end: AwareDatetime | None = Field(description="null: in force")
    share: float
    set_by: str = Field(description="the API key or staff account that set it")
    reason: str | None
    ended_by: str | None


class HoldoutOut(BaseModel):
    active: bool
    share: float = Field(description="the share in force now; 0 when the holdout is off")
    since: AwareDatetime | None = Field(description="start of the period in force")
    changed: bool | None = Field(
        default=None, description="on PUT: whether this request changed anything"
    )
    periods: list[Period] = Field(description="every setting, newest first")


class HoldoutNote(BaseModel):
    """Why an episode is held back (only control episodes carry one)."""

    arm: Literal["control"] = "control"
    share: float = Field(description="the share in force when the episode opened")
    since: AwareDatetime = Field(description="start of that period")
    why: str = Field(
        examples=[f"{WHY}; 10 % of new episodes since 1 Dec 2026"],
        description="in plain words, for staff",
    )


def percent(share: float) -> str:
    """0.1 -> "10 %", 0.125 -> "12.5 %"."""
    return f"{share * 100:.1f}".removesuffix(".0") + " %"


def why(share: float, since: datetime) -> str:
    return f"{WHY}; {percent(share)} of new episodes since {since.day} {since:%b %Y}"


async def control_notes(
    session: AsyncSession, tenant_id: str, episode_ids: Iterable[str]
) -> dict[str, HoldoutNote]:
    """The note of each control episode among these (contact ones are left out)."""
    ids = sorted(set(episode_ids))
    if not ids:
        return {}
    opened: dict[str, datetime] = {}
    for start in range(0, len(ids), 1000):
        rows = await session.execute(
            select(AlertRow.episode_id, func.min(AlertRow.raised_at))
            .where(
                AlertRow.tenant_id == tenant_id,
                AlertRow.episode_id.in_(ids[start : start + 1000]),
                AlertRow.arm == CONTROL,
            )
            .group_by(AlertRow.episode_id)
        )
        opened.update({episode: at for episode, at in rows})
    if not opened:
        return {}
    periods = (await holdout.periods_of(session, [tenant_id])).get(tenant_id, [])
    notes: dict[str, HoldoutNote] = {}
    for episode, at in opened.items():
        period = period_at(periods, at)
        # No period found (an arm set by hand, or periods erased): still say it is held back.
        share, since = (period.share, period.start) if period else (0.0, at)
        notes[episode] = HoldoutNote(share=share, since=since, why=why(share, since))
    return notes


async def holdout_in_force(session: AsyncSession, tenant_id: str) -> HoldoutNote | None:
    """The period in force as a note (the staff page's list says its members are held back),
    None when the holdout is off."""
    row = await holdout.current(session, tenant_id)
    if row is None:
        return None
    return HoldoutNote(share=row.share, since=row.start, why=why(row.share, row.start))


async def holdout_of(session: AsyncSession, tenant_id: str) -> HoldoutOut:
    rows = await holdout.period_rows(session, tenant_id)
    now = holdout.in_force(rows)
    return HoldoutOut(
        active=now is not None,
        share=now.share if now else 0.0,
        since=now.start if now else None,
        periods=[_period(r) for r in reversed(rows)],
    )


def _period(row: HoldoutPeriodRow) -> Period:
    return Period(
        start=row.start,
        end=row.end,
        share=row.share,
        set_by=row.set_by,
        reason=row.reason,
        ended_by=row.ended_by,
    )


async def who_set(
    session: AsyncSession, tenant_id: str, refs: Iterable[str | None]
) -> dict[str, tuple[str, str]]:
    """Who each ``set_by``/``ended_by`` id is, within the tenant: ``("account", display
    name)`` for a staff account, ``("key", its name)`` for an API key; an id found in neither
    is left out (shown as the id)."""
    ids = sorted({r for r in refs if r})
    if not ids:
        return {}
    out: dict[str, tuple[str, str]] = {}
    keys = await session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(
            ApiKey.tenant_id == tenant_id, ApiKey.id.in_(ids)
        )
    )
    for key_id, name, prefix in keys:
        out[key_id] = ("key", name or prefix)
    accounts = await session.execute(
        select(StaffAccount.id, StaffAccount.display_name, StaffAccount.login).where(
            StaffAccount.tenant_id == tenant_id, StaffAccount.id.in_(ids)
        )
    )
    for account_id, display, login in accounts:
        out[account_id] = ("account", display or login)
    return out
