"""Alerts into the ``alerts`` table, which is also the outbox webhook delivery reads.

Alert ids are deterministic, so inserting one twice (a replayed batch after a crash)
is a no-op rather than a second alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from lapse.db.models import AlertRow
from lapse.db.upsert import insert
from schemas import Alert


def alert_values(alert: Alert, created_at: datetime) -> dict[str, object]:
    return {
        "alert_id": alert.alert_id,
        "tenant_id": alert.tenant_id,
        "member_id": alert.member_id,
        "site_id": alert.site_id,
        "episode_id": alert.episode_id,
        "type": alert.type,
        "severity": alert.severity,
        "raised_at": alert.raised_at,
        "payload": alert.model_dump(mode="json"),
        "created_at": created_at,
        "fanned_out": False,
    }


async def add_alerts(session: AsyncSession, alerts: Iterable[Alert]) -> None:
    """Stage alerts in the caller's transaction; existing ids are left untouched."""
    now = datetime.now(UTC)
    values = [alert_values(a, now) for a in alerts]
    if values:
        # Executed for many rows: compiled once and cached, unlike a multi-row VALUES.
        stmt = insert(session, AlertRow.__table__).on_conflict_do_nothing()
        await session.execute(stmt, values)
