"""The staff page over HTTP, on a real uvicorn with PostgreSQL: sessions, CSRF, isolation,
headers, the plain-form acknowledge and the calibration section."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from api.app import create_app
from api.page import routes
from plumbing.settings import Settings
from records.tables import ActionRow, ApiKey, CalibrationReport
from tests.api.support import make_key, serve
from tests.page.support import csrf_of, login, make_club


@asynccontextmanager
async def browser_like(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serve(create_app(settings, deliver=False)) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        yield client


def member_ids(section: str, page: str) -> list[str]:
    """The member ids listed in one section ("todo-list" or "contacted-list") of the page."""
    block = page.split(f'id="{section}"', 1)[1].split("</ol>", 1)[0]
    return re.findall(r'data-member="([^"]+)"', block)


async def test_login_sets_a_signed_httponly_strict_cookie_without_the_key(
    settings, sessions, tenant, caplog
):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        r = await client.get("/staff/")
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
        with caplog.at_level(logging.DEBUG):
            r = await login(client, key)
        assert r.status_code == 303 and r.headers["location"] == "/staff/"
        cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("lapse_session="))
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "path", "max-age"} <= attrs
        assert "samesite=strict" in cookie.lower()
        assert "secure" not in attrs  # plain http here; https sets it
        value = cookie.split(";")[0].split("=", 1)[1]
        assert key not in value and key[6:] not in value
        assert key not in caplog.text
        page = await client.get("/staff/")
        assert page.status_code == 200 and "At-risk members today" in page.text
        assert key not in page.text

        # A forged cookie (another signature) is no session.
        body, _, _ = value.partition(".")
        client.cookies.set("lapse_session", body + ".AAAA", path="/staff")
        assert (await client.get("/staff/")).status_code == 303


async def test_a_wrong_key_a_key_without_scope_and_a_stale_form_are_refused(
    settings, sessions, tenant
):
    writer = await make_key(sessions, tenant, scopes=("events:write",))
    async with browser_like(settings) as client:
        r = await login(client, "lapse_not-a-real-key")
        assert r.status_code == 401 and "unknown or revoked" in r.text
        r = await login(client, writer)
        assert r.status_code == 403 and "alerts:read" in r.text
        # A login form posted without the cookie it was served with (login CSRF).
        token = re.search(r'name="login_token" value="([^"]+)"', r.text)
        assert token
        client.cookies.clear()
        r = await client.post(
            "/staff/login", data={"login_token": token.group(1), "api_key": writer}
        )
        assert r.status_code == 400 and "lapse_session" not in r.headers.get("set-cookie", "")


async def test_revoking_the_key_ends_its_sessions(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        assert (await login(client, key)).status_code == 303
        assert (await client.get("/staff/")).status_code == 200
        async with sessions() as s:
            row = await s.scalar(select(ApiKey).where(ApiKey.tenant_id == tenant))
            row.revoked_at = datetime.now(UTC)
            await s.commit()
        assert (await client.get("/staff/")).status_code == 303


async def test_headers_csp_without_inline_script_and_assets(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        for path in ("/staff/login", "/staff/", "/staff/reports"):
            r = await client.get(path, follow_redirects=True)
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            script = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
            assert script.split() == ["script-src", "'self'"]
            assert "frame-ancestors 'none'" in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"] == "same-origin"
            assert "<script>" not in r.text and " style=" not in r.text  # nothing inline
            assert '<html lang="en" dir="ltr">' in r.text
        css = await client.get("/staff/assets/page.css")
        js = await client.get("/staff/assets/page.js")
        assert css.headers["content-type"].startswith("text/css") and ":focus-visible" in css.text
        assert js.headers["content-type"].startswith("text/javascript")
        assert js.headers["x-content-type-options"] == "nosniff"
        assert (await client.get("/staff/assets/..%2Fsession.py")).status_code == 404
        assert (await client.get("/staff/assets/nothing.js")).status_code == 404


async def test_acknowledge_as_a_plain_form_moves_the_member_to_contacted(
    settings, sessions, tenant
):
    club = await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        page = (await client.get("/staff/", params={"site": "north"})).text
        # Highest severity first, then longest absent; members with no open episode absent.
        assert member_ids("todo-list", page) == ["ben", "ana", "cara", "gia"]
        assert member_ids("contacted-list", page) == []
        assert "Absent longer than usual for them" in page and "A payment failed" in page
        everywhere = (await client.get("/staff/")).text
        assert "fay" in member_ids("todo-list", everywhere)

        alert = club.open_alert("ana")
        form = {"csrf": csrf_of(page), "action": "call", "note": "voicemail", "site": "north"}
        # Without the session's CSRF token: refused, nothing recorded.
        r = await client.post(
            f"/staff/alerts/{alert.alert_id}/actions", data=form | {"csrf": "x" * 43}
        )
        assert r.status_code == 403
        r = await client.post(f"/staff/alerts/{alert.alert_id}/actions", data=form)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/staff/?site=north&recorded=call&member=ana")
        after = (await client.get(r.headers["location"])).text
        assert member_ids("todo-list", after) == ["ben", "cara", "gia"]
        assert member_ids("contacted-list", after) == ["ana"]
        assert "Recorded: Called for member ana." in after and "voicemail" in after
        async with sessions() as s:
            rows = list(await s.scalars(select(ActionRow).where(ActionRow.tenant_id == tenant)))
        assert [(r.member_id, r.action, r.note, r.alert_id) for r in rows] == [
            ("ana", "call", "voicemail", alert.alert_id)
        ]

        # From the script: JSON back, same effect.
        cara = club.open_alert("cara")
        r = await client.post(
            f"/staff/alerts/{cara.alert_id}/actions",
            data=form | {"action": "message", "note": ""},
            headers={"accept": "application/json"},
        )
        assert r.status_code == 201 and r.json()["member_id"] == "cara"
        assert r.json()["label"] == "Messaged" and r.json()["note"] is None
        assert r.json()["taken_at_text"].endswith(" UTC")  # no time zone set for the site
        again = (await client.get("/staff/", params={"site": "north"})).text
        assert member_ids("contacted-list", again) == ["ana", "cara"]

        # A cross-site POST (another Origin) is refused even with a token.
        r = await client.post(
            f"/staff/alerts/{cara.alert_id}/actions",
            data=form,
            headers={"origin": "https://evil.example"},
        )
        assert r.status_code == 400


async def test_another_tenants_session_reaches_nothing_of_tenant_a(settings, sessions, tenant):
    club = await make_club(sessions, tenant)
    b_key = await make_key(sessions, f"{tenant}-b", scopes=("alerts:read",))
    alert = club.open_alert("ben")
    async with browser_like(settings) as b:
        await login(b, b_key)
        page = (await b.get("/staff/")).text
        assert member_ids("todo-list", page) == [] and "ben" not in page
        r = await b.get("/staff/members/ben")
        assert r.status_code == 404 and "Not found" in r.text
        r = await b.post(
            f"/staff/alerts/{alert.alert_id}/actions",
            data={"csrf": csrf_of(page), "action": "call", "note": "B was here"},
        )
        assert r.status_code == 404
        r = await b.post(
            f"/staff/alerts/{alert.alert_id}/actions",
            data={"csrf": csrf_of(page), "action": "call"},
            headers={"accept": "application/json"},
        )
        assert r.status_code == 404 and r.json()["title"] == "Not found"
        reports = (await b.get("/staff/reports")).text
        assert "No episodes yet" in reports and alert.episode_id not in reports
        for name in ("north", "south"):
            assert f'value="{name}"' not in reports  # A's sites are not offered to B
        assert (await b.get("/staff/reports/calibration/1")).status_code == 404
    async with sessions() as s:
        acted = await s.scalar(
            select(func.count()).select_from(ActionRow).where(ActionRow.tenant_id == tenant)
        )
    assert acted == 0


async def test_a_site_bound_key_sees_its_site_only(settings, sessions, tenant):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",), site_id="south")
    async with browser_like(settings) as client:
        await login(client, key)
        page = (await client.get("/staff/", params={"site": "north"})).text
        assert member_ids("todo-list", page) == ["fay"]
        assert (await client.get("/staff/members/ben")).status_code == 404
        assert (await client.get("/staff/members/fay")).status_code == 200


# Every page route and the cases above that show another tenant cannot use it.
ISOLATION_CASES = {
    ("GET", "/staff/"): "todo list empty for B",
    ("GET", "/staff/members/{member_id}"): "404",
    ("POST", "/staff/alerts/{alert_id}/actions"): "404 (form and JSON)",
    ("GET", "/staff/reports"): "no episodes, no sites of A",
    ("GET", "/staff/reports/calibration/{report_id}"): "404 (also test_calibration_*)",
    ("POST", "/staff/language"): "changes only the caller's own account (test_i18n_http)",
    ("GET", "/staff/export.csv"): "header only (test_worklist.py)",
}
NO_TENANT_DATA = {
    ("GET", "/staff/login"),
    ("POST", "/staff/login"),
    ("POST", "/staff/logout"),
    ("GET", "/staff/assets/{name}"),
}


def test_every_page_route_has_an_isolation_case():
    served = {
        (method, r.path)
        for r in routes.router.routes
        if isinstance(r, APIRoute)
        for method in r.methods or ()
        if method != "HEAD"
    }
    assert served == set(ISOLATION_CASES) | NO_TENANT_DATA


async def test_logout_needs_the_token_and_ends_the_session(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        page = (await client.get("/staff/")).text
        assert (await client.post("/staff/logout", data={"csrf": "nope"})).status_code == 403
        assert (await client.get("/staff/")).status_code == 200
        r = await client.post("/staff/logout", data={"csrf": csrf_of(page)})
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
        assert (await client.get("/staff/")).status_code == 303


async def test_member_page_draws_the_kept_visits_deadline_and_episodes(settings, sessions, tenant):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        page = (await client.get("/staff/members/eve")).text
        assert page.count('class="tl-visit"') == 12  # the detector keeps 12 visit times
        assert "tl-ep-recovered" in page and 'class="tl-deadline"' in page
        assert "came back" in page
        ben = (await client.get("/staff/members/ben")).text
        assert "tl-ep-open" in ben and "High risk" in ben
        assert '<form class="ack"' in ben  # the open episode can be acknowledged here too


async def test_calibration_section_without_and_with_a_report(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        page = (await client.get("/staff/reports")).text
        assert "No calibration report yet" in page

        now = datetime.now(UTC)
        report_id, other_id = str(uuid.uuid4()), str(uuid.uuid4())
        async with sessions() as s:
            for rid, tenant_id, body, at in (
                (other_id, f"{tenant}-other", "<p>another club</p>", now),
                (str(uuid.uuid4()), tenant, "<h1>older report</h1>", now - timedelta(days=30)),
                (
                    report_id,
                    tenant,
                    "<style>h1{color:#333}</style><h1>Cadence wins</h1><script>x()</script>",
                    now - timedelta(days=1),
                ),
            ):
                s.add(
                    CalibrationReport(
                        id=rid,
                        tenant_id=tenant_id,
                        created_at=at,
                        window_start=at - timedelta(days=90),
                        window_end=at,
                        policy={"policy": "cadence", "floor_days": 21},
                        scores={"cadence": {"precision": 0.62}},
                        report_html=body,
                    )
                )
            await s.commit()
        page = (await client.get("/staff/reports")).text
        assert "floor_days" in page and "precision" in page
        src = re.search(r'<iframe class="report" src="([^"]+)"[^>]* sandbox', page)
        assert src and src.group(1) == f"/staff/reports/calibration/{report_id}", page
        r = await client.get(src.group(1))
        assert r.status_code == 200 and "Cadence wins" in r.text
        csp = r.headers["content-security-policy"]
        assert csp.startswith("sandbox;") and "script-src" not in csp
        assert "default-src 'none'" in csp and "frame-ancestors 'self'" in csp
        # Another tenant's report is not reachable by its id.
        assert (await client.get(f"/staff/reports/calibration/{other_id}")).status_code == 404
