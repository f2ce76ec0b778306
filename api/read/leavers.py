"""Read model of former members: the detector's exit facts, corrected by staff's interviews.

The cancellation event's reason and note live in the member state (``departure``, written by
the detector's checkpoint with the rest of the state, so exactly once and in event order);
an exit interview recorded by staff (``exit_interviews``) overrides the reason and note and
adds consent. Both the leaver and win-back routes read members through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.scope import scoped
from detector.core.state import Departure, MemberState, Status
from records.api_keys import Principal
from records.tables import ExitInterview, MemberStateRow


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
