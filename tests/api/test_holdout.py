"""The holdout (issue 22) over HTTP with PostgreSQL: a manager sets and stops it, every change
is a period, control episodes are stored and listed as held back but never reach a webhook
receiver, the alerts topic (the local broker) nor the contact lists, and tenants stay apart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.app import create_app
from detector.core import ManualClock
from detector.core.state import MemberState
from detector.runner import DetectorRunner
from ingest.app import create_app as ingest_app
from plumbing.database import create_engine, session_factory
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from records import holdout
from records.profiles import ProfileIn, set_profile
from records.tables import AlertRow, ApiKey, HoldoutPeriodRow, WebhookDelivery
from schemas import Alert
from schemas.holdout import in_control
from schemas.ids import departure_id
from tests.api import leaver_support as leavers
from tests.api.support import Receiver, api, episode, make_key, serve, store_alerts, until
from tests.api.test_forget import _everywhere
from tests.api.test_members import member, store_states
from tests.page.support import login
from tests.page.test_http import browser_like, member_ids
from tests.support import T0, pipeline_settings, read_topic
from tests.test_end_to_end import gate

Sessions = async_sessionmaker[AsyncSession]
WHY = "held back to measure whether reaching out helps"


@pytest_asyncio.fixture
async def own(settings, fresh_pg_url) -> AsyncIterator[tuple[Settings, Sessions, AsyncEngine]]:
    """A database of the test's own: alerts stored and never fanned out here would otherwise
    stay in the shared database's outbox, ahead of other tests' alerts."""
    engine = create_engine(fresh_pg_url)
    try:
        yield (
            settings.model_copy(update={"database_url": fresh_pg_url}),
            session_factory(engine),
            engine,
        )
    finally:
        await engine.dispose()


async def _set(sessions, tenant: str, share: float, since: datetime) -> None:
    async with sessions() as s:
        await holdout.set_share(s, tenant, share, by="test", reason="pilot", now=since)
        await s.commit()


async def _stop(sessions, tenant: str, at: datetime) -> None:
    async with sessions() as s:
        await holdout.stop(s, tenant, by="test", now=at)
        await s.commit()


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


async def test_a_manager_sets_changes_and_stops_it_and_every_change_is_a_period(
    settings, sessions, tenant
):
    admin = await make_key(sessions, tenant, scopes=("admin",))
    reader = await make_key(sessions, tenant, scopes=("alerts:read",))
    site_admin = await make_key(sessions, tenant, scopes=("admin",), site_id="north")
    other = f"{tenant}-other"
    other_admin = await make_key(sessions, other, scopes=("admin",))
    app = create_app(settings, deliver=False)
    async with api(app, admin) as client:
        off = (await client.get("/v1/holdout")).json()
        assert off == {"active": False, "share": 0.0, "since": None, "changed": None, "periods": []}

        r = await client.put("/v1/holdout", json={"share": 0.1, "reason": "pilot at north"})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["active"] and first["share"] == 0.1 and first["changed"] is True
        [period] = first["periods"]
        assert period["end"] is None and period["reason"] == "pilot at north"
        async with sessions() as s:
            admin_id = await s.scalar(
                select(ApiKey.id).where(ApiKey.tenant_id == tenant, ApiKey.site_id.is_(None))
            )
        assert period["set_by"] == admin_id

        same = (await client.put("/v1/holdout", json={"share": 0.1})).json()
        assert same["changed"] is False and len(same["periods"]) == 1

        second = (await client.put("/v1/holdout", json={"share": 0.2})).json()
        assert second["share"] == 0.2 and [p["share"] for p in second["periods"]] == [0.2, 0.1]
        newer, older = second["periods"]
        assert older["end"] == newer["start"] and newer["end"] is None

        for bad in ({"share": 0.6}, {"share": -0.1}, {"share": "ten"}, {}, {"share": 0.1, "x": 1}):
            body = _problem(await client.put("/v1/holdout", json=bad), 422)
            assert body["errors"], body
        assert (await client.get("/v1/holdout")).json()["share"] == 0.2

        for key in (reader, site_admin):
            r = await client.put(
                "/v1/holdout", json={"share": 0.3}, headers={"authorization": f"Bearer {key}"}
            )
            _problem(r, 403)
        r = await client.get("/v1/holdout", headers={"authorization": f"Bearer {reader}"})
        assert r.status_code == 200 and r.json()["share"] == 0.2

        # Another tenant sees and changes only its own.
        as_other = {"authorization": f"Bearer {other_admin}"}
        assert (await client.get("/v1/holdout", headers=as_other)).json()["active"] is False
        r = await client.put("/v1/holdout", json={"share": 0.5}, headers=as_other)
        assert r.json()["share"] == 0.5
        assert (await client.get("/v1/holdout")).json()["share"] == 0.2

        stopped = (await client.put("/v1/holdout", json={"share": 0, "reason": "enough"})).json()
        assert stopped["active"] is False and stopped["share"] == 0.0 and stopped["changed"]
        assert all(p["end"] is not None for p in stopped["periods"])
        assert stopped["periods"][0]["reason"] == "stopped: enough"
        again = (await client.put("/v1/holdout", json={"share": 0})).json()
        assert again["changed"] is False
    async with sessions() as s:
        rows = list(
            await s.scalars(select(HoldoutPeriodRow).where(HoldoutPeriodRow.tenant_id == tenant))
        )
    assert sorted(r.share for r in rows) == [0.1, 0.2] and all(r.end for r in rows)


def _episodes(tenant: str, n: int, start: datetime, prefix: str = "m") -> list[list[Alert]]:
    return [
        episode(tenant, f"{prefix}-{i:02d}", ["at_risk", "escalated"], start=start, step_days=0.2)
        for i in range(n)
    ]


async def test_control_episodes_never_reach_a_webhook_and_keep_their_arm(
    fast_settings, sessions, tenant, key, receiver
):
    now = datetime.now(UTC)
    since = now - timedelta(days=3)
    await _set(sessions, tenant, 0.5, since)
    drawn = _episodes(tenant, 40, now - timedelta(days=2))
    # Opened before the holdout started: contacted whatever the draw says.
    before = _episodes(tenant, 6, since - timedelta(days=1), prefix="early")
    control = {a.episode_id for ep in drawn for a in ep if in_control(a.episode_id, 0.5)}
    assert 0 < len(control) < 40
    async with api(create_app(fast_settings), key) as client:
        r = await client.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["at_risk", "escalated"]}
        )
        assert r.status_code == 201, r.text
        await store_alerts(sessions, [ep[0] for ep in drawn + before])
        # Stopped before the episodes' next alerts: an episode's arm never changes.
        await _stop(sessions, tenant, now - timedelta(days=1))
        await store_alerts(sessions, [ep[1] for ep in drawn + before])
        every = [a for ep in drawn + before for a in ep]
        contact = [a for a in every if a.episode_id not in control]

        async def all_sent() -> bool:
            async with sessions() as s:
                unsent = await s.scalar(
                    select(AlertRow.alert_id).where(
                        AlertRow.tenant_id == tenant, AlertRow.fanned_out.is_(False)
                    )
                )
            return unsent is None and len(receiver.requests) >= len(contact)

        await until(all_sent, within=20)
        received = [json.loads(r.body) for r in receiver.requests]
        assert sorted(e["id"] for e in received) == sorted(a.alert_id for a in contact)
        assert {e["data"]["arm"] for e in received} == {"contact"}

        async with sessions() as s:
            stored = dict(
                (
                    await s.execute(
                        select(AlertRow.alert_id, AlertRow.arm).where(AlertRow.tenant_id == tenant)
                    )
                ).all()
            )
            queued = set(
                await s.scalars(
                    select(WebhookDelivery.alert_id).where(WebhookDelivery.tenant_id == tenant)
                )
            )
        assert stored == {
            a.alert_id: "control" if a.episode_id in control else "contact" for a in every
        }
        assert queued == {a.alert_id for a in contact}

        # Stored and scored like any other: listed, and said plainly why.
        listed = (await client.get("/v1/alerts", params={"limit": 500})).json()["items"]
        assert len(listed) == len(every)
        assert {a["alert_id"] for a in listed if a["arm"] == "control"} == {
            a.alert_id for a in every if a.episode_id in control
        }
        eid = sorted(control)[0]
        ep = (await client.get(f"/v1/episodes/{eid}")).json()
        assert ep["arm"] == "control" and len(ep["alerts"]) == 2
        assert ep["holdout"]["share"] == 0.5
        assert ep["holdout"]["why"] == (
            f"{WHY}; 50 % of new episodes since {since.day} {since:%b %Y}"
        )
        contacted = (await client.get(f"/v1/episodes/{before[0][0].episode_id}")).json()
        assert contacted["arm"] == "contact" and contacted["holdout"] is None


async def test_control_alerts_never_reach_the_alerts_topic(settings, fresh_pg_url, tenant):
    s = settings.model_copy(update={"database_url": fresh_pg_url, "alerts_relay": True})
    engine = create_engine(fresh_pg_url)
    sessions = session_factory(engine)
    try:
        now = datetime.now(UTC)
        await _set(sessions, tenant, 0.3, now - timedelta(days=3))
        alerts = [a for ep in _episodes(tenant, 60, now - timedelta(days=2)) for a in ep]
        contact = [a for a in alerts if not in_control(a.episode_id, 0.3)]
        assert 0 < len(contact) < len(alerts)
        await store_alerts(sessions, alerts)
        key = await make_key(sessions, tenant)

        async def all_relayed() -> bool:
            async with sessions() as db:
                left = await db.scalar(
                    select(AlertRow.alert_id).where(AlertRow.relayed_at.is_(None))
                )
            return left is None

        async with api(create_app(s), key):
            await until(all_relayed, within=15)
        records = await read_topic(s, s.alerts_topic, len(alerts) + 1, timeout=3)
        values = [json.loads(r.value) for r in records]
        assert sorted(v["alert_id"] for v in values) == sorted(a.alert_id for a in contact)
        assert {v["arm"] for v in values} == {"contact"}
    finally:
        await engine.dispose()


async def test_control_members_are_off_the_contact_lists_and_said_why(settings, sessions, tenant):
    now = datetime.now(UTC)
    since = now - timedelta(days=30)
    await _set(sessions, tenant, 0.5, since)
    states: list[MemberState] = []
    alerts: list[Alert] = []
    for i in range(24):
        st = member(tenant, f"p{i:02d}", absent_days=20 + i, severity="medium")
        [opening] = episode(tenant, st.member_id, ["at_risk"], start=now - timedelta(days=5))
        st.episode_id = opening.episode_id
        states.append(st)
        alerts.append(opening)
    await store_states(sessions, states)
    await store_alerts(sessions, alerts)
    held = sorted(a.member_id for a in alerts if in_control(a.episode_id, 0.5))
    reached = sorted(a.member_id for a in alerts if not in_control(a.episode_id, 0.5))
    assert held and reached
    async with sessions() as s:
        for m in (held[0], reached[0]):
            await set_profile(s, tenant, m, ProfileIn(display_name=m, phone="+15550100"))
        await s.commit()
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with api(create_app(settings, deliver=False), key) as client:
        listed = (await client.get("/v1/members/at-risk")).json()
        assert listed["arm"] == "contact"
        assert sorted(m["member_id"] for m in listed["items"]) == reached
        assert all(m["holdout"] is None for m in listed["items"])
        kept = (await client.get("/v1/members/at-risk", params={"arm": "control"})).json()
        assert sorted(m["member_id"] for m in kept["items"]) == held
        one = (await client.get(f"/v1/members/{held[0]}")).json()
        assert one["open_episode"]["arm"] == "control"
        assert one["holdout"]["why"] == (
            f"{WHY}; 50 % of new episodes since {since.day} {since:%b %Y}"
        )
        other = (await client.get(f"/v1/members/{reached[0]}")).json()
        assert other["open_episode"]["arm"] == "contact" and other["holdout"] is None

    async with browser_like(settings) as page:
        await login(page, key)
        work = (await page.get("/staff/")).text
        assert sorted(member_ids("todo-list", work)) == reached
        assert f"Control group on: 50 % of new episodes since {since.day} {since:%b %Y}" in work
        csv_rows = (await page.get("/staff/export.csv")).text
        assert not any(m in csv_rows for m in held)
        shown = (await page.get(f"/staff/members/{held[0]}")).text
        assert "In the control group: held back to measure whether reaching out helps" in shown
        assert "(50 % of new episodes since" in shown
        assert "tel:" not in shown and 'class="ack"' not in shown
        normal = (await page.get(f"/staff/members/{reached[0]}")).text
        assert "control group" not in normal and "tel:+15550100" in normal


async def test_erasure_leaves_nothing_of_a_control_member(own, tenant):
    settings, sessions, engine = own
    now = datetime.now(UTC)
    await _set(sessions, tenant, 0.5, now - timedelta(days=3))
    eps = _episodes(tenant, 12, now - timedelta(days=2), prefix="gone-7x")
    gone = next(ep for ep in eps if in_control(ep[0].episode_id, 0.5))
    await store_alerts(sessions, [a for ep in eps for a in ep])
    admin = await make_key(sessions, tenant, scopes=("admin",))
    async with api(create_app(settings, deliver=False), admin) as client:
        r = await client.delete(f"/v1/members/{gone[0].member_id}")
        assert r.status_code == 200, r.text
        assert (await client.get(f"/v1/episodes/{gone[0].episode_id}")).status_code == 404
        assert (await client.get("/v1/holdout")).json()["active"] is True
    assert await _everywhere(engine, gone[0].member_id) == []
    assert await _everywhere(engine, gone[0].episode_id) == []


async def test_the_live_detector_draws_each_episode_and_only_contact_ones_are_sent(
    settings, fresh_pg_url, tenant
):
    """All real: HTTP → ingest → the local broker → the detector (its checkpoint fixes each
    episode's arm) → PostgreSQL → api → a CRM's HTTP endpoint, which gets the contact
    episodes only; the control ones are stored as such."""
    s = pipeline_settings(settings, fresh_pg_url)
    await ensure_topics(s)
    engine = create_engine(s.database_url)
    sessions = session_factory(engine)
    key = await make_key(sessions, tenant, scopes=("admin",))
    await _set(sessions, tenant, 0.5, T0)
    clock = ManualClock(T0.timestamp())
    runner = DetectorRunner(s, sessions, clock=clock)
    receiver = Receiver()
    members = [f"mem-{i:02d}" for i in range(16)]
    detector = asyncio.create_task(runner.run())
    try:
        async with (
            serve(ingest_app(s)) as ingest,
            serve(create_app(s)) as base,
            serve(receiver.app()) as crm,
            httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=10) as http,
        ):
            hook = await http.post(f"{base}/v1/webhooks", json={"url": f"{crm}/hook"})
            assert hook.status_code == 201, hook.text

            async def ingest_ready() -> bool:
                return (await http.get(f"{ingest}/readyz")).status_code == 200

            await until(ingest_ready, within=15)
            batch = [gate(tenant, m, 0) for m in members] + [gate(tenant, "keeper", 46)]
            r = await http.post(f"{ingest}/v1/events/batch", json={"events": batch})
            assert r.status_code == 202, r.text

            async def known() -> bool:
                return runner.members == len(members) + 1

            await until(known, within=30)
            clock.set((T0 + timedelta(days=46)).timestamp())

            async def stored() -> dict[str, tuple[str, str]]:
                async with sessions() as db:
                    rows = await db.execute(
                        select(AlertRow.member_id, AlertRow.episode_id, AlertRow.arm).where(
                            AlertRow.tenant_id == tenant
                        )
                    )
                    found = {m: (e, arm) for m, e, arm in rows}
                return found if len(found) == len(members) else {}

            arms = await until(stored, within=30)
            contact = {m for m, (e, arm) in arms.items() if arm == "contact"}
            assert {m for m, (e, arm) in arms.items() if arm == "control"} == {
                m for m, (e, _) in arms.items() if in_control(e, 0.5)
            }
            assert contact and len(contact) < len(members)

            async def sent() -> list[Any]:
                return receiver.requests if len(receiver.requests) >= len(contact) else []

            await until(sent, within=15)
            await asyncio.sleep(0.5)  # time for any wrongly queued control alert to arrive
            got = [json.loads(r.body)["data"] for r in receiver.requests]
            assert sorted(d["member_id"] for d in got) == sorted(contact)
            assert {d["arm"] for d in got} == {"contact"}
            async with sessions() as db:
                queued = await db.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .join(AlertRow, AlertRow.alert_id == WebhookDelivery.alert_id)
                    .where(AlertRow.arm == "control")
                )
            assert queued == 0
    finally:
        runner.stop()
        await asyncio.wait_for(detector, 15)
        await engine.dispose()


async def test_win_back_episodes_are_drawn_the_same_and_held_back_from_the_candidates(own, tenant):
    """A former member's win-back episode (one per cancellation) is drawn at its due time:
    the candidates list leaves the control ones out before the detector raised anything, and
    the ``win_back_due`` alerts it raises later carry the same arm (never sent)."""
    settings, sessions, _ = own
    await _set(sessions, tenant, 0.5, leavers.at(0))
    names = [f"lv-{i:02d}" for i in range(16)]
    events = [e for m in names for e in leavers.leaver(tenant, m, "price")]
    cancelled = leavers.at(60).timestamp()
    held = {m for m in names if in_control(departure_id(tenant, m, cancelled), 0.5)}
    assert held and held != set(names)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    as_of = {"as_of": leavers.at(120).isoformat()}
    async with api(create_app(settings, deliver=False), key) as client:
        d, _ = await leavers.checkpoint(sessions, events, 70)  # nothing due yet
        before = (await client.get("/v1/winback/candidates", params=as_of)).json()["items"]
        assert sorted(c["member_id"] for c in before) == sorted(set(names) - held)
        assert {c["arm"] for c in before} == {"contact"}
        _, cp = await leavers.checkpoint(sessions, [], 120, detector=d)
        assert {a.member_id for a in cp.alerts if a.type == "win_back_due"} == set(names)
        after = (await client.get("/v1/winback/candidates", params=as_of)).json()["items"]
        assert after == before
        kept = await client.get("/v1/winback/candidates", params=as_of | {"arm": "control"})
        assert sorted(c["member_id"] for c in kept.json()["items"]) == sorted(held)
    async with sessions() as s:
        rows = (
            await s.execute(
                select(AlertRow.member_id, AlertRow.arm, AlertRow.fanned_out).where(
                    AlertRow.tenant_id == tenant, AlertRow.type == "win_back_due"
                )
            )
        ).all()
    assert {m: arm for m, arm, _ in rows} == {
        m: "control" if m in held else "contact" for m in names
    }
    assert {m for m, _, sent in rows if sent} == held  # stored as sent: never fanned out
