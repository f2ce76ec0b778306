"""What ``lapse import`` recorded, as the api reads it for its metrics: one row per imported
file of ``import_runs`` (the table that lets a run resume), across tenants: the metrics are
the operator's, not a tenant's (``api/import_metrics.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import ImportRun


async def import_runs(
    session: AsyncSession,
) -> Sequence[tuple[str, str, int, int, dict[str, Any] | None]]:
    """Each file's tenant, status, rows accepted and rejected, and rejections by reason."""
    result = await session.execute(
        select(
            ImportRun.tenant_id,
            ImportRun.status,
            ImportRun.accepted,
            ImportRun.rejected,
            ImportRun.rejected_by_reason,
        )
    )
    return [(t, status, a, r, by) for t, status, a, r, by in result]
