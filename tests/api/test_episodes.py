"""Alert filters, an alert's episode history, actions and the summary of what works."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from api.app import create_app
from api.read.outcomes import EpisodeFacts, episode_status, summarise
from tests.api.support import api, episode, make_key, store_alerts

T = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_filters_by_status_severity_reason_and_until(settings, sessions, tenant, key):
    open_ = episode(tenant, "m-open", ["at_risk", "escalated"], start=T)
    back = episode(tenant, "m-back", ["at_risk", "recovered"], start=T, reason="visit_rate_drop")
    gone = episode(tenant, "m-gone", ["at_risk", "escalated", "churned"], start=T, site="s-2")
    await store_alerts(sessions, open_ + back + gone)
    async with api(create_app(settings, deliver=False), key) as client:

        async def ids(**params: Any) -> set[str]:
            r = await client.get("/v1/alerts", params=params)
            assert r.status_code == 200, r.text
            return {i["alert_id"] for i in r.json()["items"]}

        def of(*alerts) -> set[str]:
            return {a.alert_id for a in alerts}

        assert await ids(status="open") == of(*open_)
        assert await ids(status="recovered") == of(*back)
        assert await ids(status="churned") == of(*gone)
        assert await ids(severity="high") == of(open_[1], gone[1], gone[2])
        assert await ids(reason="visit_rate_drop") == of(back[0])
        assert await ids(reason="member_churned") == of(gone[2])
        assert await ids(reason="nope") == set()
        assert await ids(status="open", severity="medium") == of(open_[0])
        assert await ids(site_id="s-2", type="escalated") == of(gone[1])
        past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        assert await ids(until=past) == set()
        assert len(await ids(until=(datetime.now(UTC) + timedelta(hours=1)).isoformat())) == 7
        for bad in ({"status": "closed"}, {"severity": "urgent"}, {"until": "yesterday"}):
            assert (await client.get("/v1/alerts", params=bad)).status_code == 422, bad


async def test_alert_detail_with_episode_history_and_actions(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    alerts = episode(tenant, "m-1", ["at_risk", "escalated", "recovered"], start=T)
    await store_alerts(sessions, alerts)
    at_risk, escalated, recovered = alerts
    async with api(create_app(settings, deliver=False), key) as client:
        r = await client.post(
            f"/v1/alerts/{at_risk.alert_id}/actions",
            json={"action": "call", "note": "left a voicemail", "taken_at": T.isoformat()},
        )
        assert r.status_code == 201, r.text
        call = r.json()
        assert call["episode_id"] == at_risk.episode_id and call["member_id"] == "m-1"
        assert call["taken_by"] and call["note"] == "left a voicemail"
        # Through another alert of the same episode; taken_at defaults to now.
        r = await client.post(
            f"/v1/alerts/{escalated.alert_id}/actions", json={"action": "incentive"}
        )
        assert r.status_code == 201
        assert abs(datetime.fromisoformat(r.json()["taken_at"]) - datetime.now(UTC)) < timedelta(
            seconds=30
        )
        for bad in (
            {"action": "email"},
            {"action": "call", "extra": 1},
            {"action": "call", "note": "x" * 2001},
            {"action": "call", "taken_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
            {"action": "call", "taken_at": "2026-01-01T00:00:00"},  # no offset
        ):
            r = await client.post(f"/v1/alerts/{at_risk.alert_id}/actions", json=bad)
            assert r.status_code == 422, bad
            assert r.headers["content-type"] == "application/problem+json"
        missing = str(uuid.uuid4())
        r = await client.post(f"/v1/alerts/{missing}/actions", json={"action": "call"})
        assert r.status_code == 404

        detail = (await client.get(f"/v1/alerts/{escalated.alert_id}")).json()
        assert detail["alert_id"] == escalated.alert_id
        assert detail["reasons"] == [{"code": "member_escalated", "figures": {}}]
        ep = detail["episode"]
        assert ep["status"] == "recovered" and ep["severity"] == "high"
        assert [a["type"] for a in ep["alerts"]] == ["at_risk", "escalated", "recovered"]
        assert datetime.fromisoformat(ep["opened_at"]) == T
        assert datetime.fromisoformat(ep["closed_at"]) == recovered.raised_at
        assert [a["action"] for a in ep["actions"]] == ["call", "incentive"]
        assert ep["actions"][0] == call

        assert (await client.get(f"/v1/episodes/{at_risk.episode_id}")).json() == ep
        assert (await client.get(f"/v1/episodes/{missing}")).status_code == 404
        listed = (await client.get(f"/v1/alerts/{recovered.alert_id}/actions")).json()
        assert [a["id"] for a in listed] == [a["id"] for a in ep["actions"]]


async def test_summary_tells_which_actions_bring_members_back(settings, sessions, tenant, key):
    # call: 2 episodes, both back after 4 and 6 days; message: 1 churned, 1 still open;
    # none: 1 back. One episode got a call and a message.
    called = episode(tenant, "a", ["at_risk", "recovered"], start=T, step_days=10)
    called2 = episode(tenant, "b", ["at_risk", "recovered"], start=T, step_days=8)
    messaged = episode(tenant, "c", ["at_risk", "churned"], start=T)
    both = episode(tenant, "d", ["at_risk"], start=T)
    nothing = episode(tenant, "e", ["at_risk", "recovered"], start=T)
    late = episode(tenant, "f", ["at_risk"], start=T + timedelta(days=60))
    await store_alerts(sessions, called + called2 + messaged + both + nothing + late)
    async with api(create_app(settings, deliver=False), key) as client:

        async def act(alert, action, day):
            when = (T + timedelta(days=day)).isoformat()
            r = await client.post(
                f"/v1/alerts/{alert.alert_id}/actions", json={"action": action, "taken_at": when}
            )
            assert r.status_code == 201, r.text

        await act(called[0], "call", 6)  # back on day 10: 4 days
        await act(called[0], "call", 8)  # a second call: the first counts
        await act(called2[0], "call", 2)  # back on day 8: 6 days
        await act(messaged[0], "message", 1)
        await act(both[0], "message", 1)
        await act(both[0], "call", 2)

        until = (T + timedelta(days=30)).isoformat()
        r = await client.get("/v1/actions/summary", params={"until": until})
        assert r.status_code == 200, r.text
        rows = {row["action"]: row for row in r.json()["items"]}
        assert rows["call"] == {
            "action": "call",
            "episodes": 3,
            "recovered": 2,
            "churned": 0,
            "still_open": 1,
            "recovery_rate": 1.0,
            "median_days_to_return": 5.0,
        }
        assert rows["message"] | {} == {
            "action": "message",
            "episodes": 2,
            "recovered": 0,
            "churned": 1,
            "still_open": 1,
            "recovery_rate": 0.0,
            "median_days_to_return": None,
        }
        assert rows["none"]["episodes"] == 1 and rows["none"]["recovered"] == 1
        assert rows["incentive"]["episodes"] == 0
        # The late episode counts once the window includes it.
        r = await client.get("/v1/actions/summary")
        assert {row["action"]: row for row in r.json()["items"]}["none"]["episodes"] == 2
        r = await client.get("/v1/actions/summary", params={"site_id": "elsewhere"})
        assert all(row["episodes"] == 0 for row in r.json()["items"])


def test_outcome_rules():
    assert episode_status(["at_risk"]) == "open"
    assert episode_status(["at_risk", "escalated", "recovered"]) == "recovered"
    assert episode_status(["at_risk", "recovered", "churned"]) == "churned"
    stats = {
        s.action: s
        for s in summarise(
            [
                EpisodeFacts("1", "recovered", T, {"call": T + timedelta(days=1)}),  # late record
                EpisodeFacts("2", "open", None, {}),
            ]
        )
    }
    assert stats["call"].median_days_to_return == 0.0
    assert stats["none"].still_open == 1 and stats["none"].recovery_rate is None
