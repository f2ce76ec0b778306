"""Member profiles (records/profiles.py): set and read through the api and a CSV, validated
without echoing values, isolated per tenant, shown on the staff page, erased with the member,
never logged."""

from __future__ import annotations

import logging
from argparse import Namespace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from detector.core.state import MemberState
from records.profiles import ProfileFileError, read_profiles
from records.tables import MemberProfile
from tests.api.support import api, make_key
from tests.api.test_members import store_states
from tests.page.support import login, make_club
from tests.page.test_http import member_ids

PHONE = "+972 50-555-0147"
PHONE_STORED = "+972505550147"
EMAIL = "dana.levi@example.org"
PROFILE = {
    "display_name": "Dana Levi",
    "phone": PHONE,
    "email": EMAIL,
    "plan": "Unlimited",
    "photo_url": "https://crm.example.org/photos/dana.jpg",
    "crm_id": "CRM-0042",
}
WRITE = ("events:write", "alerts:read")


async def test_a_profile_is_set_read_and_shown_in_the_member_api(settings, sessions, tenant):
    await store_states(
        sessions, [MemberState(tenant, "m-dana", site_id="site-1", last_visit=1.7e9)]
    )
    key = await make_key(sessions, tenant, scopes=WRITE)
    async with api(create_app(settings, deliver=False), key) as client:
        assert (await client.get("/v1/members/m-dana/profile")).status_code == 404
        r = await client.put("/v1/members/m-dana/profile", json=PROFILE)
        assert r.status_code == 200, r.text
        got = (await client.get("/v1/members/m-dana/profile")).json()
        assert got["member_id"] == "m-dana" and got["phone"] == PHONE_STORED
        assert {k: got[k] for k in PROFILE if k != "phone"} == {
            k: v for k, v in PROFILE.items() if k != "phone"
        }
        member = (await client.get("/v1/members/m-dana")).json()
        assert member["display_name"] == "Dana Levi"
        assert member["profile"]["email"] == EMAIL
        # A PUT replaces the whole profile; an empty one deletes it.
        r = await client.put("/v1/members/m-dana/profile", json={"display_name": "Dana L."})
        assert r.json()["phone"] is None and r.json()["display_name"] == "Dana L."
        r = await client.put("/v1/members/m-dana/profile", json={})
        assert r.status_code == 200 and r.json() is None
        assert (await client.get("/v1/members/m-dana/profile")).status_code == 404
        assert (await client.get("/v1/members/m-dana")).json()["display_name"] is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("phone", "call me 0501234567"),
        ("phone", "+12"),
        ("email", "dana.levi@example"),
        ("email", "dana levi@example.org"),
        ("email", 'x"><script>@example.org'),
        ("photo_url", "http://crm.example.org/photos/dana.jpg"),
        ("photo_url", "javascript:alert(1)"),
        ("display_name", "Dana\nLevi"),
        ("display_name", ""),
        ("plan", "x" * 101),
        ("nickname", "Dee"),
    ],
)
async def test_an_invalid_field_is_a_problem_naming_the_field_not_the_value(
    settings, sessions, tenant, field, value
):
    key = await make_key(sessions, tenant, scopes=WRITE)
    async with api(create_app(settings, deliver=False), key) as client:
        r = await client.put("/v1/members/m-dana/profile", json={field: value})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field]
        assert not value or value not in r.text
        assert (await client.get("/v1/members/m-dana/profile")).status_code == 404


async def test_another_tenant_can_neither_read_nor_set_the_profile(settings, sessions, tenant):
    a = await make_key(sessions, tenant, scopes=WRITE)
    b_read = await make_key(sessions, f"{tenant}-b", scopes=("alerts:read",))
    b_write = await make_key(sessions, f"{tenant}-b", scopes=WRITE)
    site_bound = await make_key(sessions, tenant, scopes=WRITE, site_id="site-1")
    app = create_app(settings, deliver=False)
    async with api(app, a) as client:
        assert (await client.put("/v1/members/m-dana/profile", json=PROFILE)).status_code == 200
        as_b = {"authorization": f"Bearer {b_read}"}
        r = await client.get("/v1/members/m-dana/profile", headers=as_b)
        assert r.status_code == 404 and EMAIL not in r.text
        r = await client.put("/v1/members/m-dana/profile", json=PROFILE, headers=as_b)
        assert r.status_code == 403
        # B's writing key writes B's own member of that id, never A's.
        other = {"display_name": "Someone else"}
        as_bw = {"authorization": f"Bearer {b_write}"}
        r = await client.put("/v1/members/m-dana/profile", json=other, headers=as_bw)
        assert r.status_code == 200
        assert (await client.get("/v1/members/m-dana/profile")).json()["display_name"] == (
            "Dana Levi"
        )
        # A profile is the tenant's: a site-bound key may not write it.
        as_site = {"authorization": f"Bearer {site_bound}"}
        r = await client.put("/v1/members/m-dana/profile", json=other, headers=as_site)
        assert r.status_code == 403


async def test_forgetting_a_member_erases_their_profile(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=WRITE)
    admin = {"authorization": f"Bearer {await make_key(sessions, tenant, ('admin',))}"}
    async with api(create_app(settings, deliver=False), key) as client:
        await client.put("/v1/members/m-dana/profile", json=PROFILE)
        # Lapse held nothing else about this member: the profile alone is worth erasing.
        r = await client.delete("/v1/members/m-dana", headers=admin)
        assert r.status_code == 200, r.text
        assert r.json()["erased"]["member_profiles"] == 1
        assert (await client.get("/v1/members/m-dana/profile")).status_code == 404
    async with sessions() as session:
        left = await session.scalars(select(MemberProfile).where(MemberProfile.tenant_id == tenant))
        assert list(left) == []


async def test_logs_never_carry_profile_fields(settings, sessions, tenant, caplog):
    caplog.set_level(logging.DEBUG)
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=WRITE)
    async with api(create_app(settings, deliver=False), key) as client:
        assert (await client.put("/v1/members/ben/profile", json=PROFILE)).status_code == 200
        await client.put("/v1/members/ben/profile", json={**PROFILE, "email": EMAIL + "@"})
        await client.get("/v1/members/ben/profile")
        await client.get("/v1/members/at-risk")
        assert (await login(client, key)).status_code == 303
        assert "tel:" in (await client.get("/staff/members/ben")).text
        assert "Dana Levi" in (await client.get("/staff/", params={"q": "Dana Levi"})).text
        r = await client.delete(
            "/v1/members/ben",
            headers={"authorization": f"Bearer {await make_key(sessions, tenant, ('admin',))}"},
        )
        assert r.status_code == 200
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the test saw the log (access lines at least)
    for secret in (PHONE, PHONE_STORED, "505550147", EMAIL, "Dana Levi", "CRM-0042"):
        assert secret not in logged, secret


async def test_the_staff_page_shows_the_name_and_one_tap_contact_links(settings, sessions, tenant):
    await make_club(sessions, tenant)
    writer = await make_key(sessions, tenant, scopes=WRITE)
    async with api(create_app(settings, deliver=False), writer) as client:
        r = await client.put("/v1/members/ben/profile", json=PROFILE)
        assert r.status_code == 200
        r = await client.put("/v1/members/ana/profile", json={"display_name": "Ana <b>"})
        assert r.status_code == 200
        async with httpx.AsyncClient(base_url=client.base_url, timeout=10) as browser:
            assert (await login(browser, writer)).status_code == 303
            work = (await browser.get("/staff/")).text
            assert "><bdi>Dana Levi</bdi></a>" in work and 'data-member="ben"' in work
            assert f'href="tel:{PHONE_STORED}"' in work
            assert f'href="sms:{PHONE_STORED}"' in work
            assert f'href="mailto:{EMAIL}"' in work
            assert (
                "><bdi>Ana &lt;b&gt;</bdi></a>" in work
            )  # escaped; no phone: no call link for her
            assert work.count('href="tel:') == 1
            assert "><bdi>cara</bdi></a>" in work  # no profile: the id
            # Search by name or id, case-insensitively, across both lists.
            found = (await browser.get("/staff/", params={"q": "dana"})).text
            assert member_ids("todo-list", found) == ["ben"]
            assert member_ids("contacted-list", found) == []
            assert 'value="dana"' in found and "Show everyone" in found
            found = (await browser.get("/staff/", params={"q": "CAR"})).text
            assert member_ids("todo-list", found) == ["cara"]
            page = (await browser.get("/staff/members/ben")).text
            assert "<h1><bdi>Dana Levi</bdi> " in page and f'href="tel:{PHONE_STORED}"' in page
            assert "Member id ben" in page and "Plan Unlimited" in page


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profiles_file_with_errors_names_lines_and_fields_not_values(tmp_path):
    path = _csv(
        tmp_path,
        "member_id,display_name,phone,email\n"
        "m-1,Dana Levi,+972505550147,dana@example.org\n"
        "m-2,Ben Ari,not-a-phone-555,ben@example.org\n"
        "m-1,Dana Again,,\n"
        "m-3,Cara,,cara-at-example.org\n",
    )
    with pytest.raises(ProfileFileError) as err:
        read_profiles(path)
    message = str(err.value)
    assert "line 3: invalid phone" in message
    assert "line 4: same member_id as line 2" in message
    assert "line 5: invalid email" in message
    for value in ("not-a-phone-555", "cara-at-example.org", "Dana Again", "Ben Ari"):
        assert value not in message


async def test_lapse_members_import_profiles_is_all_or_nothing(
    settings, sessions, tenant, tmp_path, capsys
):
    from lapse.commands.members import run_members

    async def stored() -> dict[str, tuple[str | None, str | None]]:
        async with sessions() as session:
            rows = await session.scalars(
                select(MemberProfile).where(MemberProfile.tenant_id == tenant)
            )
            return {r.member_id: (r.display_name, r.phone) for r in rows}

    async def run(text: str) -> None:
        path = _csv(tmp_path, text)
        await run_members(settings, Namespace(action="import-profiles", tenant=tenant, file=path))

    with pytest.raises(SystemExit) as exit_:
        await run("member_id,display_name,phone\nm-1,Dana Levi,+972505550147\nm-2,Ben,x\n")
    assert "line 3: invalid phone" in str(exit_.value.code)
    assert "Dana Levi" not in str(exit_.value.code) + capsys.readouterr().out
    assert await stored() == {}
    await run(
        "\ufeffmember_id,display_name,phone,notes\r\n"
        "m-1,Dana Levi,+972 50 555 0147,x\r\nm-2,Ben,\r\n"
    )
    assert "2 profile(s)" in capsys.readouterr().out
    assert await stored() == {"m-1": ("Dana Levi", PHONE_STORED), "m-2": ("Ben", None)}


async def test_webhook_bodies_never_carry_the_profile(
    fast_settings, sessions, tenant, key, receiver
):
    from api.app import delivery_client
    from api.delivery import Dispatcher
    from tests.api.support import make_alert, store_alerts, until
    from tests.api.test_delivery import fanned_out, subscribe

    alert = make_alert(tenant)
    writer = await make_key(sessions, tenant, scopes=WRITE)
    async with api(create_app(fast_settings, deliver=False), key) as client:
        await subscribe(client, receiver.url)
        r = await client.put(
            f"/v1/members/{alert.member_id}/profile",
            json=PROFILE,
            headers={"authorization": f"Bearer {writer}"},
        )
        assert r.status_code == 200
    await store_alerts(sessions, [alert])
    async with delivery_client(fast_settings) as http:
        dispatcher = Dispatcher(fast_settings, sessions, http)
        # Every new alert of the test database, other tests' too (100 a batch).
        while await dispatcher.fan_out():
            pass
        await until(fanned_out(sessions, tenant))
        await dispatcher.deliver_due()
    [request] = receiver.requests
    body = request.body.decode()
    assert alert.member_id in body  # the member, by id
    for value in ("Dana Levi", PHONE_STORED, EMAIL, "CRM-0042", "Unlimited", "profile"):
        assert value not in body, value
