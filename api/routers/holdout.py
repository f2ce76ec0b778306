"""``/v1/holdout``: the tenant's control group, and why a member is in it.

A manager holds back a share of new episodes (``PUT``, admin scope, a key of the whole
tenant): they are stored and scored but never sent to webhooks or the alerts topic, nor
listed for contact, so the uplift report can compare them with the contacted ones
(schemas/holdout.py, records/holdout.py). ``share: 0`` stops it. Every change is a
period of its own (``GET`` lists them), so a report never mixes episodes drawn under
different shares. The members and episodes API and the staff page say plainly which
episodes are held back and why (``HoldoutNote``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import AlertsReader, SessionDep, require
from plumbing.problems import Problem
from records import holdout
from records.api_keys import Principal
from records.tables import AlertRow, HoldoutPeriodRow
from schemas.events import NOTE_PATTERN
from schemas.holdout import CONTROL, MAX_SHARE, period_at

router = APIRouter(prefix="/v1/holdout", tags=["holdout"])
Admin = Annotated[Principal, Depends(require("admin"))]

WHY = "held back to measure whether reaching out helps"


class HoldoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share: float = Field(
        ge=0,
        le=MAX_SHARE,
        description=f"the share of new episodes held back, more than 0 and at most {MAX_SHARE}"
        " (0.1: one in ten); 0 stops the holdout",
        examples=[0.1],
    )
    reason: Annotated[str, Field(max_length=500, pattern=NOTE_PATTERN)] | None = Field(
        default=None, description="why it was set or stopped, kept with the period"
    )


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
    now = next((r for r in reversed(rows) if r.end is None), None)
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


@router.get("", response_model=HoldoutOut)
async def get_holdout(principal: AlertsReader, session: SessionDep) -> HoldoutOut:
    """The share in force and every period so far."""
    return await holdout_of(session, principal.tenant_id)


@router.put("", response_model=HoldoutOut)
async def put_holdout(body: HoldoutIn, principal: Admin, session: SessionDep) -> HoldoutOut:
    """Set the share held back from episodes opened from now on, or stop (``share: 0``).
    Episodes already open keep their group. Setting the share in force changes nothing."""
    if principal.site_id is not None:
        raise Problem(
            403,
            "Forbidden",
            "the holdout applies to the whole tenant: use a key not bound to a site",
            type_="forbidden",
        )
    if body.share == 0:
        change = await holdout.stop(
            session, principal.tenant_id, by=principal.key_id, reason=body.reason
        )
    else:
        change = await holdout.set_share(
            session, principal.tenant_id, body.share, by=principal.key_id, reason=body.reason
        )
    await session.commit()
    out = await holdout_of(session, principal.tenant_id)
    out.changed = change.changed
    return out
