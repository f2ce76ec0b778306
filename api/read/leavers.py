"""Read model of former members: the detector's exit facts, corrected by staff's interviews.

The cancellation event's reason and note live in the member state (``departure``, written by
the detector's checkpoint with the rest of the state, so exactly once and in event order);
an exit interview recorded by staff (``exit_interviews``) overrides the reason and note and
adds consent. Both the leaver and win-back routes read members through here; declining
contact withdraws the member's unsent win-back alerts (``withdraw_winback``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.scope import scoped
from detector.core.state import Departure, MemberState, Status
from records.api_keys import Principal
from records.tables import (
    AlertRow,
    ExitInterview,
    ExitInterviewChange,
    MemberStateRow,
    WebhookDelivery,
)


@dataclass(frozen=True, slots=True)
class Former:
    """A member who cancelled at least once, as the api reads them."""

    state: MemberState
    departure: Departure
    reason: str | None  # staff's correction if any, else the event's
    contact_ok: bool | None

    @property
    def left(self) -> bool:
        """Still gone (not rejoined since)."""
        return self.state.status is Status.CANCELLED

    @property
    def tenure_days(self) -> float:
        start, end = self.departure.tenures[-1]
        return (end - start) / 86_400.0

    def last_visit_before_leaving(self) -> float | None:
        at = self.departure.cancelled_at
        before = [t for t in self.state.recent if t <= at]
        if before:
            return max(before)
        last = self.state.last_visit
        return last if last is not None and last <= at else None


async def interviews(
    session: AsyncSession, tenant_id: str, members: Iterable[str] | None = None
) -> dict[str, ExitInterview]:
    query = select(ExitInterview).where(ExitInterview.tenant_id == tenant_id)
    if members is not None:
        query = query.where(ExitInterview.member_id.in_(list(members)))
    return {r.member_id: r for r in await session.scalars(query)}


async def members(
    session: AsyncSession, principal: Principal, site_id: str | None = None
) -> tuple[list[MemberState], list[Former]]:
    """Every member the caller may see, and among them the former members."""
    rows = await session.scalars(
        select(MemberStateRow).where(*scoped(principal, MemberStateRow, site_id))
    )
    states = [MemberState.from_dict(r.state) for r in rows]
    notes = await interviews(session, principal.tenant_id)
    formers = [former(s, notes.get(s.member_id)) for s in states if s.departure is not None]
    return states, [f for f in formers if f is not None]


def former(state: MemberState, interview: ExitInterview | None) -> Former | None:
    if state.departure is None:
        return None
    return Former(
        state,
        state.departure,
        interview.reason if interview is not None else state.departure.reason,
        interview.contact_ok if interview is not None else None,
    )


def interview_values(row: ExitInterview) -> dict[str, Any]:
    return {"reason": row.reason, "note": row.note, "contact_ok": row.contact_ok}


async def interview_of(
    session: AsyncSession, tenant_id: str, member_id: str
) -> ExitInterview | None:
    """The exit interview staff recorded for the member, if any."""
    return await session.get(ExitInterview, (tenant_id, member_id))


async def record_interview(
    session: AsyncSession,
    principal: Principal,
    member_id: str,
    *,
    cancelled_at: datetime | None,
    values: dict[str, Any],
    now: datetime,
) -> ExitInterview:
    """Record or correct the member's exit interview (``values``: reason, note, contact_ok)
    as given by the caller, keeping the change with the old and new values (the caller
    commits)."""
    row = await interview_of(session, principal.tenant_id, member_id)
    old = interview_values(row) if row is not None else None
    if row is None:
        row = ExitInterview(tenant_id=principal.tenant_id, member_id=member_id)
        session.add(row)
    row.cancelled_at = cancelled_at
    row.reason, row.note, row.contact_ok = values["reason"], values["note"], values["contact_ok"]
    row.source, row.recorded_at, row.recorded_by = "staff", now, principal.key_id
    session.add(
        ExitInterviewChange(
            tenant_id=principal.tenant_id,
            member_id=member_id,
            changed_at=now,
            changed_by=principal.key_id,
            old=old,
            new=values,
        )
    )
    return row


async def interview_changes(
    session: AsyncSession, tenant_id: str, member_id: str
) -> list[ExitInterviewChange]:
    """Every change of the member's exit interview, oldest first."""
    rows = await session.scalars(
        select(ExitInterviewChange)
        .where(
            ExitInterviewChange.tenant_id == tenant_id,
            ExitInterviewChange.member_id == member_id,
        )
        .order_by(ExitInterviewChange.id)
    )
    return list(rows)


async def winback_contacted(session: AsyncSession, tenant_id: str) -> set[str]:
    """The members a ``win_back_due`` alert was stored for."""
    rows = await session.scalars(
        select(AlertRow.member_id)
        .where(AlertRow.tenant_id == tenant_id, AlertRow.type == "win_back_due")
        .group_by(AlertRow.member_id)
        .having(func.count() > 0)
    )
    return set(rows)


WITHDRAWN = "withdrawn: the member declined to be contacted"


async def withdraw_winback(
    session: AsyncSession, tenant_id: str, member_id: str, now: datetime
) -> int:
    """Stop the member's unsent win-back alerts: pending deliveries fail as withdrawn, and
    alerts not yet fanned out or relayed are marked so neither picks them up. How many
    deliveries were stopped (the caller commits)."""
    alert_ids = list(
        await session.scalars(
            select(AlertRow.alert_id).where(
                AlertRow.tenant_id == tenant_id,
                AlertRow.member_id == member_id,
                AlertRow.type == "win_back_due",
            )
        )
    )
    if not alert_ids:
        return 0
    result = await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.alert_id.in_(alert_ids), WebhookDelivery.status == "pending")
        .values(status="failed", last_error=WITHDRAWN, leased_until=None)
    )
    await session.execute(
        update(AlertRow).where(AlertRow.alert_id.in_(alert_ids)).values(fanned_out=True)
    )
    await session.execute(
        update(AlertRow)
        .where(AlertRow.alert_id.in_(alert_ids), AlertRow.relayed_at.is_(None))
        .values(relayed_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
