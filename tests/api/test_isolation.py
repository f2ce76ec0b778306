"""Tenant isolation on every route of the api, enumerated from the app itself.

Tenant A owns an alert (with its episode and an action), a member, a subscription and a
delivery; a key of tenant B calls every route with A's ids and must get 404, or an empty
answer from list routes. A route added to the app without a line in ``CALLS`` fails
``test_every_route_is_covered``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from api.app import create_app, delivery_client
from api.delivery import Dispatcher
from detector.core.state import MemberState
from plumbing.settings import Settings
from records import holdout
from records.directory import set_external_id
from records.profiles import ProfileIn, set_profile
from records.tables import (
    ActionRow,
    ExternalId,
    HoldoutPeriodRow,
    MemberProfile,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.api.support import api, episode, make_key, store_alerts, until
from tests.api.test_members import store_states
from tests.page.test_admin import ISOLATION_CASES as ADMIN_ISOLATION_CASES
from tests.page.test_http import ISOLATION_CASES as PAGE_ISOLATION_CASES
from tests.page.test_http import NO_TENANT_DATA as PAGE_NO_TENANT_DATA

# Routes that hold no tenant's data (no key needed or none read).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/assets/{name}"),  # Swagger UI's own files, served locally
}


@dataclass(frozen=True)
class Call:
    path: str  # formatted with A's ids
    # "404"; "empty": 200 with no items; "not_a": 200 naming nothing of A's; "zero": no
    # episodes counted; "own": acted on B's own object (201/202); "forbidden": 403.
    expect: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None


SINCE = "2000-01-01T00:00:00+00:00"
CALLS: dict[tuple[str, str], list[Call]] = {
    ("GET", "/v1/alerts"): [
        Call("/v1/alerts", "empty"),
        Call("/v1/alerts?member_id={member}", "empty"),
    ],
    ("GET", "/v1/alerts/{alert_id}"): [Call("/v1/alerts/{alert}", "404")],
    ("POST", "/v1/alerts/{alert_id}/actions"): [
        Call("/v1/alerts/{alert}/actions", "404", {"action": "call", "note": "B was here"})
    ],
    ("GET", "/v1/alerts/{alert_id}/actions"): [Call("/v1/alerts/{alert}/actions", "404")],
    ("GET", "/v1/episodes/{episode_id}"): [Call("/v1/episodes/{episode}", "404")],
    ("GET", "/v1/actions/summary"): [Call("/v1/actions/summary", "zero")],
    ("GET", "/v1/members/at-risk"): [
        Call("/v1/members/at-risk", "empty"),
        Call("/v1/members/at-risk", "empty", params={"site_id": "site-1"}),
    ],
    ("GET", "/v1/members/{member_id}"): [Call("/v1/members/{member}", "404")],
    ("POST", "/v1/webhooks"): [Call("/v1/webhooks", "own", {"url": "{url}"})],
    ("GET", "/v1/webhooks"): [Call("/v1/webhooks", "not_a")],
    ("GET", "/v1/webhooks/{webhook_id}"): [Call("/v1/webhooks/{wid}", "404")],
    ("PATCH", "/v1/webhooks/{webhook_id}"): [
        Call("/v1/webhooks/{wid}", "404", {"enabled": False, "url": "{url}"})
    ],
    ("DELETE", "/v1/webhooks/{webhook_id}"): [Call("/v1/webhooks/{wid}", "404")],
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): [
        Call("/v1/webhooks/{wid}/deliveries", "404"),
        # B's own subscription cannot reach A's deliveries either.
        Call("/v1/webhooks/{b_wid}/deliveries", "empty", params={"alert_id": "{alert}"}),
    ],
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): [
        Call("/v1/webhooks/{wid}/deliveries/{did}/retry", "404"),
        Call("/v1/webhooks/{b_wid}/deliveries/{did}/retry", "404"),
    ],
    ("POST", "/v1/webhooks/{webhook_id}/test"): [Call("/v1/webhooks/{wid}/test", "404")],
    ("POST", "/v1/webhooks/{webhook_id}/rotate-secret"): [
        Call("/v1/webhooks/{wid}/rotate-secret", "404")
    ],
    ("POST", "/v1/webhooks/{webhook_id}/recover"): [
        Call("/v1/webhooks/{wid}/recover", "404", params={"since": SINCE}),
        Call("/v1/webhooks/{b_wid}/recover", "own", params={"since": SINCE}),
    ],
    # After they leave (docs/after-they-leave.md); B's key has no admin scope here.
    ("PUT", "/v1/members/{member_id}/exit-interview"): [
        Call("/v1/members/{member}/exit-interview", "404", {"reason": "price"})
    ],
    ("GET", "/v1/members/{member_id}/exit-interview"): [
        Call("/v1/members/{member}/exit-interview", "404")
    ],
    ("GET", "/v1/leavers/profile"): [Call("/v1/leavers/profile", "not_a")],
    ("GET", "/v1/winback/plan"): [Call("/v1/winback/plan", "not_a")],
    ("PUT", "/v1/winback/plan"): [Call("/v1/winback/plan", "forbidden", {})],
    ("GET", "/v1/winback/candidates"): [Call("/v1/winback/candidates", "empty")],
    ("GET", "/v1/winback/summary"): [Call("/v1/winback/summary", "empty")],
    ("DELETE", "/v1/members/{member_id}"): [Call("/v1/members/{member}", "forbidden")],
    # The member directory's external ids (A's member has a Kisi id); B's key cannot write.
    ("GET", "/v1/members/{member_id}/external-ids"): [
        Call("/v1/members/{member}/external-ids", "404")
    ],
    ("PUT", "/v1/members/{member_id}/external-ids/{system}"): [
        Call("/v1/members/{member}/external-ids/kisi", "forbidden", {"external_id": "b-1"})
    ],
    ("DELETE", "/v1/members/{member_id}/external-ids/{system}"): [
        Call("/v1/members/{member}/external-ids/kisi", "forbidden")
    ],
    # The member's profile (A's member has one); B's key cannot write.
    ("GET", "/v1/members/{member_id}/profile"): [Call("/v1/members/{member}/profile", "404")],
    ("PUT", "/v1/members/{member_id}/profile"): [
        Call("/v1/members/{member}/profile", "forbidden", {"display_name": "B was here"})
    ],
    # The holdout (A holds back a share): B sees its own, off; B's key cannot set one.
    ("GET", "/v1/holdout"): [Call("/v1/holdout", "not_a")],
    ("PUT", "/v1/holdout"): [Call("/v1/holdout", "forbidden", {"share": 0.5})],
    # The uplift report (A's episodes): B's reads its own, empty.
    ("GET", "/v1/uplift"): [Call("/v1/uplift", "not_a")],
}


def app_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """Every (method, path) the app serves, through included routers too."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        items: list[Any] = list(contexts()) if contexts is not None else [route]
        for item in items:
            for method in getattr(item, "methods", None) or ():
                if method != "HEAD":
                    yield method, item.path


def test_every_route_is_covered():
    routes = set(app_routes(create_app(Settings(), deliver=False)))
    assert len(routes) > 20
    # The staff page's cookie-session routes have their cases in tests/page/test_http.py.
    page = set(PAGE_ISOLATION_CASES) | set(ADMIN_ISOLATION_CASES) | PAGE_NO_TENANT_DATA
    uncovered = routes - PUBLIC - set(CALLS) - page
    assert not uncovered, f"routes without a tenant-isolation case: {sorted(uncovered)}"
    assert not set(CALLS) - routes, "cases for routes that no longer exist"


async def test_another_tenants_key_sees_nothing_of_tenant_a(
    settings, sessions, tenant, key, receiver
):
    member = f"member-{uuid.uuid4().hex[:6]}"
    alerts = episode(
        tenant, member, ["at_risk", "escalated"], start=datetime(2026, 1, 5, tzinfo=UTC)
    )
    await store_alerts(sessions, alerts)
    state = MemberState(tenant, member, site_id="site-1", last_visit=1.7e9, anchor=1.7e9)
    state.episode_id, state.episode_start, state.severity = alerts[0].episode_id, 1.7e9, "high"
    await store_states(sessions, [state])
    async with sessions() as s:
        await set_external_id(s, tenant, member, "kisi", f"kisi-of-{member}")
        await set_profile(s, tenant, member, ProfileIn(display_name=f"name-of-{member}"))
        await holdout.set_share(s, tenant, 0.1, by="a-manager", reason=f"pilot-of-{member}")
        await s.commit()
    b_key = await make_key(sessions, f"{tenant}-b")
    async with api(create_app(settings, deliver=False), key) as a:
        created = (await a.post("/v1/webhooks", json={"url": receiver.url})).json()
        wid = created["id"]
        r = await a.post(f"/v1/alerts/{alerts[0].alert_id}/actions", json={"action": "call"})
        assert r.status_code == 201
        async with delivery_client(settings) as http:
            dispatcher = Dispatcher(settings, sessions, http, batch_size=1000)

            async def deliveries() -> list[dict[str, Any]]:
                await dispatcher.fan_out()  # the shared database may hold others' alerts first
                r = await a.get(f"/v1/webhooks/{wid}/deliveries")
                items: list[dict[str, Any]] = r.json()["items"]
                return items

            delivery = (await until(deliveries))[0]
        async with sessions() as s:
            before = await snapshot(s, wid)

        async with httpx.AsyncClient(
            base_url=a.base_url, headers={"authorization": f"Bearer {b_key}"}
        ) as b:
            b_wid = (await b.post("/v1/webhooks", json={"url": receiver.url})).json()["id"]
            ids = {
                "alert": alerts[0].alert_id,
                "episode": alerts[0].episode_id,
                "member": member,
                "wid": wid,
                "did": delivery["id"],
                "b_wid": b_wid,
                "url": receiver.url,
            }
            for (method, _), calls in CALLS.items():
                for call in calls:
                    r = await b.request(
                        method,
                        call.path.format(**ids),
                        json=fill(call.body, ids),
                        params=fill(call.params, ids),
                    )
                    check(r, call, method)
                    if call.path == "/v1/holdout" and method == "GET":
                        assert r.json()["active"] is False, r.text
                    if r.status_code < 300:
                        for name in ("alert", "episode", "member", "wid", "did"):
                            assert ids[name] not in r.text, (method, call.path, name)
                    if call.expect == "own" and method == "POST" and call.path == "/v1/webhooks":
                        # B's new subscription is invisible to A.
                        new = r.json()["id"]
                        assert (await a.get(f"/v1/webhooks/{new}")).status_code == 404

        # Nothing of A's changed, and B's test ping sent nothing.
        async with sessions() as s:
            assert await snapshot(s, wid) == before
        assert receiver.requests == []
        metrics = (await a.get("/metrics")).text
        assert member not in metrics  # no member ids in metric labels


def fill(value: Any, ids: dict[str, str]) -> Any:
    if value is None:
        return None
    return {k: v.format(**ids) if isinstance(v, str) else v for k, v in value.items()}


def check(r: httpx.Response, call: Call, method: str) -> None:
    where = (method, call.path, r.status_code, r.text[:200])
    if call.expect == "404":
        assert r.status_code == 404, where
        assert r.json()["title"] == "Not found", where
    elif call.expect == "empty":
        assert r.status_code == 200, where
        assert r.json()["items"] == [], where
    elif call.expect == "not_a":
        assert r.status_code == 200, where
    elif call.expect == "zero":
        assert r.status_code == 200, where
        assert all(row["episodes"] == 0 for row in r.json()["items"]), where
    elif call.expect == "forbidden":  # the route needs a scope B's key lacks
        assert r.status_code == 403, where
    else:
        assert r.status_code in (201, 202), where


async def snapshot(s, wid: str) -> dict[str, Any]:
    sub = await s.get(WebhookSubscription, wid)
    await s.refresh(sub)
    deliveries = [
        (d.id, d.status, d.attempts, d.next_attempt_at)
        for d in await s.scalars(
            select(WebhookDelivery).where(WebhookDelivery.subscription_id == wid)
        )
    ]
    actions = await s.scalar(
        select(func.count()).select_from(ActionRow).where(ActionRow.note == "B was here")
    )
    external = (
        await s.execute(
            select(ExternalId.tenant_id, ExternalId.member_id, ExternalId.external_id).where(
                ExternalId.external_id.like("kisi-of-%") | (ExternalId.external_id == "b-1")
            )
        )
    ).all()
    profiles = (
        await s.execute(
            select(
                MemberProfile.tenant_id, MemberProfile.member_id, MemberProfile.display_name
            ).where(
                MemberProfile.display_name.like("name-of-%")
                | (MemberProfile.display_name == "B was here")
            )
        )
    ).all()
    periods = (
        await s.execute(
            select(HoldoutPeriodRow.tenant_id, HoldoutPeriodRow.share, HoldoutPeriodRow.end).where(
                HoldoutPeriodRow.reason.like("pilot-of-%")
            )
        )
    ).all()
    return {
        "holdout": sorted(tuple(row) for row in periods),
        "profiles": sorted(tuple(row) for row in profiles),
        "sub": (sub.url, sub.enabled, sub.secret, sub.previous_secret, sub.disabled_reason),
        "deliveries": deliveries,
        "b_actions": actions,
        "external_ids": sorted(tuple(row) for row in external),
    }
