"""Alerts and episodes as the api reads them: the caller's alerts, one alert, an episode's
history (its alerts and the actions taken), a member's latest episodes.

Read by ``/v1/alerts``, ``/v1/episodes`` and the staff page alike; every query is scoped to
the caller through ``api.read.scope.scoped``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import and_, exists, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from api.deps import decode_cursor, encode_cursor
from api.read.actions import ActionOut, action_out
from api.read.coverage import Coverage, coverage_of
from api.read.holdout import HoldoutNote, control_notes
from api.read.outcomes import EpisodeStatus, episode_status
from api.read.scope import scoped
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow
from schemas import Alert, AlertType
from schemas.alerts import Arm, Severity

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
    arm: Arm = Field(
        default="contact",
        description="its group in the tenant's holdout, drawn when it opened (GET /v1/holdout)",
    )
    holdout: HoldoutNote | None = Field(
        default=None,
        description="set for a control episode: held back to measure whether reaching out "
        "helps (not sent, not listed for contact), and why in plain words",
    )


class AlertDetail(AlertItem):
    episode: Episode


CLIPPED = "days_since_gate_data_start"  # the figure of an absence clipped by coverage


def _clipped_days(row: AlertRow) -> float | None:
    for reason in row.payload.get("reasons") or ():
        days = (reason.get("figures") or {}).get(CLIPPED)
        if isinstance(days, int | float):
            return float(days)
    return None


async def coverage_for(session: AsyncSession, tenant_id: str, rows: list[AlertRow]) -> Coverage:
    """The tenant's coverage if an alert needs it (one of them was clipped), else none."""
    if any(_clipped_days(r) is not None for r in rows):
        return await coverage_of(session, tenant_id)
    return Coverage()


def alert_item(row: AlertRow, coverage: Coverage | None = None) -> AlertItem:
    data: dict[str, Any] = {**row.payload, "created_at": row.created_at}
    days = _clipped_days(row)
    if days is not None and coverage is not None:
        since = row.raised_at - timedelta(days=days)
        data["gate_data_since"] = coverage.clipped_start(row.site_id, since)
    return AlertItem.model_validate(data)


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


async def alert_page(
    session: AsyncSession,
    principal: Principal,
    *,
    type_: AlertType | None = None,
    status: EpisodeStatus | None = None,
    severity: Severity | None = None,
    reason: str | None = None,
    member_id: str | None = None,
    site_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> AlertPage:
    """The caller's alerts, newest stored first, filtered, one page from ``cursor``."""
    query = select(AlertRow).where(*scoped(principal, AlertRow))
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
        items=[alert_item(r, coverage) for r in rows],
        next_cursor=encode_cursor(last.created_at, last.alert_id) if last else None,
    )


async def alert_row(session: AsyncSession, principal: Principal, alert_id: str) -> AlertRow | None:
    """The alert, if the caller may see it."""
    row: AlertRow | None = await session.scalar(
        select(AlertRow).where(AlertRow.alert_id == alert_id, *scoped(principal, AlertRow))
    )
    return row


async def load_episode(
    session: AsyncSession, principal: Principal, episode_id: str
) -> Episode | None:
    alerts = list(
        await session.scalars(
            select(AlertRow)
            .where(AlertRow.episode_id == episode_id, *scoped(principal, AlertRow))
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
    note = (
        (await control_notes(session, principal.tenant_id, [episode_id])).get(episode_id)
        if any(a.arm == "control" for a in alerts)
        else None
    )
    return Episode(
        episode_id=episode_id,
        member_id=alerts[0].member_id,
        site_id=alerts[0].site_id,
        status=status,
        opened_at=alerts[0].raised_at,
        closed_at=closing[0].raised_at if closing else None,
        severity=max((a.severity for a in opening), key=lambda s: rank.get(s, 0)),
        alerts=[alert_item(a, coverage) for a in alerts],
        actions=[action_out(a) for a in actions],
        arm="control" if note is not None else "contact",
        holdout=note,
    )


async def alert_detail(session: AsyncSession, principal: Principal, row: AlertRow) -> AlertDetail:
    """One alert with its reasons and the history of its episode (alerts and actions)."""
    episode = await load_episode(session, principal, row.episode_id)
    assert episode is not None
    item = alert_item(row, await coverage_for(session, principal.tenant_id, [row]))
    return AlertDetail(**item.model_dump(), episode=episode)


async def member_episodes(
    session: AsyncSession, principal: Principal, member_id: str, limit: int = 20
) -> list[Episode]:
    """The member's latest episodes (newest first), each with its alerts and actions."""
    rows = await session.execute(
        select(AlertRow.episode_id, AlertRow.raised_at)
        .where(*scoped(principal, AlertRow), AlertRow.member_id == member_id)
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
