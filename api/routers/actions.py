"""``/v1/actions/summary``: which retention actions bring members back.

Episodes are taken by when they opened (their first alert's ``raised_at``); each is counted
under every action kind taken in it, and under ``none`` when nobody acted, the baseline an
action has to beat. Days to return run from the kind's first action to the ``recovered``
alert. Counts are associations, not causes: staff choose whom to call. The read itself is
``api.read.reports.action_summary``, which the staff page's reports call too.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import AlertsReader, SessionDep
from api.read import reports

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
    rows = await reports.action_summary(
        session, principal, since=since, until=until, site_id=site_id
    )
    return ActionSummary(
        since=since,
        until=until,
        site_id=site_id,
        items=[ActionSummaryRow(**asdict(s)) for s in rows],
    )
