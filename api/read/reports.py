"""What the manager's reports read: the actions summary and the trends per week.

Read functions only, called by the JSON api (``/v1/actions/summary``) and the staff page
(``/staff/reports``) alike, so both show the same figures. Every query carries the
caller's tenant (and site, for a site-bound key) through ``api.read.scope.scoped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.alerts import CLOSING
from api.read.outcomes import ActionStats, EpisodeFacts, EpisodeStatus, episode_status, summarise
from api.read.scope import scoped
from api.read.trends import Happening, WeekTrend, ZoneOf, weekly
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow


async def action_summary(
    session: AsyncSession,
    principal: Principal,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    site_id: str | None = None,
) -> list[ActionStats]:
    """Per action kind (and ``none``): episodes opened in [since, until), their outcomes and
    the median days from the action to the return (``api.read.outcomes.summarise``)."""
    conds = scoped(principal, AlertRow, site_id)
    recovered_at = func.max(case((AlertRow.type == "recovered", AlertRow.raised_at)))
    churned_at = func.max(case((AlertRow.type == "churned", AlertRow.raised_at)))
    opened_at = func.min(AlertRow.raised_at)
    query = select(AlertRow.episode_id, recovered_at, churned_at).where(*conds)
    query = query.group_by(AlertRow.episode_id)
    if since is not None:
        query = query.having(opened_at >= since)
    if until is not None:
        query = query.having(opened_at < until)
    closed: dict[str, tuple[EpisodeStatus, datetime | None]] = {}
    for episode_id, recovered, churned in await session.execute(query):
        types = [t for t, at in (("recovered", recovered), ("churned", churned)) if at]
        status = episode_status(types)
        closed[episode_id] = (status, churned if status == "churned" else recovered)
    wanted = set(closed)
    first: dict[str, dict[str, datetime]] = {e: {} for e in wanted}
    actions = await session.execute(
        select(ActionRow.episode_id, ActionRow.action, func.min(ActionRow.taken_at))
        .where(ActionRow.tenant_id == principal.tenant_id)
        .group_by(ActionRow.episode_id, ActionRow.action)
    )
    for episode_id, action, taken_at in actions:
        if episode_id in first:
            first[episode_id][action] = taken_at
    return summarise(EpisodeFacts(e, *closed[e], first[e]) for e in wanted)


async def weekly_trends(
    session: AsyncSession,
    principal: Principal,
    *,
    mondays: Sequence[date],
    zone_of: ZoneOf,
    site_id: str | None = None,
) -> list[WeekTrend]:
    """Per ISO week (``mondays``, each site's local time): members who went at risk
    (episodes opened), were contacted (episodes first acted on), came back, cancelled.

    An episode counts once per measure, in the week of its first alert, of its first action,
    of its closing alert. If both closing alerts were recorded, it is a cancellation, as in
    ``api.read.outcomes.episode_status``."""
    if not mondays:
        return []
    # A day early: a site east of UTC starts its Monday on the Sunday in UTC.
    since = datetime.combine(mondays[0] - timedelta(days=1), datetime.min.time()).replace(
        tzinfo=zone_of(None)
    )
    conds = scoped(principal, AlertRow, site_id)
    # Episodes with anything in the period, then all their alerts (an episode opened before
    # the period and closed in it counts its close, not its opening).
    recent = select(AlertRow.episode_id).where(*conds, AlertRow.raised_at >= since)
    opened_at = func.min(case((AlertRow.type.not_in(CLOSING), AlertRow.raised_at)))
    recovered_at = func.max(case((AlertRow.type == "recovered", AlertRow.raised_at)))
    churned_at = func.max(case((AlertRow.type == "churned", AlertRow.raised_at)))
    episodes = await session.execute(
        select(func.min(AlertRow.site_id), opened_at, recovered_at, churned_at)
        .where(*conds, AlertRow.episode_id.in_(recent))
        .group_by(AlertRow.episode_id)
    )
    happened: list[Happening] = []
    for site, opened, recovered, churned in episodes:
        if opened is not None:
            happened.append(Happening("at_risk", opened, site))
        if churned is not None:
            happened.append(Happening("cancelled", churned, site))
        elif recovered is not None:
            happened.append(Happening("came_back", recovered, site))
    # The action's alert carries the site and the tenant: scoped like the alerts themselves.
    first_action = func.min(ActionRow.taken_at)
    contacted = await session.execute(
        select(func.min(AlertRow.site_id), first_action)
        .join(AlertRow, AlertRow.alert_id == ActionRow.alert_id)
        .where(ActionRow.tenant_id == principal.tenant_id, *conds)
        .group_by(ActionRow.episode_id)
        .having(first_action >= since)
    )
    happened += [Happening("contacted", at, site) for site, at in contacted]
    return weekly(happened, zone_of, mondays)
