"""Read layer of the uplift report (issue 22): a tenant's episodes with their arm, as the pure
report (``detector.core.uplift``) takes them. Shared by ``/v1/uplift``, ``lapse uplift`` and
the manager's page, so all three give the same figures.

An episode is the alerts sharing an ``episode_id`` that began with ``at_risk`` (win-back
episodes have their own report): opened at its first alert, came back at its ``recovered``
alert, cancelled at its ``churned`` alert, its highest severity, the policy and arm its
opening alert carried. Only episodes opened inside one of the tenant's holdout periods
count (``holdout_periods``): before the first period nobody was held back, so there is no
control group to compare with. The first action staff took in it comes from ``actions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from detector.core.holdout import CONTROL, HoldoutPeriod, period_at
from detector.core.uplift import (
    DEFAULT_SETTLE_DAYS,
    DEFAULT_STAY_HORIZON_DAYS,
    Episode,
    UpliftReport,
    report,
)
from lapse.db.models import ActionRow, AlertRow, HoldoutPeriodRow

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
RANK_SEVERITY = {v: k for k, v in SEVERITY_RANK.items()}


@dataclass(frozen=True, slots=True)
class UpliftRead:
    """The report, and what it left out: episodes opened outside every holdout period."""

    report: UpliftReport
    periods: list[HoldoutPeriod]
    outside: int


async def holdout_periods(session: AsyncSession, tenant_id: str) -> list[HoldoutPeriod]:
    rows = await session.scalars(
        select(HoldoutPeriodRow)
        .where(HoldoutPeriodRow.tenant_id == tenant_id)
        .order_by(HoldoutPeriodRow.start)
    )
    return [HoldoutPeriod(r.start, r.end, r.share) for r in rows]


async def episodes(
    session: AsyncSession, tenant_id: str, site_id: str | None = None
) -> tuple[list[Episode], list[HoldoutPeriod], int]:
    """The tenant's at-risk episodes inside a holdout period, the periods, and how many
    episodes fell outside every period."""
    periods = await holdout_periods(session, tenant_id)
    conds: list[ColumnElement[bool]] = [AlertRow.tenant_id == tenant_id]
    if site_id is not None:
        conds.append(AlertRow.site_id == site_id)
    rank = case(
        *((AlertRow.severity == name, value) for name, value in SEVERITY_RANK.items()), else_=0
    )
    opened = func.min(case((AlertRow.type == "at_risk", AlertRow.raised_at)))
    query = (
        select(
            AlertRow.episode_id,
            opened,
            func.min(case((AlertRow.type == "recovered", AlertRow.raised_at))),
            func.min(case((AlertRow.type == "churned", AlertRow.raised_at))),
            func.max(rank),
            func.max(AlertRow.site_id),
            func.max(AlertRow.arm),
            func.max(case((AlertRow.type == "at_risk", AlertRow.payload["policy"].as_string()))),
        )
        .where(*conds)
        .group_by(AlertRow.episode_id)
        .having(opened.is_not(None))
    )
    first: dict[str, tuple[datetime, str]] = {}
    actions = await session.execute(
        select(ActionRow.episode_id, ActionRow.action, func.min(ActionRow.taken_at))
        .where(ActionRow.tenant_id == tenant_id)
        .group_by(ActionRow.episode_id, ActionRow.action)
    )
    for episode_id, action, taken_at in actions:
        seen = first.get(episode_id)
        if seen is None or taken_at < seen[0]:
            first[episode_id] = (taken_at, action)
    out: list[Episode] = []
    outside = 0
    for eid, opened_at, back, cancelled, severity, site, arm, policy in await session.execute(
        query
    ):
        period = period_at(periods, opened_at)
        if period is None:
            outside += 1
            continue
        taken = first.get(eid)
        out.append(
            Episode(
                episode_id=eid,
                arm="control" if arm == CONTROL else "contact",
                opened_at=opened_at.timestamp(),
                returned_at=back.timestamp() if back is not None else None,
                cancelled_at=cancelled.timestamp() if cancelled is not None else None,
                severity=RANK_SEVERITY.get(int(severity or 0), "medium"),
                site=site,
                action=taken[1] if taken is not None else None,
                policy=policy,
                period=period.start.isoformat(),
                share=period.share,
            )
        )
    return out, periods, outside


async def read_uplift(
    session: AsyncSession,
    tenant_id: str,
    *,
    as_of: datetime,
    site_id: str | None = None,
    settle_days: float = DEFAULT_SETTLE_DAYS,
    stay_horizon_days: float = DEFAULT_STAY_HORIZON_DAYS,
) -> UpliftRead:
    eps, periods, outside = await episodes(session, tenant_id, site_id)
    return UpliftRead(
        report(
            eps,
            as_of.timestamp(),
            settle_days=settle_days,
            stay_horizon_days=stay_horizon_days,
        ),
        periods,
        outside,
    )
