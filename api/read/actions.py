"""Actions staff took on alerts: how the api shows one, and recording one.

Recording is the one write both the JSON api (``POST /v1/alerts/{id}/actions``) and the
staff page's acknowledge form make, so it is written once, here, beside its read model.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from records.api_keys import Principal
from records.tables import ActionRow, AlertRow


class ActionOut(BaseModel):
    id: str
    episode_id: str
    alert_id: str
    member_id: str
    action: str
    note: str | None
    taken_at: AwareDatetime
    taken_by: str = Field(description="The id of the API key that recorded it.")


def action_out(row: ActionRow) -> ActionOut:
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


async def record_action(
    session: AsyncSession,
    principal: Principal,
    alert: AlertRow,
    action: str,
    note: str | None,
    taken_at: datetime,
) -> ActionOut:
    """Record what staff did about ``alert`` (one the caller may see: ``alerts.alert_row``);
    it counts for the alert's whole episode, taken by the caller's key or account."""
    row = ActionRow(
        id=str(uuid.uuid4()),
        tenant_id=alert.tenant_id,
        episode_id=alert.episode_id,
        alert_id=alert.alert_id,
        member_id=alert.member_id,
        action=action,
        note=note,
        taken_at=taken_at,
        taken_by=principal.key_id,
    )
    session.add(row)
    await session.commit()
    return action_out(row)
