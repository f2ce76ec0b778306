"""The page's language over HTTP with PostgreSQL: the browser's ``Accept-Language`` picks it
until the person chooses; an account's choice is stored on the account (and wins over the
browser, on any device); a key session's choice stays in this browser; another tenant's
account is never changed."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from records.tables import StaffAccount
from tests.api.support import make_key
from tests.page.support import PASSWORD, add_staff, csrf_of, login, make_club
from tests.page.test_accounts import log_in, page

HE = {"Accept-Language": "he-IL,he;q=0.9,en;q=0.5"}


async def choose(client: httpx.AsyncClient, language: str, **headers: str) -> httpx.Response:
    home = await client.get("/staff/", headers=headers)
    return await client.post(
        "/staff/language", data={"csrf": csrf_of(home.text), "language": language}
    )


async def test_the_browser_language_gives_a_right_to_left_page(settings, sessions, tenant):
    async with page(settings) as client:
        he = await client.get("/staff/login", headers=HE)
        assert '<html lang="he" dir="rtl">' in he.text and "סיסמה" in he.text
        en = await client.get("/staff/login", headers={"Accept-Language": "en-GB,he;q=0.3"})
        assert '<html lang="en" dir="ltr">' in en.text and "Password" in en.text
        # A refusal is worded in the page's language too.
        account = await add_staff(sessions, tenant)
        form = await client.get("/staff/login", headers=HE)
        token = form.text.split('name="login_token" value="', 1)[1].split('"', 1)[0]
        refused = await client.post(
            "/staff/login",
            data={"login_token": token, "login": account, "password": "wrong"},
            headers=HE,
        )
        assert refused.status_code == 401 and "השם והסיסמה אינם תואמים" in refused.text


async def test_the_accounts_choice_is_stored_and_wins_over_the_browser(settings, sessions, tenant):
    await make_club(sessions, tenant)
    account = await add_staff(sessions, tenant)
    async with page(settings) as client:
        assert (await log_in(client, account, PASSWORD)).status_code == 303
        assert 'dir="rtl"' in (await client.get("/staff/", headers=HE)).text
        r = await choose(client, "en")
        assert r.status_code == 303 and r.headers["location"] == "/staff/"
        listed = await client.get("/staff/", headers=HE)
        assert (
            '<html lang="en" dir="ltr">' in listed.text and "At-risk members today" in listed.text
        )
        r = await choose(client, "he")
        listed = await client.get("/staff/", headers={"Accept-Language": "en"})
        assert '<html lang="he" dir="rtl">' in listed.text and "מנויים בסיכון היום" in listed.text
        assert "At-risk" not in listed.text
    async with sessions() as db:
        stored = await db.scalar(select(StaffAccount.language).where(StaffAccount.login == account))
    assert stored == "he"
    # Another device, an English browser: the account's choice follows the person.
    async with page(settings) as other:
        await log_in(other, account, PASSWORD)
        assert 'dir="rtl"' in (await other.get("/staff/", headers={"Accept-Language": "en"})).text


async def test_a_key_session_keeps_its_choice_and_bad_requests_are_refused(
    settings, sessions, tenant
):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with page(settings) as client:
        await login(client, key)
        r = await choose(client, "he")
        assert r.status_code == 303
        assert 'dir="rtl"' in (await client.get("/staff/", headers={"Accept-Language": "en"})).text
        home = await client.get("/staff/")
        token = csrf_of(home.text)
        bad = await client.post("/staff/language", data={"csrf": token, "language": "fr"})
        assert bad.status_code == 422 and "נא לבחור אנגלית או עברית." in bad.text
        forged = await client.post("/staff/language", data={"csrf": "x", "language": "en"})
        assert forged.status_code == 403 and '<html lang="he" dir="rtl">' in forged.text
        json = await client.post(
            "/staff/language",
            data={"csrf": "x", "language": "en"},
            headers={"Accept": "application/json"},
        )
        assert json.json()["title"] == "Forbidden"  # the API's answer stays as documented
        assert 'dir="rtl"' in (await client.get("/staff/")).text


async def test_another_tenants_account_is_never_changed(settings, sessions, tenant):
    other_tenant = tenant + "-b"
    mine = await add_staff(sessions, tenant)
    theirs = await add_staff(sessions, other_tenant)
    async with page(settings) as client:
        await log_in(client, mine, PASSWORD)
        await choose(client, "he")
    async with sessions() as db:
        rows = dict((await db.execute(select(StaffAccount.login, StaffAccount.language))).all())
    assert rows[mine] == "he" and rows[theirs] is None
