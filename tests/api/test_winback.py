"""Win-back plan, candidates, consent and the summary, on PostgreSQL through a real server."""

from __future__ import annotations

from sqlalchemy import select

from api.app import create_app
from records.tables import AlertRow
from schemas import MembershipEvent
from tests.api.leaver_support import at, checkpoint, leaver
from tests.api.support import api, make_key

ADMIN = ("alerts:read", "admin")


async def test_candidates_consent_and_winback_alerts(settings, sessions, tenant):
    events = (
        leaver(tenant, "price-often", "price", every=2)
        + leaver(tenant, "price-rare", "price", every=15)
        + leaver(tenant, "service", "service")
        + leaver(tenant, "declined", "price")
        + leaver(tenant, "moved", "moved")
    )
    key = await make_key(sessions, tenant, ADMIN)
    async with api(create_app(settings, deliver=False), key) as c:
        # Decline contact before the win-back is due: the checkpoint must not store its alert.
        d, _ = await checkpoint(sessions, events, 61)
        r = await c.put(
            "/v1/members/declined/exit-interview", json={"reason": "price", "contact_ok": False}
        )
        assert r.status_code == 200
        _, cp = await checkpoint(sessions, [], 400, detector=d)
        raised = {a.member_id for a in cp.alerts if a.type == "win_back_due"}
        assert raised == {"price-often", "price-rare", "declined", "moved"}
        async with sessions() as s:
            stored = set(
                await s.scalars(
                    select(AlertRow.member_id).where(
                        AlertRow.tenant_id == tenant, AlertRow.type == "win_back_due"
                    )
                )
            )
        assert stored == {"price-often", "price-rare"}  # declined, and moved without consent
        r = await c.get("/v1/winback/candidates", params={"as_of": at(400).isoformat()})
        items = r.json()["items"]
        assert [i["member_id"] for i in items] == ["price-often", "price-rare"]
        assert items[0]["score"] > items[1]["score"]
        # The cause of service leavers is addressed: they become candidates.
        bad = await c.put("/v1/winback/plan", json={"boredom": {"after_days": 1}})
        assert bad.status_code == 422
        ok = await c.put(
            "/v1/winback/plan",
            json={
                "service": {
                    "after_days": 30,
                    "needs_cause_addressed": True,
                    "cause_addressed": True,
                }
            },
        )
        assert ok.status_code == 200 and ok.json()["stored"] is True
        assert ok.json()["rules"]["price"]["after_days"] == 25  # defaults kept
        r = await c.get("/v1/winback/candidates", params={"as_of": at(400).isoformat()})
        assert "service" in [i["member_id"] for i in r.json()["items"]]
        reader = await make_key(sessions, tenant)
        denied = await c.put(
            "/v1/winback/plan", json={}, headers={"authorization": f"Bearer {reader}"}
        )
        assert denied.status_code == 403


async def test_opt_out_later_stops_pending_deliveries_and_summary_counts_won_back(
    settings, sessions, tenant, receiver
):
    key = await make_key(sessions, tenant, ("alerts:read", "webhooks:manage", "admin"))
    app = create_app(settings, deliver=False)
    async with api(app, key) as c:
        hook = await c.post(
            "/v1/webhooks", json={"url": receiver.url, "event_types": ["win_back_due"]}
        )
        assert hook.status_code == 201, hook.text
        events = leaver(tenant, "a", "price") + leaver(tenant, "b", "price")
        d, _ = await checkpoint(sessions, events, 90)
        dispatcher = app.state.dispatcher
        assert await dispatcher.fan_out() >= 1
        r = await c.put(
            "/v1/members/a/exit-interview", json={"reason": "price", "contact_ok": False}
        )
        assert r.json()["withdrawn_deliveries"] == 1
        await dispatcher.deliver_due()
        sent = {req.body for req in receiver.requests}
        assert not any(b'"member_id":"a"' in b for b in sent)
        assert any(b'"member_id":"b"' in b for b in sent)
        # b rejoins: a new tenure, the win-back won, both tenures kept.
        rejoin = MembershipEvent(
            event_id="b-rejoin",
            tenant_id=tenant,
            member_id="b",
            kind="joined",
            occurred_at=at(120),
        )
        await checkpoint(sessions, [rejoin], 121, detector=d)
        s = (await c.get("/v1/winback/summary", params={"as_of": at(150).isoformat()})).json()
        price = next(i for i in s["items"] if i["reason"] == "price")
        assert price == {
            "reason": "price",
            "leavers": 2,
            "contacted": 1,
            "won_back": 1,
            "first_tenure_days_median": 60.0,
            "second_tenure_days_median": 30.0,
            "second_tenure_ongoing": 1,
        }
