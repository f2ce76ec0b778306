"""``/v1/actions/summary``: which retention actions bring members back.

Episodes are taken by when they opened (their first alert's ``raised_at``); each is counted
under every action kind taken in it, and under ``none`` when nobody acted, the baseline an
action has to beat. Days to return run from the kind's first action to the ``recovered``
alert. Counts are associations, not causes: staff choose whom to call.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import case, func, select

from api.deps import AlertsReader, SessionDep
from api.outcomes import EpisodeFacts, EpisodeStatus, episode_status, summarise
from api.routers.alerts import scoped
from records.tables import ActionRow, AlertRow

router = APIRouter(prefix="/v1/actions", tags=["actions"])


class ActionSummaryRow(BaseModel):
    action: str = Field(description="call, message, incentive, other, or none (no action)")
    episodes: int
    recovered: int
    churned: int
    still_open: int
    recovery_rate: float | None = Field(description="recovered / (recovered + churned)")
    median_days_to_return: float | None


class ActionSummary(BaseModel):
    since: AwareDatetime | None
    until: AwareDatetime | None
    site_id: str | None
    items: list[ActionSummaryRow]


@router.get("/summary", response_model=ActionSummary)
async def action_summary(
    principal: AlertsReader,
    session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(description="episodes opened at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="episodes opened before")] = None,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
) -> ActionSummary:
    conds = scoped(principal)
    if site_id is not None:
        conds.append(AlertRow.site_id == site_id)
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
    facts = [EpisodeFacts(e, *closed[e], first[e]) for e in wanted]
    return ActionSummary(
        since=since,
        until=until,
        site_id=site_id,
        items=[ActionSummaryRow(**asdict(s)) for s in summarise(facts)],
    )
