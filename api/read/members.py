"""Members as the api reads them: a member's state as the detector holds it, and today's
at-risk list (``/v1/members`` and the staff page's work list and member page).

Read from ``member_states`` (the detector's checkpointed state; ``state`` is the core's
``MemberState`` as JSON, read back with the core's own read model). The cadence figures are
computed as the detector computes them: the usual gap from the member's own gaps (shrunk to
the cohort prior while history is short; null with no gap yet), visits in the last four
weeks from the recent visit times, and the usual number as 28 days / usual gap.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.coverage import Coverage, coverage_of
from api.read.holdout import HoldoutNote, control_notes
from api.read.scope import scoped
from detector.core.cadence import usual_gap
from detector.core.policy import COHORT_GAP_DAYS
from detector.core.state import MemberState
from detector.core.visits import visits_since
from records.api_keys import Principal
from records.profiles import Profile, profile_of_row, profiles_of
from records.tables import MemberStateRow
from schemas.alerts import Arm, Severity
from schemas.holdout import CONTACT, CONTROL
from schemas.units import DAY

RANK = {"high": 2, "medium": 1, "low": 0}
FOUR_WEEKS = 28 * DAY


class OpenEpisode(BaseModel):
    episode_id: str
    started_at: AwareDatetime | None = Field(description="where the absence is counted from")
    severity: Severity | None
    arm: Arm = Field(
        default=CONTACT,
        description="the episode's group in the tenant's holdout: control episodes are not "
        "sent nor listed for contact (GET /v1/holdout)",
    )


class Member(BaseModel):
    member_id: str
    site_id: str | None = Field(description="the site of the member's latest visit")
    status: str = Field(description="active, frozen or cancelled")
    last_visit: AwareDatetime | None
    absent_since: AwareDatetime | None = Field(
        description="last visit, or joining or the end of a freeze if later"
    )
    days_absent: float | None = Field(description="from absent_since to now")
    deadline: AwareDatetime | None = Field(description="when the absence stops being normal")
    severity: Severity | None = Field(description="of the open episode; null when none")
    open_episode: OpenEpisode | None
    usual_gap_days: float | None = Field(
        description="the member's usual gap between visits; null before their second visit"
    )
    visits_last_4_weeks: int | None = Field(description="null when no visit history is kept")
    usual_visits_4_weeks: float | None = Field(description="28 days / usual gap")
    gate_data_since: AwareDatetime | None = Field(
        default=None,
        description="since when Lapse sees the gate data of the member's site (their "
        "tenant's with no site yet); no absence is counted before it. Null: none yet",
    )
    absence_clipped: bool = Field(
        default=False,
        description="absent_since is gate_data_since: the member's own last visit or joining "
        'is earlier, before any gate data ("no gate data before ...")',
    )
    updated_at: AwareDatetime
    display_name: str | None = Field(
        default=None, description="the profile's name; null when none is set (show the id)"
    )
    profile: Profile | None = Field(
        default=None,
        description="the member's profile (PUT /v1/members/{member_id}/profile); null: none",
    )
    holdout: HoldoutNote | None = Field(
        default=None,
        description="set when the open episode is in the holdout's control group: held back "
        "to measure whether reaching out helps, so do not contact the member about it; why, "
        "in plain words. Null: not held back",
    )


class AtRiskList(BaseModel):
    site_id: str | None
    arm: Arm = Field(description="the group listed: contact (the default) or control")
    items: list[Member] = Field(description="highest severity first, then longest absent")


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def member_view(row: MemberStateRow, now: datetime, coverage: Coverage | None = None) -> Member:
    state = MemberState.from_dict(row.state)
    anchor = _ts(state.anchor) or row.last_visit
    since = coverage.start(row.partition, row.site_id) if coverage is not None else None
    last = state.last_visit
    clipped = (
        since is not None
        and state.anchor is not None
        and abs(state.anchor - since.timestamp()) < 1e-3
        and not (last is not None and last >= state.anchor)
    )
    episode_id = row.episode_id or state.episode_id
    severity = state.severity if episode_id and state.severity in RANK else None
    gap = usual_gap(state, COHORT_GAP_DAYS) if state.gap_n > 0 else None
    counted = state.visits > 0 or bool(state.recent)
    return Member(
        member_id=row.member_id,
        site_id=row.site_id,
        status=row.status,
        last_visit=row.last_visit,
        absent_since=anchor,
        days_absent=round(max(0.0, (now - anchor).total_seconds()) / DAY, 2) if anchor else None,
        deadline=row.deadline,
        severity=severity,
        open_episode=OpenEpisode(
            episode_id=episode_id,
            started_at=_ts(state.episode_start),
            severity=severity,
        )
        if episode_id
        else None,
        usual_gap_days=round(gap, 2) if gap is not None else None,
        visits_last_4_weeks=visits_since(state, now.timestamp() - FOUR_WEEKS) if counted else None,
        usual_visits_4_weeks=round(28.0 / gap, 2) if gap else None,
        gate_data_since=since,
        absence_clipped=clipped,
        updated_at=row.updated_at,
    )


async def with_holdout(
    session: AsyncSession, tenant_id: str, members: list[Member]
) -> list[Member]:
    """The members with their open episode's group (control ones with the reason)."""
    notes = await control_notes(
        session, tenant_id, (m.open_episode.episode_id for m in members if m.open_episode)
    )
    for m in members:
        note = notes.get(m.open_episode.episode_id) if m.open_episode else None
        if m.open_episode is not None and note is not None:
            m.open_episode.arm = CONTROL
            m.holdout = note
    return members


async def with_profiles(
    session: AsyncSession, tenant_id: str, members: list[Member]
) -> list[Member]:
    """The members with their profiles (one query per thousand members)."""
    rows = await profiles_of(session, tenant_id, [m.member_id for m in members])
    for m in members:
        row = rows.get(m.member_id)
        if row is not None:
            m.profile = profile_of_row(row)
            m.display_name = row.display_name
    return members


async def at_risk(
    session: AsyncSession,
    principal: Principal,
    *,
    site_id: str | None = None,
    limit: int = 200,
    arm: Arm = CONTACT,
) -> AtRiskList:
    """Members with an open episode now, for one site (or all the caller may see), in the
    ``arm`` group of the holdout, highest severity first, then longest absent."""
    query = select(MemberStateRow).where(
        *scoped(principal, MemberStateRow, site_id), MemberStateRow.episode_id.is_not(None)
    )
    now = datetime.now(UTC)
    coverage = await coverage_of(session, principal.tenant_id)
    members = [member_view(r, now, coverage) for r in await session.scalars(query)]
    await with_holdout(session, principal.tenant_id, members)
    members = [m for m in members if m.open_episode is not None and m.open_episode.arm == arm]
    await with_profiles(session, principal.tenant_id, members)
    members.sort(
        key=lambda m: (-RANK.get(m.severity or "", -1), -(m.days_absent or 0.0), m.member_id)
    )
    return AtRiskList(site_id=site_id, arm=arm, items=members[:limit])


async def member_row(
    session: AsyncSession, principal: Principal, member_id: str, *, for_update: bool = False
) -> MemberStateRow | None:
    """The member's stored state, if the caller may see the member; ``for_update`` locks the
    row (PostgreSQL) until the caller commits."""
    query = select(MemberStateRow).where(
        *scoped(principal, MemberStateRow), MemberStateRow.member_id == member_id
    )
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row: MemberStateRow | None = await session.scalar(query)
    return row


async def member_of(
    session: AsyncSession, principal: Principal, row: MemberStateRow, now: datetime
) -> Member:
    """The member as the api shows it: figures, coverage, holdout group and profile."""
    member = member_view(row, now, await coverage_of(session, principal.tenant_id))
    await with_holdout(session, principal.tenant_id, [member])
    return (await with_profiles(session, principal.tenant_id, [member]))[0]


async def member(session: AsyncSession, principal: Principal, member_id: str) -> Member | None:
    """One member the caller may see, or None."""
    row = await member_row(session, principal, member_id)
    return None if row is None else await member_of(session, principal, row, datetime.now(UTC))
