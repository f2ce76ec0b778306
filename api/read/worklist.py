"""The staff page's work list: the members with an open episode, the alert to acknowledge
and what was done so far, read as ``/v1/members/at-risk`` reads them (``api.read.members``)
so the page shows no one the api would not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.read.alerts import CLOSING
from api.read.members import Member, at_risk
from api.read.scope import scoped
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow
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


def _reasons(alerts: Sequence[AlertRow]) -> list[Reason]:
    """The reasons of an episode's alerts, latest first, one per code."""
    seen: dict[str, Reason] = {}
    for alert in sorted(alerts, key=lambda a: a.raised_at, reverse=True):
        for raw in alert.payload.get("reasons", []):
            reason = Reason.model_validate(raw)
            seen.setdefault(reason.code, reason)
    return list(seen.values())


async def worklist(session: AsyncSession, principal: Principal, site_id: str | None) -> Worklist:
    members = (await at_risk(session, principal, site_id=site_id, limit=1000)).items
    ids = [m.open_episode.episode_id for m in members if m.open_episode]
    alerts: dict[str, list[AlertRow]] = {}
    actions: dict[str, list[ActionRow]] = {}
    if ids:
        for row in await session.scalars(
            select(AlertRow).where(*scoped(principal, AlertRow), AlertRow.episode_id.in_(ids))
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
