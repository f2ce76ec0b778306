"""Stored calibration reports (``lapse calibrate --store``, migration 0006_calibration), as
the manager's reports page reads them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import CalibrationReport


async def latest_calibration(session: AsyncSession, tenant_id: str) -> CalibrationReport | None:
    """The tenant's newest stored report, or None before the first one."""
    report: CalibrationReport | None = await session.scalar(
        select(CalibrationReport)
        .where(CalibrationReport.tenant_id == tenant_id)
        .order_by(CalibrationReport.created_at.desc(), CalibrationReport.id.desc())
        .limit(1)
    )
    return report


async def calibration_html(session: AsyncSession, tenant_id: str, report_id: str) -> str | None:
    html: str | None = await session.scalar(
        select(CalibrationReport.report_html).where(
            CalibrationReport.tenant_id == tenant_id, CalibrationReport.id == report_id
        )
    )
    return html
