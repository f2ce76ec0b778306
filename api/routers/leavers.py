"""Exit interviews (``/v1/members/{id}/exit-interview``) and the leaver profile
(``/v1/leavers/profile``).

An interview corrects the reason the cancellation event carried (or gives one it lacked)
and records consent to be contacted again; every change is kept with the key that made it.
Declining contact also stops what is pending: the member's unsent ``win_back_due`` alerts
are withdrawn from webhook delivery and from the alerts topic.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import AlertsReader, SessionDep, not_found
from api.read.leavers import (
    former,
    interview_changes,
    interview_of,
    members,
    record_interview,
    withdraw_winback,
)
from api.read.members import member_row
from detector.core.state import MemberState
from detector.core.winback import visits_per_month
from plumbing.openapi import problem_response
from plumbing.problems import Problem
from records.tables import (
    ExitInterview,
)
from schemas.events import NOTE_PATTERN, CancelReason
from schemas.units import DAY

router = APIRouter(tags=["leavers"])

# Groups smaller than this are reported with their size only: too few to mean anything.
MIN_GROUP = 20
TENURE_BANDS: tuple[tuple[str, float], ...] = (
    ("0-3 months", 91.0),
    ("3-6 months", 182.0),
    ("6-12 months", 365.0),
    ("12-24 months", 730.0),
    ("24+ months", float("inf")),
)


class ExitInterviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: CancelReason
    note: Annotated[str, Field(max_length=2000, pattern=NOTE_PATTERN)] | None = None
    contact_ok: bool | None = Field(
        default=None, description="whether the member agrees to be contacted again"
    )


class ExitInterviewChangeOut(BaseModel):
    changed_at: AwareDatetime
    changed_by: str = Field(description="the API key id")
    old: dict[str, str | bool | None] | None
    new: dict[str, str | bool | None]


class ExitInterviewOut(BaseModel):
    member_id: str
    cancelled_at: AwareDatetime | None
    event_reason: str | None = Field(description="the reason the cancellation event carried")
    reason: str
    note: str | None
    contact_ok: bool | None
    source: str
    withdrawn_deliveries: int = Field(0, description="pending win-back deliveries stopped")
    history: list[ExitInterviewChangeOut]


def _dt(t: float | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


async def _interview_out(
    session: SessionDep, state: MemberState, row: ExitInterview, withdrawn: int = 0
) -> ExitInterviewOut:
    changes = await interview_changes(session, row.tenant_id, row.member_id)
    return ExitInterviewOut(
        member_id=row.member_id,
        cancelled_at=row.cancelled_at,
        event_reason=state.departure.reason if state.departure else None,
        reason=row.reason,
        note=row.note,
        contact_ok=row.contact_ok,
        source=row.source,
        withdrawn_deliveries=withdrawn,
        history=[
            ExitInterviewChangeOut(
                changed_at=c.changed_at, changed_by=c.changed_by, old=c.old, new=c.new
            )
            for c in changes
        ],
    )


@router.put(
    "/v1/members/{member_id}/exit-interview",
    response_model=ExitInterviewOut,
    responses={409: problem_response("The member never cancelled: no exit interview.")},
)
async def put_exit_interview(
    member_id: str, body: ExitInterviewIn, principal: AlertsReader, session: SessionDep
) -> ExitInterviewOut:
    """Record or correct a leaver's exit interview (the history of changes is kept)."""
    # Locked (PostgreSQL): waits for a checkpoint writing this member (and its win-back
    # alert) to commit, so the withdrawal below sees that alert.
    row = await member_row(session, principal, member_id, for_update=True)
    if row is None:
        raise not_found("member")
    state = MemberState.from_dict(row.state)
    if state.departure is None:
        raise Problem(
            409,
            "Member never cancelled",
            "an exit interview needs a cancellation; this member has none",
            type_="not-a-leaver",
        )
    now = datetime.now(UTC)
    interview = await record_interview(
        session,
        principal,
        member_id,
        cancelled_at=_dt(state.departure.cancelled_at),
        values={"reason": body.reason, "note": body.note, "contact_ok": body.contact_ok},
        now=now,
    )
    withdrawn = 0
    if body.contact_ok is False:
        withdrawn = await withdraw_winback(session, principal.tenant_id, member_id, now)
    await session.flush()
    result = await _interview_out(session, state, interview, withdrawn)
    await session.commit()
    return result


@router.get("/v1/members/{member_id}/exit-interview", response_model=ExitInterviewOut)
async def get_exit_interview(
    member_id: str, principal: AlertsReader, session: SessionDep
) -> ExitInterviewOut:
    row = await member_row(session, principal, member_id)
    if row is None:
        raise not_found("member")
    state = MemberState.from_dict(row.state)
    interview = await interview_of(session, principal.tenant_id, member_id)
    if interview is None:
        if state.departure is None or state.departure.reason is None:
            raise not_found("exit interview")
        interview = ExitInterview(
            tenant_id=principal.tenant_id,
            member_id=member_id,
            cancelled_at=_dt(state.departure.cancelled_at),
            reason=state.departure.reason,
            note=state.departure.note,
            contact_ok=None,
            source="event",
        )
    return await _interview_out(session, state, interview)


# -- the leaver profile ----------------------------------------------------------------------


class Spread(BaseModel):
    n: int
    mean: float
    median: float
    p25: float
    p75: float


class Group(BaseModel):
    n: int
    enough: bool = Field(description=f"false below {MIN_GROUP} members: figures withheld")
    note: str | None
    tenure_bands: dict[str, float] | None = Field(description="share of the group per band")
    visits_per_month_last_3_months: Spread | None
    days_from_last_visit: Spread | None = Field(
        description="leavers: last visit to cancellation; retained: last visit to as_of"
    )


class ReasonCount(BaseModel):
    reason: str = Field(description="a reason code, or 'unknown' when none was recorded")
    n: int
    share: float


class LeaverProfile(BaseModel):
    site_id: str | None
    since: AwareDatetime | None
    as_of: AwareDatetime
    min_group: int
    leavers: Group
    retained: Group
    by_reason: list[ReasonCount]
    by_reason_note: str | None


def _spread(values: list[float]) -> Spread | None:
    if not values:
        return None
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return Spread(
        n=len(values),
        mean=round(statistics.fmean(values), 2),
        median=round(statistics.median(values), 2),
        p25=round(q[0], 2),
        p75=round(q[2], 2),
    )


def _band(days: float) -> str:
    return next(name for name, upper in TENURE_BANDS if days < upper)


def _group(tenures: list[float], rates: list[float], gaps: list[float]) -> Group:
    n = len(tenures)
    if n < MIN_GROUP:
        return Group(
            n=n,
            enough=False,
            note=f"only {n} members (fewer than {MIN_GROUP}): too few to mean anything",
            tenure_bands=None,
            visits_per_month_last_3_months=None,
            days_from_last_visit=None,
        )
    bands = {name: 0.0 for name, _ in TENURE_BANDS}
    for t in tenures:
        bands[_band(t)] += 1
    return Group(
        n=n,
        enough=True,
        note=None,
        tenure_bands={k: round(v / n, 3) for k, v in bands.items()},
        visits_per_month_last_3_months=_spread(rates),
        days_from_last_visit=_spread(gaps),
    )


@router.get("/v1/leavers/profile", response_model=LeaverProfile)
async def leaver_profile(
    principal: AlertsReader,
    session: SessionDep,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="leavers who left at or after")
    ] = None,
    as_of: Annotated[
        AwareDatetime | None, Query(description="when retained members are measured; now")
    ] = None,
) -> LeaverProfile:
    """What the members who left share, each figure beside the same for retained members."""
    at = (as_of or datetime.now(UTC)).timestamp()
    states, formers = await members(session, principal, site_id)
    floor = since.timestamp() if since is not None else -float("inf")
    gone = [f for f in formers if f.left and f.departure.cancelled_at >= floor]
    l_tenure = [f.tenure_days for f in gone]
    l_rates = [f.departure.visits_month for f in gone]
    l_gaps = [
        (f.departure.cancelled_at - last) / DAY
        for f in gone
        if (last := f.last_visit_before_leaving()) is not None
    ]
    kept = [s for s in states if s.status.value != "cancelled"]
    r_tenure, r_rates, r_gaps = [], [], []
    for s in kept:
        start = s.joined_at if s.joined_at is not None else s.first_visit
        r_tenure.append(max(0.0, (at - start) / DAY) if start is not None else 0.0)
        r_rates.append(visits_per_month(s.recent, at))
        if s.last_visit is not None:
            r_gaps.append(max(0.0, (at - s.last_visit) / DAY))
    counts: dict[str, int] = {}
    for f in gone:
        counts[f.reason or "unknown"] = counts.get(f.reason or "unknown", 0) + 1
    total = len(gone)
    return LeaverProfile(
        site_id=site_id,
        since=since,
        as_of=datetime.fromtimestamp(at, UTC),
        min_group=MIN_GROUP,
        leavers=_group(l_tenure, l_rates, l_gaps),
        retained=_group(r_tenure, r_rates, r_gaps),
        by_reason=[
            ReasonCount(reason=r, n=n, share=round(n / total, 3))
            for r, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        by_reason_note=(
            f"only {total} leavers (fewer than {MIN_GROUP}): too few to mean anything"
            if total < MIN_GROUP
            else None
        ),
    )


__all__ = ["MIN_GROUP", "former", "router"]
