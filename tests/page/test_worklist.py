"""The work list people work through: sort, risk filter, paging, site names, local time and
the CSV export (same scope and role check as the list), over HTTP with PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.page import listing
from api.page.export import safe
from api.page.listing import Paging, paged
from api.read.members import Member
from api.read.worklist import WorkItem, Worklist
from records.profiles import ProfileIn, set_profile
from records.tables import Site
from tests.api.support import make_key
from tests.page.support import csrf_of, login, make_club
from tests.page.test_http import browser_like, member_ids


def listed(page: str) -> list[str]:
    return member_ids("todo-list", page) + member_ids("contacted-list", page)


def rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


async def _acknowledge(client, member: str, page: str) -> None:
    block = page.split(f'data-member="{member}"', 1)[1]
    action = re.search(r'<form class="ack" method="post" action="([^"]+)"', block)
    assert action, block[:300]
    r = await client.post(action.group(1), data={"csrf": csrf_of(page), "action": "call"})
    assert r.status_code == 303


async def test_sort_orders_and_the_risk_filter(settings, sessions, tenant):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        risk = (await client.get("/staff/", params={"site": "north"})).text
        assert member_ids("todo-list", risk) == ["ben", "ana", "cara", "gia"]
        # Days absent (the club's plan: ben 70, fay 45, ana 40, cara 25, gia 3), all sites.
        absent = (await client.get("/staff/", params={"sort": "absent"})).text
        assert member_ids("todo-list", absent) == ["ben", "fay", "ana", "cara", "gia"]
        assert '<option value="absent" selected>' in absent
        search = absent.split('role="search"', 1)[1].split("</form>", 1)[0]
        assert '<input type="hidden" name="sort" value="absent">' in search
        for level, expected in (("high", ["ben"]), ("medium", ["ana", "cara"]), ("low", ["gia"])):
            page = (await client.get("/staff/", params={"site": "north", "severity": level})).text
            assert member_ids("todo-list", page) == expected, level
        # An unknown sort or level is the default list, not an error.
        odd = await client.get("/staff/", params={"site": "north", "sort": "x", "severity": "y"})
        assert odd.status_code == 200 and member_ids("todo-list", odd.text) == member_ids(
            "todo-list", risk
        )

        # Contact cara first, then ana: by risk ana comes first, by last contact cara does.
        await _acknowledge(client, "cara", risk)
        page = (await client.get("/staff/", params={"site": "north"})).text
        await _acknowledge(client, "ana", page)
        by_risk = (await client.get("/staff/", params={"site": "north"})).text
        assert member_ids("contacted-list", by_risk) == ["ana", "cara"]
        by_contact = (await client.get("/staff/", params={"site": "north", "sort": "contact"})).text
        assert member_ids("contacted-list", by_contact) == ["cara", "ana"]
        assert member_ids("todo-list", by_contact) == ["ben", "gia"]  # never contacted: risk
        assert by_contact.count("not contacted yet") == 2


async def test_paging_keeps_the_query(settings, sessions, tenant, monkeypatch):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    monkeypatch.setattr(listing, "PER_PAGE", 2)
    async with browser_like(settings) as client:
        await login(client, key)
        seen: list[str] = []
        url: str | None = "/staff/?sort=absent"
        pages = 0
        while url is not None:
            page = (await client.get(url.replace("&amp;", "&"))).text
            seen += listed(page)
            pages += 1
            nxt = re.search(r'<a rel="next" href="([^"]+)"', page)
            url = nxt.group(1) if nxt else None
            if url is not None:
                assert "sort=absent" in url
        assert pages == 3 and seen == ["ben", "fay", "ana", "cara", "gia"]
        assert "Page 3 of 3 (5 members)" in page and 'rel="prev"' in page
        # The headings count the whole list, not the page.
        assert '<span class="count" id="todo-count">5</span>' in page
        # A page past the end shows the last one.
        late = (await client.get("/staff/", params={"sort": "absent", "page": 9})).text
        assert listed(late) == ["gia"]


def _item(member_id: str, severity: str) -> WorkItem:
    fields: dict[str, Any] = {"member_id": member_id, "severity": severity, "days_absent": 1.0}
    m = Member.model_construct(**fields)
    return WorkItem(member=m, alert_id=None, opened_at=None)


def test_paged_splits_to_do_then_contacted():
    work = Worklist([_item(f"t{i}", "high") for i in range(3)], [_item("c0", "low")])
    first, p1 = paged(work, 1, 2)
    second, p2 = paged(work, 2, 2)
    assert [i.member.member_id for i in first.todo] == ["t0", "t1"] and first.contacted == []
    assert [i.member.member_id for i in second.todo] == ["t2"]
    assert [i.member.member_id for i in second.contacted] == ["c0"]
    assert p1 == Paging(1, 2, 4, 2) and p2 == Paging(2, 2, 4, 2)
    assert paged(Worklist([], []), 3, 2)[1] == Paging(1, 1, 0, 2)


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+972501234567", "'+972501234567"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("Ben Ari", "Ben Ari"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_quoted(cell, written):
    assert safe(cell) == written


async def test_export_is_the_list_in_local_time_and_injection_safe(settings, sessions, tenant):
    await make_club(sessions, tenant)
    async with sessions() as s:
        s.add(
            Site(
                tenant_id=tenant,
                site_id="north",
                time_zone="Asia/Jerusalem",
                name="North Club",
                created_at=datetime.now(UTC),
            )
        )
        profile = ProfileIn(display_name="=cmd|' /C calc'!A0", phone="+972501234567")
        await set_profile(s, tenant, "ben", profile)
        await s.commit()
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        r = await client.get("/staff/export.csv")
        assert r.status_code == 303 and r.headers["location"] == "/staff/login"
        await login(client, key)
        page = (await client.get("/staff/", params={"sort": "absent"})).text
        assert '<option value="north">North Club (north)</option>' in page
        # Site names and zone ids are the club's data, isolated for a right-to-left page.
        assert "<bdi>North Club (north)</bdi>: <bdi>Asia/Jerusalem</bdi>" in page
        assert "<bdi>south</bdi>: no time zone is set for the site, so its times are in UTC" in page
        link = re.search(r'<a href="(/staff/export\.csv[^"]*)" download>', page)
        assert link and link.group(1) == "/staff/export.csv?sort=absent"
        r = await client.get(link.group(1))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        got = rows(r.text)
        assert [g["member_id"] for g in got] == listed(page)
        ben = got[0]
        assert ben["name"] == "'=cmd|' /C calc'!A0" and ben["phone"] == "'+972501234567"
        assert ben["site_name"] == "North Club" and ben["time_zone"] == "Asia/Jerusalem"
        assert ben["severity"] == "high" and ben["list"] == "to do"
        # The last visit (as the JSON api gives it, in UTC) in Jerusalem's local time.
        api = await client.get("/v1/members/ben", headers={"authorization": f"Bearer {key}"})
        utc = datetime.fromisoformat(api.json()["last_visit"])
        local = utc.astimezone(ZoneInfo("Asia/Jerusalem"))
        assert local.utcoffset() != timedelta(0)
        assert ben["last_visit"] == local.strftime("%Y-%m-%d %H:%M")
        assert ben["last_visit"] != utc.strftime("%Y-%m-%d %H:%M")
        fay = next(g for g in got if g["member_id"] == "fay")
        assert fay["time_zone"] == "UTC" and fay["site_name"] == ""
        # Same filters as the list.
        medium = rows((await client.get("/staff/export.csv?site=north&severity=medium")).text)
        assert [g["member_id"] for g in medium] == ["ana", "cara"]


async def test_another_tenants_staff_export_nothing(settings, sessions, tenant):
    await make_club(sessions, tenant)
    b_key = await make_key(sessions, f"{tenant}-b", scopes=("alerts:read",))
    async with browser_like(settings) as b:
        await login(b, b_key)
        for params in ({}, {"site": "north"}, {"q": "ben"}):
            r = await b.get("/staff/export.csv", params=params)
            assert r.status_code == 200
            assert rows(r.text) == [] and "ben" not in r.text and "north" not in r.text
    # A site-bound key exports its site only, whatever site it asks for.
    south = await make_key(sessions, tenant, scopes=("alerts:read",), site_id="south")
    async with browser_like(settings) as client:
        await login(client, south)
        got = rows((await client.get("/staff/export.csv", params={"site": "north"})).text)
        assert [g["member_id"] for g in got] == ["fay"]


async def test_a_plain_acknowledge_returns_to_the_same_place(settings, sessions, tenant):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with browser_like(settings) as client:
        await login(client, key)
        params = {"site": "north", "sort": "absent", "severity": "medium", "q": "a"}
        page = (await client.get("/staff/", params=params)).text
        assert member_ids("todo-list", page) == ["ana", "cara"]
        block = page.split('data-member="cara"', 1)[1]
        action = re.search(r'<form class="ack" method="post" action="([^"]+)"', block)
        keep = re.search(r'name="keep" value="([^"]+)"', block)
        assert action and keep
        r = await client.post(
            action.group(1),
            data={
                "csrf": csrf_of(page),
                "action": "call",
                "site": "north",
                "keep": keep.group(1).replace("&amp;", "&"),
            },
        )
        assert r.status_code == 303
        back = r.headers["location"]
        for part in ("site=north", "sort=absent", "severity=medium", "q=a", "recorded=call"):
            assert part in back, back
        landed = (await client.get(back)).text
        assert member_ids("contacted-list", landed) == ["cara"]
        assert "Recorded: Called for member cara." in landed
        # A forged place is dropped, not an error.
        r = await client.post(
            action.group(1),
            data={"csrf": csrf_of(page), "action": "other", "keep": "page=x&evil=1&sort=absent"},
        )
        assert r.status_code == 303
        assert "evil" not in r.headers["location"] and "page=" not in r.headers["location"]
        assert "sort=absent" in r.headers["location"]
