"""``/v1/alerts`` and ``/v1/episodes``: the caller's tenant's alerts, their episodes and the
actions staff took.

An action is recorded against an alert (``POST /v1/alerts/{id}/actions``): the alert id is
what a CRM holds from the webhook; the action belongs to that alert's episode, and the
episode's history lists the actions of all its alerts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import and_, exists, or_, select, text
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from api.coverage import Coverage, coverage_of
from api.deps import AlertsReader, SessionDep, decode_cursor, encode_cursor, not_found
from api.outcomes import ActionKind, EpisodeStatus, episode_status
from plumbing.problems import Problem
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow
from schemas import Alert, AlertType
from schemas.alerts import Severity
from schemas.events import NOTE_PATTERN

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
episodes_router = APIRouter(prefix="/v1/episodes", tags=["alerts"])

CLOSING = ("recovered", "churned")


class AlertItem(Alert):
    """The alert as raised, plus when Lapse stored it (the order of the list)."""

    created_at: AwareDatetime
    gate_data_since: AwareDatetime | None = Field(
        default=None,
        description="set when the absence was counted from the start of the site's gate "
        "data rather than from the member's last visit or joining (its reasons then carry "
        "days_since_gate_data_start): no gate data before it",
    )


class AlertPage(BaseModel):
    items: list[AlertItem]
    next_cursor: str | None


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ActionKind
    note: Annotated[str, Field(max_length=2000, pattern=NOTE_PATTERN)] | None = None
    taken_at: AwareDatetime | None = Field(
        default=None, description="When staff acted; defaults to now. Not in the future."
    )


class ActionOut(BaseModel):
    id: str
    episode_id: str
    alert_id: str
    member_id: str
    action: str
    note: str | None
    taken_at: AwareDatetime
    taken_by: str = Field(description="The id of the API key that recorded it.")


class Episode(BaseModel):
    episode_id: str
    member_id: str
    site_id: str | None
    status: EpisodeStatus = Field(
        description="open (still absent), recovered (came back) or churned (cancelled)."
    )
    opened_at: AwareDatetime = Field(description="raised_at of its first alert")
    closed_at: AwareDatetime | None = Field(description="raised_at of its closing alert")
    severity: Severity = Field(description="the highest severity it reached")
    alerts: list[AlertItem] = Field(description="oldest first")
    actions: list[ActionOut] = Field(description="oldest first")


class AlertDetail(AlertItem):
    episode: Episode


CLIPPED = "days_since_gate_data_start"  # the figure of an absence clipped by coverage


def _clipped_days(row: AlertRow) -> float | None:
    for reason in row.payload.get("reasons") or ():
        days = (reason.get("figures") or {}).get(CLIPPED)
        if isinstance(days, int | float):
            return float(days)
    return None


async def coverage_for(session: SessionDep, tenant_id: str, rows: list[AlertRow]) -> Coverage:
    """The tenant's coverage if an alert needs it (one of them was clipped), else none."""
    if any(_clipped_days(r) is not None for r in rows):
        return await coverage_of(session, tenant_id)
    return Coverage()


def _item(row: AlertRow, coverage: Coverage | None = None) -> AlertItem:
    data: dict[str, Any] = {**row.payload, "created_at": row.created_at}
    days = _clipped_days(row)
    if days is not None and coverage is not None:
        since = row.raised_at - timedelta(days=days)
        data["gate_data_since"] = coverage.clipped_start(row.site_id, since)
    return AlertItem.model_validate(data)


def _action_out(row: ActionRow) -> ActionOut:
    return ActionOut(
        id=row.id,
        episode_id=row.episode_id,
        alert_id=row.alert_id,
        member_id=row.member_id,
        action=row.action,
        note=row.note,
        taken_at=row.taken_at,
        taken_by=row.taken_by,
    )


def scoped(principal: Principal) -> list[ColumnElement[bool]]:
    """The conditions every alert query of this caller carries (tenant, and site if bound)."""
    conds: list[ColumnElement[bool]] = [AlertRow.tenant_id == principal.tenant_id]
    if principal.site_id is not None:
        conds.append(AlertRow.site_id == principal.site_id)
    return conds


def _status_condition(status: EpisodeStatus) -> ColumnElement[bool]:
    closing = aliased(AlertRow)

    def closed(types: tuple[str, ...]) -> ColumnElement[bool]:
        return exists().where(
            closing.tenant_id == AlertRow.tenant_id,
            closing.episode_id == AlertRow.episode_id,
            closing.type.in_(types),
        )

    if status == "open":
        return ~closed(CLOSING)
    if status == "churned":
        return closed(("churned",))
    return and_(closed(("recovered",)), ~closed(("churned",)))


def _reason_condition(dialect: str) -> ColumnElement[bool]:
    """Alerts with a reason of code ``:reason_code`` (JSON, so per dialect)."""
    if dialect == "postgresql":
        sql = (
            "EXISTS (SELECT 1 FROM json_array_elements(alerts.payload -> 'reasons') AS r "
            "WHERE r ->> 'code' = :reason_code)"
        )
    else:
        sql = (
            "EXISTS (SELECT 1 FROM json_each(alerts.payload, '$.reasons') AS r "
            "WHERE json_extract(r.value, '$.code') = :reason_code)"
        )
    return text(sql).self_group()  # type: ignore[return-value]


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
    query = select(AlertRow).where(*scoped(principal))
    if type_ is not None:
        query = query.where(AlertRow.type == type_)
    if status is not None:
        query = query.where(_status_condition(status))
    if severity is not None:
        query = query.where(AlertRow.severity == severity)
    if reason is not None:
        dialect = session.get_bind().dialect.name
        query = query.where(_reason_condition(dialect)).params(reason_code=reason)
    if member_id is not None:
        query = query.where(AlertRow.member_id == member_id)
    if site_id is not None:
        query = query.where(AlertRow.site_id == site_id)
    if since is not None:
        query = query.where(AlertRow.created_at >= since)
    if until is not None:
        query = query.where(AlertRow.created_at < until)
    if cursor is not None:
        created_at, alert_id = decode_cursor(cursor)
        query = query.where(
            or_(
                AlertRow.created_at < created_at,
                and_(AlertRow.created_at == created_at, AlertRow.alert_id < alert_id),
            )
        )
    query = query.order_by(AlertRow.created_at.desc(), AlertRow.alert_id.desc()).limit(limit + 1)
    rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    coverage = await coverage_for(session, principal.tenant_id, rows)
    return AlertPage(
        items=[_item(r, coverage) for r in rows],
        next_cursor=encode_cursor(last.created_at, last.alert_id) if last else None,
    )


async def _alert(session: SessionDep, principal: Principal, alert_id: str) -> AlertRow:
    row = await session.scalar(
        select(AlertRow).where(AlertRow.alert_id == alert_id, *scoped(principal))
    )
    if row is None:
        raise not_found("alert")
    return row


async def load_episode(
    session: SessionDep, principal: Principal, episode_id: str
) -> Episode | None:
    alerts = list(
        await session.scalars(
            select(AlertRow)
            .where(AlertRow.episode_id == episode_id, *scoped(principal))
            .order_by(AlertRow.raised_at, AlertRow.created_at, AlertRow.alert_id)
        )
    )
    if not alerts:
        return None
    actions = await session.scalars(
        select(ActionRow)
        .where(ActionRow.tenant_id == principal.tenant_id, ActionRow.episode_id == episode_id)
        .order_by(ActionRow.taken_at, ActionRow.id)
    )
    coverage = await coverage_for(session, principal.tenant_id, alerts)
    status = episode_status(a.type for a in alerts)
    closing = [a for a in alerts if a.type == status]
    rank = {"low": 0, "medium": 1, "high": 2}
    opening = [a for a in alerts if a.type not in CLOSING] or alerts
    return Episode(
        episode_id=episode_id,
        member_id=alerts[0].member_id,
        site_id=alerts[0].site_id,
        status=status,
        opened_at=alerts[0].raised_at,
        closed_at=closing[0].raised_at if closing else None,
        severity=max((a.severity for a in opening), key=lambda s: rank.get(s, 0)),
        alerts=[_item(a, coverage) for a in alerts],
        actions=[_action_out(a) for a in actions],
    )


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(alert_id: str, principal: AlertsReader, session: SessionDep) -> AlertDetail:
    """One alert with its reasons and the history of its episode (alerts and actions)."""
    row = await _alert(session, principal, alert_id)
    episode = await load_episode(session, principal, row.episode_id)
    assert episode is not None
    item = _item(row, await coverage_for(session, principal.tenant_id, [row]))
    return AlertDetail(**item.model_dump(), episode=episode)


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
    action = ActionRow(
        id=str(uuid.uuid4()),
        tenant_id=row.tenant_id,
        episode_id=row.episode_id,
        alert_id=row.alert_id,
        member_id=row.member_id,
        action=body.action,
        note=body.note,
        taken_at=taken_at,
        taken_by=principal.key_id,
    )
    session.add(action)
    await session.commit()
    return _action_out(action)


@router.get("/{alert_id}/actions", response_model=list[ActionOut])
async def list_actions(
    alert_id: str, principal: AlertsReader, session: SessionDep
) -> list[ActionOut]:
    """The actions taken in this alert's episode (through any of its alerts), oldest first."""
    row = await _alert(session, principal, alert_id)
    episode = await load_episode(session, principal, row.episode_id)
    assert episode is not None
    return episode.actions


@episodes_router.get("/{episode_id}", response_model=Episode)
async def get_episode(episode_id: str, principal: AlertsReader, session: SessionDep) -> Episode:
    """An episode: its outcome so far, its alerts and the actions taken."""
    episode = await load_episode(session, principal, episode_id)
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
