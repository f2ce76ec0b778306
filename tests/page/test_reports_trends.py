"""The reports' trends per week, read from PostgreSQL: each episode counted once per measure
in its site's local ISO week, only the caller's tenant (and site), nothing outside the weeks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.page import views
from api.read import reports
from api.read.trends import Happening, WeekTrend, recent_weeks, shared_zone, weekly
from records.api_keys import Principal
from records.tables import ActionRow, AlertRow

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)  # a Saturday; its ISO week starts 30 Nov
ZONES = {"tlv": "Asia/Jerusalem", "ny": "America/New_York"}
MONDAYS = [date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_zone(site: str | None) -> ZoneInfo:
    return views.zone(ZONES.get(site or ""))


async def _club(sessions: async_sessionmaker[AsyncSession], tenant: str) -> None:
    """Episodes of ``tenant`` (and one of another tenant), alerts and actions by hand."""
    plan: list[tuple[str, str, str, list[tuple[str, str]], list[tuple[str, str]]]] = [
        # Opened Sunday 22:30 UTC = Monday 00:30 in Tel Aviv: that Monday's week. First
        # contacted Sunday 29 Nov 21:30 UTC (23:30 local, still the 23 Nov week); back 1 Dec.
        (
            tenant,
            "e1",
            "tlv",
            [("at_risk", "2026-11-22 22:30"), ("recovered", "2026-12-01 10:00")],
            [("call", "2026-11-29 21:30"), ("message", "2026-12-01 09:00")],
        ),
        # Opened Monday 30 Nov 03:00 UTC = Sunday 29 Nov 22:00 in New York: the 23 Nov week.
        (
            tenant,
            "e2",
            "ny",
            [
                ("at_risk", "2026-11-30 03:00"),
                ("escalated", "2026-12-02 10:00"),
                ("churned", "2026-12-03 10:00"),
            ],
            [],
        ),
        # Opened before the weeks shown, cancelled in the first one: only the cancellation.
        (
            tenant,
            "e3",
            "tlv",
            [("at_risk", "2026-10-01 10:00"), ("churned", "2026-11-10 10:00")],
            [],
        ),
        # Both closing alerts: a cancellation (as the outcomes count it), not a return.
        (
            tenant,
            "e4",
            "tlv",
            [
                ("at_risk", "2026-11-16 10:00"),
                ("recovered", "2026-11-17 10:00"),
                ("churned", "2026-11-18 10:00"),
            ],
            [],
        ),
        # Opened before the weeks, first contacted in them.
        (
            tenant,
            "e5",
            "tlv",
            [("at_risk", "2026-11-01 10:00")],
            [("incentive", "2026-11-18 10:00")],
        ),
        # Wholly before the weeks: nothing.
        (
            tenant,
            "e6",
            "tlv",
            [("at_risk", "2026-10-01 10:00"), ("recovered", "2026-10-05 10:00")],
            [],
        ),
        # Another club, the same weeks: never counted for this one.
        (
            f"{tenant}-other",
            "x1",
            "tlv",
            [("at_risk", "2026-11-24 10:00"), ("churned", "2026-11-25 10:00")],
            [("call", "2026-11-24 12:00")],
        ),
    ]
    async with sessions() as s:
        for owner, episode, site, alerts, actions in plan:
            episode_id = f"{tenant}-{episode}"
            first_alert = ""
            for kind, when in alerts:
                alert_id = str(uuid.uuid4())
                first_alert = first_alert or alert_id
                s.add(
                    AlertRow(
                        alert_id=alert_id,
                        tenant_id=owner,
                        member_id=f"m-{episode}",
                        site_id=site,
                        episode_id=episode_id,
                        type=kind,
                        severity="medium",
                        raised_at=at(when),
                        payload={},
                        created_at=at(when),
                    )
                )
            await s.flush()
            for kind, when in actions:
                s.add(
                    ActionRow(
                        id=str(uuid.uuid4()),
                        tenant_id=owner,
                        episode_id=episode_id,
                        alert_id=first_alert,
                        member_id=f"m-{episode}",
                        action=kind,
                        note=None,
                        taken_at=at(when),
                        taken_by="k",
                    )
                )
        await s.commit()


def rows(trends: list[WeekTrend]) -> list[tuple[str, int, int, int, int]]:
    return [(w.iso, w.at_risk, w.contacted, w.came_back, w.cancelled) for w in trends]


async def test_weekly_trends_count_each_episode_in_its_sites_local_week(sessions, tenant):
    await _club(sessions, tenant)
    owner = Principal("k", tenant, None, frozenset({"alerts:read"}))
    async with sessions() as s:
        trends = await reports.weekly_trends(s, owner, mondays=MONDAYS, zone_of=local_zone)
    assert [w.monday for w in trends] == MONDAYS
    assert rows(trends) == [
        ("2026-W46", 0, 0, 0, 1),  # e3 cancelled
        ("2026-W47", 1, 1, 0, 1),  # e4 opened and cancelled; e5 first contacted
        ("2026-W48", 2, 1, 0, 0),  # e1 and e2 opened (local Monday, local Sunday); e1 called
        ("2026-W49", 0, 0, 1, 1),  # e1 came back, e2 cancelled
    ]
    # In UTC the two episodes opened around midnight fall in other weeks: local time matters.
    async with sessions() as s:
        utc = await reports.weekly_trends(
            s, owner, mondays=MONDAYS, zone_of=lambda _: ZoneInfo("UTC")
        )
    assert [w.at_risk for w in utc] == [0, 2, 0, 1]


async def test_weekly_trends_keep_to_the_site_asked_for_and_to_a_site_bound_key(sessions, tenant):
    await _club(sessions, tenant)
    owner = Principal("k", tenant, None, frozenset({"alerts:read"}))
    bound = Principal("k", tenant, "ny", frozenset({"alerts:read"}))
    async with sessions() as s:
        tlv = await reports.weekly_trends(
            s, owner, mondays=MONDAYS, zone_of=local_zone, site_id="tlv"
        )
        ny = await reports.weekly_trends(s, bound, mondays=MONDAYS, zone_of=local_zone)
        # A site-bound key asking for another site still sees only its own.
        ny_asks_tlv = await reports.weekly_trends(
            s, bound, mondays=MONDAYS, zone_of=local_zone, site_id="tlv"
        )
        other = await reports.weekly_trends(
            s,
            Principal("k", f"{tenant}-other", None, frozenset({"alerts:read"})),
            mondays=MONDAYS,
            zone_of=local_zone,
        )
    assert rows(tlv) == [
        ("2026-W46", 0, 0, 0, 1),
        ("2026-W47", 1, 1, 0, 1),
        ("2026-W48", 1, 1, 0, 0),
        ("2026-W49", 0, 0, 1, 0),
    ]
    assert rows(ny) == [
        ("2026-W46", 0, 0, 0, 0),
        ("2026-W47", 0, 0, 0, 0),
        ("2026-W48", 1, 0, 0, 0),
        ("2026-W49", 0, 0, 0, 1),
    ]
    assert all(sum(r[1:]) == 0 for r in rows(ny_asks_tlv))
    # The other club sees its own episode only.
    assert [sum(r[1:]) for r in rows(other)] == [0, 0, 3, 0]


async def test_the_actions_summary_read_is_the_apis(sessions, tenant):
    """The page and /v1/actions/summary read the same function: scoped to the tenant."""
    await _club(sessions, tenant)
    owner = Principal("k", tenant, None, frozenset({"alerts:read"}))
    async with sessions() as s:
        summary = {r.action: r for r in await reports.action_summary(s, owner)}
    # e1 (call, message: came back), e5 (incentive: open); e2, e3, e4, e6 with no action.
    assert (summary["call"].episodes, summary["call"].recovered) == (1, 1)
    assert (summary["incentive"].episodes, summary["incentive"].still_open) == (1, 1)
    assert (summary["none"].episodes, summary["none"].churned, summary["none"].recovered) == (
        4,
        3,
        1,
    )


def test_weeks_run_monday_to_sunday_in_local_time():
    tlv = ZoneInfo("Asia/Jerusalem")
    assert recent_weeks(NOW, tlv, 3) == [date(2026, 11, 16), date(2026, 11, 23), date(2026, 11, 30)]
    # Sunday 29 Nov 22:30 UTC is already Monday in Tel Aviv: the new week.
    late = at("2026-11-29 22:30")
    assert recent_weeks(late, tlv, 1) == [date(2026, 11, 30)]
    assert recent_weeks(late, ZoneInfo("UTC"), 1) == [date(2026, 11, 23)]
    counted = weekly(
        [Happening("at_risk", late, "tlv"), Happening("at_risk", late, None)],
        local_zone,
        [date(2026, 11, 23), date(2026, 11, 30)],
    )
    assert [(w.at_risk, w.iso) for w in counted] == [(1, "2026-W48"), (1, "2026-W49")]
    assert shared_zone(["tlv"], ZONES) == "Asia/Jerusalem"
    assert shared_zone(["tlv", "ny"], ZONES) == "UTC" and shared_zone([], ZONES) == "UTC"
