"""Exit interviews and the leaver profile, on PostgreSQL through a real server."""

from __future__ import annotations

from sqlalchemy import func, select

from api.app import create_app
from records.tables import ExitInterview, ExitInterviewChange
from tests.api.leaver_support import at, checkpoint, leaver, visit
from tests.api.support import api, make_key


async def test_exit_interview_corrects_keeps_history_and_refuses_bad_input(
    settings, sessions, tenant
):
    events = leaver(tenant, "gone", "other") + [visit(tenant, "stays", d) for d in range(0, 60, 3)]
    await checkpoint(sessions, events, 61)
    key = await make_key(sessions, tenant)
    other = await make_key(sessions, tenant + "-x")
    async with api(create_app(settings, deliver=False), key) as c:
        got = (await c.get("/v1/members/gone/exit-interview")).json()
        assert got["source"] == "event" and got["reason"] == "other"
        r = await c.put("/v1/members/gone/exit-interview", json={"reason": "price", "note": "n"})
        assert r.status_code == 200, r.text
        r = await c.put(
            "/v1/members/gone/exit-interview", json={"reason": "moved", "contact_ok": True}
        )
        body = r.json()
        assert body["reason"] == "moved" and body["event_reason"] == "other"
        assert [h["new"]["reason"] for h in body["history"]] == ["price", "moved"]
        assert body["history"][1]["old"]["reason"] == "price"
        before = await _count(sessions, tenant)
        bad = await c.put("/v1/members/gone/exit-interview", json={"reason": "bored"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reason"
        never = await c.put("/v1/members/stays/exit-interview", json={"reason": "price"})
        assert never.status_code == 409 and never.json()["type"].endswith("not-a-leaver")
        unknown = await c.put("/v1/members/nobody/exit-interview", json={"reason": "price"})
        assert unknown.status_code == 404
        assert await _count(sessions, tenant) == before  # nothing changed
        theirs = await c.put(
            "/v1/members/gone/exit-interview",
            json={"reason": "price"},
            headers={"authorization": f"Bearer {other}"},
        )
        assert theirs.status_code == 404


async def _count(sessions, tenant):
    async with sessions() as s:
        a = await s.scalar(select(func.count()).where(ExitInterview.tenant_id == tenant))
        b = await s.scalar(select(func.count()).where(ExitInterviewChange.tenant_id == tenant))
    return a, b


async def test_profile_sets_leavers_beside_retained_and_says_when_too_few(
    settings, sessions, tenant
):
    events = []
    for i in range(25):  # 25 leavers: a sparse habit, then they go
        events += leaver(tenant, f"l{i}", "price" if i % 2 else "service", every=9, day=60)
    for i in range(8):  # 8 regulars: too few to mean anything
        events += [visit(tenant, f"r{i}", d) for d in range(0, 70, 3)]
    await checkpoint(sessions, events, 70)
    key = await make_key(sessions, tenant)
    async with api(create_app(settings, deliver=False), key) as c:
        r = await c.get("/v1/leavers/profile", params={"as_of": at(70).isoformat()})
        p = r.json()
    assert r.status_code == 200, r.text
    assert p["leavers"]["n"] == 25 and p["leavers"]["enough"] is True
    assert p["leavers"]["days_from_last_visit"]["median"] == 6.0  # last visit day 54, left 60
    assert p["leavers"]["visits_per_month_last_3_months"]["median"] > 2
    assert p["leavers"]["tenure_bands"]["0-3 months"] == 1.0
    assert {x["reason"]: x["n"] for x in p["by_reason"]} == {"price": 12, "service": 13}
    assert p["retained"]["n"] == 8 and p["retained"]["enough"] is False
    assert "too few" in p["retained"]["note"] and p["retained"]["tenure_bands"] is None
