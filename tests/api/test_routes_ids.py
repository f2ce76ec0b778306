"""Every member id the contract accepts is addressable by every route and page that takes one.

The routes are enumerated from the app itself (the api's and the staff page's, whatever their
number), so a route added later is covered too. Two checks:

- routing, for every id: the URL a client builds for the id (percent-encoded, then normalised
  by the client as RFC 3986 says) is matched, first, by that very route, with that very id;
  and each id the contract refuses is one that no URL could carry, which is why it is refused;
- end to end, for ids of every awkward kind: each route answers for the id exactly as it does
  for a plain id with the same history (same status; the member's own data; erased by DELETE).
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from plumbing.settings import Settings
from records.api_keys import create_key
from schemas.events import AccessEvent
from tests.api.leaver_support import checkpoint, leaver
from tests.api.support import api, make_key
from tests.page.support import login

# Accepted by the contract, each awkward in its own way for a URL or a page.
AWKWARD = (
    "a?b",  # starts a query unless encoded
    "a#b",  # starts a fragment unless encoded
    "a%2Fb",  # an encoded slash, if decoded twice
    "100%",  # a bare percent
    "%",
    "...",  # dots, but not a dot segment
    ".hidden",
    "end.",
    "~user",
    "a\\b",  # a slash to a browser, unless encoded
    "a+b;c=d&e=f",  # form and matrix separators
    "<b>&'\"",  # markup
    "Müller-Ödön",  # non-ASCII
    "会員7",
    "😀",  # beyond the BMP
    "x" * 100,  # long (the test's event ids add to it: 128 is the limit of those)
)
# Refused by the contract: no URL path segment can carry them.
REFUSED = ("a/b", ".", "..", "/", "a/../b")
PLAIN = "m-plain"


def _contract_accepts(member: str) -> bool:
    try:
        AccessEvent(
            event_id="e",
            tenant_id="t",
            member_id=member,
            site_id="s",
            kind="gate_entry",
            occurred_at="2026-01-05T18:00:00+01:00",
        )
    except ValidationError:
        return False
    return True


def _flat(routes: list[Any]) -> list[Any]:
    """The app's routes in the order they are tried (FastAPI nests included routers)."""
    out = []
    for route in routes:
        if hasattr(route, "effective_candidates"):
            out += _flat(route.effective_candidates())
        else:
            out.append(route)
    return out


def _url(template: str, member: str) -> str:
    """The URL of ``template`` for ``member`` (other parameters: ``kisi``, the one system)."""
    return template.replace("{member_id}", quote(member, safe="")).replace("{system}", "kisi")


def _params(template: str, member: str) -> dict[str, str]:
    return {"member_id": member, **({"system": "kisi"} if "{system}" in template else {})}


def _member_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path template) of every route with a ``{member_id}`` path parameter."""
    out = []
    for route in _flat(app.router.routes):
        path = getattr(route, "path", "")
        methods = getattr(getattr(route, "original_route", route), "methods", None) or ()
        if "{member_id}" in path:
            out += [(m, path) for m in sorted(methods) if m != "HEAD"]
    return out


async def _routed(app: Any, method: str, url: str) -> tuple[str | None, dict[str, Any]]:
    """(path template, path parameters) of the route the app picked for ``url``.

    The app runs for real but without its lifespan, so the handler fails at once (no
    database): only the routing, which Starlette leaves in the request's scope, is read.
    """
    seen: dict[str, Any] = {}

    async def capture(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        finally:
            seen.update(scope)

    transport = httpx.ASGITransport(app=capture, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://lapse.test") as client:
        await client.request(method, url)
    route = seen.get("route")
    return getattr(route, "path", None), dict(seen.get("path_params") or {})


async def test_every_accepted_id_routes_to_its_route_and_every_refused_one_could_not(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="plumbing.problems")  # the handlers' failures
    app = create_app(settings, deliver=False)
    routes = _member_routes(app)
    # The ones known today; the checks below run over whatever the app has.
    assert {
        ("GET", "/v1/members/{member_id}"),
        ("DELETE", "/v1/members/{member_id}"),
        ("GET", "/v1/members/{member_id}/exit-interview"),
        ("PUT", "/v1/members/{member_id}/exit-interview"),
        ("GET", "/staff/members/{member_id}"),
        ("GET", "/v1/members/{member_id}/external-ids"),
        ("PUT", "/v1/members/{member_id}/external-ids/{system}"),
        ("DELETE", "/v1/members/{member_id}/external-ids/{system}"),
        ("GET", "/v1/members/{member_id}/profile"),
        ("PUT", "/v1/members/{member_id}/profile"),
    } <= set(routes)
    for member in AWKWARD:
        assert _contract_accepts(member), member
        for method, template in routes:
            got = await _routed(app, method, _url(template, member))
            assert got == (template, _params(template, member)), (method, template, member, got)
    for member in REFUSED:
        assert not _contract_accepts(member), member
        for method, template in routes:
            got = await _routed(app, method, _url(template, member))
            assert got != (template, _params(template, member)), (method, template, member, got)


@pytest.mark.parametrize(
    "reserved",
    # A fixed path segment where a member id would be: the fixed route would answer first.
    ["at-risk"],
)
def test_ids_that_are_a_fixed_route_segment_are_refused(reserved: str) -> None:
    assert not _contract_accepts(reserved)


async def test_every_member_route_answers_an_awkward_id_as_it_answers_a_plain_one(
    settings: Settings, sessions: Any, tenant: str
) -> None:
    members = (PLAIN, *AWKWARD)
    events = [e for m in members for e in leaver(tenant, m, "price")]
    await checkpoint(sessions, events, until_day=90)
    key = await make_key(sessions, tenant, scopes=("admin",))
    app = create_app(settings, deliver=False)
    # Writes first (a mapping to read back and unmap), erasure last.
    order = {"PUT": 0, "GET": 1, "DELETE": 2}
    routes = sorted(
        _member_routes(app),
        key=lambda r: (r == ("DELETE", "/v1/members/{member_id}"), order.get(r[0], 1)),
    )
    answers: dict[str, list[tuple[str, str, int]]] = {}
    async with api(app, key) as client:
        assert (await login(client, key)).status_code == 303
        for n, member in enumerate(members):
            answers[member] = []
            for method, template in routes:
                path = _url(template, member)
                body: dict[str, str] | None = None
                if method == "PUT":
                    body = (
                        {"external_id": f"kisi-{n}"}
                        if "{system}" in template
                        else {"display_name": f"name {n}"}
                        if template.endswith("/profile")
                        else {"reason": "moved", "note": "n"}
                    )
                r = await client.request(method, path, json=body)
                answers[member].append((method, template, r.status_code))
                if r.status_code >= 300:
                    continue
                if r.headers["content-type"].startswith("text/html"):
                    assert html.escape(member, quote=True) in r.text, (method, template, member)
                elif template.endswith("exit-interview"):
                    assert r.json()["reason"] == "moved", (method, template, member)
                elif template.endswith("external-ids/{system}") and method == "PUT":
                    assert r.json() == {"member_id": member, "external_ids": {"kisi": f"kisi-{n}"}}
                elif method == "GET":
                    assert r.json()["member_id"] == member, (method, template, member)
            # Erased: the id is gone everywhere, as a plain one would be.
            r = await client.get(f"/v1/members/{quote(member, safe='')}")
            assert r.status_code == 404, (member, r.text)
    for member in AWKWARD:
        assert answers[member] == answers[PLAIN], member
    assert all(status < 300 for _, _, status in answers[PLAIN]), answers[PLAIN]


async def test_a_nul_in_the_url_is_refused_not_a_server_error(
    settings: Settings, sessions: Any, tenant: str
) -> None:
    """PostgreSQL's text cannot hold NUL: compared with a column, it failed requests with 500."""
    key = await make_key(sessions, tenant, scopes=("admin",))
    async with api(create_app(settings, deliver=False), key) as client:
        for path in ("/v1/members/a%00b", "/v1/members/%00/exit-interview", "/staff/members/%00"):
            r = await client.get(path)
            assert r.status_code == 404, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        for path, field in (
            ("/v1/members/at-risk?site_id=%00", "site_id"),
            ("/v1/alerts?member_id=a%00", "member_id"),
            ("/v1/alerts?limit=5&site_id=x%00y", "site_id"),
        ):
            r = await client.get(path)
            assert r.status_code == 422, (path, r.text)
            assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_keys_are_made_only_for_ids_the_contract_accepts(sessions: Any, tenant: str) -> None:
    """A key for a tenant or site the grammar refuses could send no valid event."""
    async with sessions() as session:
        for bad in ("a/b", "..", "t\u200b", "a:b", "t\u202e"):
            with pytest.raises(ValueError, match="id grammar"):
                await create_key(session, bad)
            with pytest.raises(ValueError, match="id grammar"):
                await create_key(session, tenant, site_id=bad)
        plain, row = await create_key(session, tenant, site_id="Nord-1")
        assert row.tenant_id == tenant and plain
        await session.rollback()
