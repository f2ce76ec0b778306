"""``/v1/alerts`` and ``/v1/episodes``: the caller's tenant's alerts, their episodes and the
actions staff took.

An action is recorded against an alert (``POST /v1/alerts/{id}/actions``): the alert id is
what a CRM holds from the webhook; the action belongs to that alert's episode, and the
episode's history lists the actions of all its alerts. The reads and the write are
``api.read.alerts`` and ``api.read.actions`` (the staff page calls them too).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import AlertsReader, SessionDep, not_found
from api.read import actions, alerts
from api.read.actions import ActionOut
from api.read.alerts import AlertDetail, AlertPage, Episode
from api.read.outcomes import ActionKind, EpisodeStatus
from plumbing.problems import Problem
from records.api_keys import Principal
from records.tables import AlertRow
from schemas import AlertType
from schemas.alerts import Severity
from schemas.events import NOTE_PATTERN

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
episodes_router = APIRouter(prefix="/v1/episodes", tags=["alerts"])


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ActionKind
    note: Annotated[str, Field(max_length=2000, pattern=NOTE_PATTERN)] | None = None
    taken_at: AwareDatetime | None = Field(
        default=None, description="When staff acted; defaults to now. Not in the future."
    )


@router.get("", response_model=AlertPage)
async def list_alerts(
    principal: AlertsReader,
    session: SessionDep,
    type_: Annotated[AlertType | None, Query(alias="type")] = None,
    status: Annotated[
        EpisodeStatus | None, Query(description="the outcome of the alert's episode so far")
    ] = None,
    severity: Severity | None = None,
    reason: Annotated[str | None, Query(max_length=64, description="a reason code")] = None,
    member_id: Annotated[str | None, Query(max_length=128)] = None,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[AwareDatetime | None, Query(description="created_at at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="created_at before")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertPage:
    return await alerts.alert_page(
        session,
        principal,
        type_=type_,
        status=status,
        severity=severity,
        reason=reason,
        member_id=member_id,
        site_id=site_id,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


async def _alert(session: SessionDep, principal: Principal, alert_id: str) -> AlertRow:
    row = await alerts.alert_row(session, principal, alert_id)
    if row is None:
        raise not_found("alert")
    return row


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(alert_id: str, principal: AlertsReader, session: SessionDep) -> AlertDetail:
    """One alert with its reasons and the history of its episode (alerts and actions)."""
    return await alerts.alert_detail(session, principal, await _alert(session, principal, alert_id))


@router.post("/{alert_id}/actions", status_code=201, response_model=ActionOut)
async def record_action(
    alert_id: str, body: ActionCreate, principal: AlertsReader, session: SessionDep
) -> ActionOut:
    """Acknowledge an alert with what staff did; it counts for the alert's whole episode."""
    row = await _alert(session, principal, alert_id)
    now = datetime.now(UTC)
    taken_at = body.taken_at or now
    if taken_at > now:
        raise _invalid("taken_at", "taken_at is in the future")
    return await actions.record_action(session, principal, row, body.action, body.note, taken_at)


@router.get("/{alert_id}/actions", response_model=list[ActionOut])
async def list_actions(
    alert_id: str, principal: AlertsReader, session: SessionDep
) -> list[ActionOut]:
    """The actions taken in this alert's episode (through any of its alerts), oldest first."""
    row = await _alert(session, principal, alert_id)
    episode = await alerts.load_episode(session, principal, row.episode_id)
    assert episode is not None
    return episode.actions


@episodes_router.get("/{episode_id}", response_model=Episode)
async def get_episode(episode_id: str, principal: AlertsReader, session: SessionDep) -> Episode:
    """An episode: its outcome so far, its alerts and the actions taken."""
    episode = await alerts.load_episode(session, principal, episode_id)
    if episode is None:
        raise not_found("episode")
    return episode


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"invalid field(s): {field}",
        type_="validation",
        errors=[{"pointer": f"/{field}", "field": field, "message": message}],
    )
