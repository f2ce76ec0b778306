"""Read layer of the uplift report (issue 22): a tenant's episodes with their arm, as the pure
report (``api.uplift_stats``) takes them. Shared by ``/v1/uplift``, ``lapse uplift`` and
the manager's page, so all three give the same figures.

An episode is the alerts sharing an ``episode_id`` that began with ``at_risk`` (win-back
episodes have their own report): opened at its first alert, came back at its ``recovered``
alert, cancelled at its ``churned`` alert; the severity, policy and arm its opening alert
carried. The severity is the one it opened with, not the highest it reached: escalating
depends on whether contact worked (a member brought back never goes high), so groups by
the highest severity would compare contacted members with unlike controls. Only episodes
opened inside one of the tenant's holdout periods count (``holdout_periods``): before the
first period nobody was held back, so there is no control group to compare with.
The first action staff took in it comes from ``actions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.uplift_stats import (
    DEFAULT_SETTLE_DAYS,
    DEFAULT_STAY_HORIZON_DAYS,
    Comparison,
    Episode,
    UpliftReport,
    report,
)
from records.holdout import periods_of
from records.tables import ActionRow, AlertRow
from schemas.holdout import CONTROL, HoldoutPeriod, period_at

SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}
RANK_SEVERITY = {v: k for k, v in SEVERITY_RANK.items()}


@dataclass(frozen=True, slots=True)
class UpliftRead:
    """The report, and what it left out: episodes opened outside every holdout period."""

    report: UpliftReport
    periods: list[HoldoutPeriod]
    outside: int


async def episodes(
    session: AsyncSession, tenant_id: str, site_id: str | None = None
) -> tuple[list[Episode], list[HoldoutPeriod], int]:
    """The tenant's at-risk episodes inside a holdout period, the periods, and how many
    episodes fell outside every period."""
    periods = (await periods_of(session, [tenant_id])).get(tenant_id, [])
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
            func.max(case((AlertRow.type == "at_risk", rank))),
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


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f} %"


def _points(c: Comparison) -> str:
    if c.difference is None or c.interval is None:
        return "—"
    return (
        f"{c.difference * 100:+.1f} ({c.interval.low * 100:+.1f} to {c.interval.high * 100:+.1f})"
    )


def text_report(read: UpliftRead) -> str:
    """The report in plain words and a table (``lapse uplift``, ``bench/uplift_bench.py``)."""
    r = read.report
    o = r.overall
    out = [
        o.verdict,
        "",
        f"settled episodes: {r.settled} (came back, cancelled or {r.settle_days:g} days "
        f"passed); still within {r.settle_days:g} days: {r.pending}; opened while no holdout "
        f"was in force: {read.outside}",
    ]
    for p in read.periods:
        end = p.end.isoformat() if p.end is not None else "now"
        out.append(f"holdout {p.share:.0%} from {p.start.isoformat()} to {end}")
    if o.cancelled_difference is not None and o.cancelled_interval is not None:
        out.append(
            f"cancelled within {r.settle_days:g} days: contacted {_pct(o.contact.cancelled_share)}"
            f", control {_pct(o.control.cancelled_share)} (difference "
            f"{o.cancelled_difference * 100:+.1f} points, {o.cancelled_interval.low * 100:+.1f}"
            f" to {o.cancelled_interval.high * 100:+.1f})"
        )
    if o.months_kept_per_100 is not None:
        out.append(
            f"revenue kept: about {o.months_kept_per_100:.0f} member-months per 100 contacted "
            "episodes (months members stayed, contacted minus control, up to a year)"
        )
    out += [
        "",
        f"{'group':<28} {'contacted':>10} {'back':>8} {'control':>8} {'back':>8}  "
        "difference in points (95 %)",
    ]
    sections = (
        ("", [o]),
        ("period ", r.by_period),
        ("severity ", r.by_severity),
        ("site ", r.by_site),
        ("action* ", r.by_action),
        ("policy ", r.by_policy),
    )
    for prefix, rows in sections:
        for c in rows:
            out.append(
                f"{(prefix + (c.group or '—'))[:28]:<28} {c.contact.episodes:>10} "
                f"{_pct(c.contact.back_share):>8} {c.control.episodes:>8} "
                f"{_pct(c.control.back_share):>8}  {_points(c)}"
            )
    out += [
        "",
        "* per action: contacted episodes with that action against the whole control group; "
        "staff choose the action, so only the arms are drawn at random.",
        f"method: {r.method}",
    ]
    return "\n".join(out)
