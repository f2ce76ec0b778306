"""What the staff page reads: the work list, a member's episodes, the latest calibration.

Every query carries the caller's tenant (and site, for a site-bound key), through the same
conditions the JSON api uses, so the page can show nothing the api would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CompoundSelect

from api.routers.alerts import CLOSING, Episode, load_episode, scoped
from api.routers.members import Member, at_risk
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow, CalibrationReport, MemberStateRow, Site
from schemas import Reason


@dataclass(slots=True)
class WorkItem:
    """A member with an open episode, the alert to acknowledge and what was done so far."""

    member: Member
    alert_id: str | None  # the episode's latest alert; None if the alert is not stored yet
    opened_at: datetime | None
    reasons: list[Reason] = field(default_factory=list)
    actions: list[ActionRow] = field(default_factory=list)


@dataclass(slots=True)
class Worklist:
    """``todo``: open episodes nobody acted on yet; ``contacted``: open ones acted on.

    Both keep the at-risk order (highest severity first, then longest absent).
    """

    todo: list[WorkItem]
    contacted: list[WorkItem]


async def sites(session: AsyncSession, principal: Principal) -> list[str]:
    """The tenant's sites: configured ones, and any seen on members or alerts."""
    if principal.site_id is not None:
        return [principal.site_id]
    t = principal.tenant_id
    query: CompoundSelect[str | None] = union(
        select(Site.site_id).where(Site.tenant_id == t),
        select(MemberStateRow.site_id).where(
            MemberStateRow.tenant_id == t, MemberStateRow.site_id.is_not(None)
        ),
        select(AlertRow.site_id).where(AlertRow.tenant_id == t, AlertRow.site_id.is_not(None)),
    )
    return sorted({site for (site,) in await session.execute(query) if site})


async def site_zones(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    rows = await session.execute(
        select(Site.site_id, Site.time_zone).where(Site.tenant_id == tenant_id)
    )
    return {site: zone for site, zone in rows}


def _reasons(alerts: Sequence[AlertRow]) -> list[Reason]:
    """The reasons of an episode's alerts, latest first, one per code."""
    seen: dict[str, Reason] = {}
    for alert in sorted(alerts, key=lambda a: a.raised_at, reverse=True):
        for raw in alert.payload.get("reasons", []):
            reason = Reason.model_validate(raw)
            seen.setdefault(reason.code, reason)
    return list(seen.values())


async def worklist(session: AsyncSession, principal: Principal, site_id: str | None) -> Worklist:
    members = (await at_risk(principal, session, site_id=site_id, limit=1000)).items
    ids = [m.open_episode.episode_id for m in members if m.open_episode]
    alerts: dict[str, list[AlertRow]] = {}
    actions: dict[str, list[ActionRow]] = {}
    if ids:
        for row in await session.scalars(
            select(AlertRow).where(*scoped(principal), AlertRow.episode_id.in_(ids))
        ):
            alerts.setdefault(row.episode_id, []).append(row)
        for act in await session.scalars(
            select(ActionRow)
            .where(ActionRow.tenant_id == principal.tenant_id, ActionRow.episode_id.in_(ids))
            .order_by(ActionRow.taken_at, ActionRow.id)
        ):
            actions.setdefault(act.episode_id, []).append(act)
    out = Worklist([], [])
    for m in members:
        assert m.open_episode is not None
        eid = m.open_episode.episode_id
        ep_alerts = [a for a in alerts.get(eid, []) if a.type not in CLOSING]
        latest = max(ep_alerts, key=lambda a: (a.raised_at, a.created_at), default=None)
        item = WorkItem(
            member=m,
            alert_id=latest.alert_id if latest else None,
            opened_at=min((a.raised_at for a in ep_alerts), default=None),
            reasons=_reasons(ep_alerts),
            actions=actions.get(eid, []),
        )
        (out.contacted if item.actions else out.todo).append(item)
    return out


async def member_row(
    session: AsyncSession, principal: Principal, member_id: str
) -> MemberStateRow | None:
    conds = [MemberStateRow.tenant_id == principal.tenant_id]
    if principal.site_id is not None:
        conds.append(MemberStateRow.site_id == principal.site_id)
    row: MemberStateRow | None = await session.scalar(
        select(MemberStateRow).where(*conds, MemberStateRow.member_id == member_id)
    )
    return row


async def member_episodes(
    session: AsyncSession, principal: Principal, member_id: str, limit: int = 20
) -> list[Episode]:
    """The member's latest episodes (newest first), each with its alerts and actions."""
    rows = await session.execute(
        select(AlertRow.episode_id, AlertRow.raised_at)
        .where(*scoped(principal), AlertRow.member_id == member_id)
        .order_by(AlertRow.raised_at.desc())
    )
    ids: list[str] = []
    for episode_id, _ in rows:
        if episode_id not in ids:
            ids.append(episode_id)
        if len(ids) >= limit:
            break
    episodes = [await load_episode(session, principal, e) for e in ids]
    return [e for e in episodes if e is not None]


# -- calibration reports (``lapse calibrate --store``, migration 0006_calibration) ---------


async def latest_calibration(session: AsyncSession, tenant_id: str) -> CalibrationReport | None:
    """The tenant's newest stored report, or None before the first one."""
    report: CalibrationReport | None = await session.scalar(
        select(CalibrationReport)
        .where(CalibrationReport.tenant_id == tenant_id)
        .order_by(CalibrationReport.created_at.desc(), CalibrationReport.id.desc())
        .limit(1)
    )
    return report


async def calibration_html(session: AsyncSession, tenant_id: str, report_id: str) -> str | None:
    html: str | None = await session.scalar(
        select(CalibrationReport.report_html).where(
            CalibrationReport.tenant_id == tenant_id, CalibrationReport.id == report_id
        )
    )
    return html


def matching(work: Worklist, query: str) -> Worklist:
    """The work list's members whose name or id contains ``query`` (case and accents as typed
    are compared case-insensitively; the list's order kept). Filtered here, not in SQL: the
    list is the tenant's open episodes (hundreds at most), already loaded with their names."""
    needle = query.strip().casefold()

    def hit(item: WorkItem) -> bool:
        m = item.member
        return needle in m.member_id.casefold() or needle in (m.display_name or "").casefold()

    if not needle:
        return work
    return Worklist([i for i in work.todo if hit(i)], [i for i in work.contacted if hit(i)])


# -- the work list's sort, severity filter and paging (pure: the list is already loaded) -----

SORTS = ("risk", "absent", "contact")
SEVERITIES = ("high", "medium", "low")
PER_PAGE = 25


def last_contact(item: WorkItem) -> datetime | None:
    """When staff last acted on the member's open episode (None: nobody has yet)."""
    return max((a.taken_at for a in item.actions), default=None)


def sorted_items(items: Sequence[WorkItem], sort: str) -> list[WorkItem]:
    """``risk``: the at-risk order as loaded (highest severity, then longest absent);
    ``absent``: longest absent first (unknown last); ``contact``: never contacted first, then
    the longest since the last contact. Stable: ties keep the risk order."""
    if sort == "absent":
        return sorted(items, key=lambda i: -(i.member.days_absent or -1.0))
    if sort == "contact":
        return sorted(
            items,
            key=lambda i: c.timestamp() if (c := last_contact(i)) is not None else float("-inf"),
        )
    return list(items)


def arranged(work: Worklist, *, sort: str, severity: str | None) -> Worklist:
    """The work list in the chosen order, only the chosen severity when one is given."""

    def keep(item: WorkItem) -> bool:
        return severity is None or item.member.severity == severity

    return Worklist(
        sorted_items([i for i in work.todo if keep(i)], sort),
        sorted_items([i for i in work.contacted if keep(i)], sort),
    )


@dataclass(frozen=True, slots=True)
class Paging:
    """Which page of the list is shown: ``page`` of ``pages`` (1-based), out of ``total``."""

    page: int
    pages: int
    total: int
    per_page: int


def paged(work: Worklist, page: int, per_page: int = PER_PAGE) -> tuple[Worklist, Paging]:
    """One page of the list: to-do members first, then contacted ones, ``per_page`` in all.

    A page past the end shows the last one (a link kept from a longer list still lands)."""
    total = len(work.todo) + len(work.contacted)
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    start, end = (page - 1) * per_page, page * per_page
    n = len(work.todo)
    todo = work.todo[start:end]
    contacted = work.contacted[max(0, start - n) : max(0, end - n)]
    return Worklist(todo, contacted), Paging(page, pages, total, per_page)


async def site_names(session: AsyncSession, tenant_id: str) -> dict[str, str]:
    """The tenant's configured site names by site id (``lapse sites``; a site seen only on
    events has none and is shown by its id)."""
    rows = await session.execute(select(Site.site_id, Site.name).where(Site.tenant_id == tenant_id))
    return {site: name for site, name in rows if name}
