"""``/v1/alerts``: the caller's tenant's alerts, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import and_, or_, select

from api.deps import AlertsReader, SessionDep, decode_cursor, encode_cursor, not_found
from lapse.db.models import AlertRow
from schemas import Alert, AlertType

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


class AlertItem(Alert):
    """The alert as raised, plus when Lapse stored it (the order of the list)."""

    created_at: AwareDatetime


class AlertPage(BaseModel):
    items: list[AlertItem]
    next_cursor: str | None


def _item(row: AlertRow) -> AlertItem:
    data: dict[str, Any] = {**row.payload, "created_at": row.created_at}
    return AlertItem.model_validate(data)


@router.get("", response_model=AlertPage)
async def list_alerts(
    principal: AlertsReader,
    session: SessionDep,
    type_: Annotated[AlertType | None, Query(alias="type")] = None,
    member_id: Annotated[str | None, Query(max_length=128)] = None,
    site_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[AwareDatetime | None, Query(description="created_at at or after")] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertPage:
    query = select(AlertRow).where(AlertRow.tenant_id == principal.tenant_id)
    if principal.site_id is not None:
        # A key bound to one site sees that site's alerts only.
        query = query.where(AlertRow.site_id == principal.site_id)
    if type_ is not None:
        query = query.where(AlertRow.type == type_)
    if member_id is not None:
        query = query.where(AlertRow.member_id == member_id)
    if site_id is not None:
        query = query.where(AlertRow.site_id == site_id)
    if since is not None:
        query = query.where(AlertRow.created_at >= since)
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
    return AlertPage(
        items=[_item(r) for r in rows],
        next_cursor=encode_cursor(last.created_at, last.alert_id) if last else None,
    )


@router.get("/{alert_id}", response_model=AlertItem)
async def get_alert(alert_id: str, principal: AlertsReader, session: SessionDep) -> AlertItem:
    row = await session.get(AlertRow, alert_id)
    if (
        row is None
        or row.tenant_id != principal.tenant_id
        or (principal.site_id is not None and row.site_id != principal.site_id)
    ):
        raise not_found("alert")
    return _item(row)
