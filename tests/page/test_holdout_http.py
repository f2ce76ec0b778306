"""The holdout control's forms over HTTP (real uvicorn, PostgreSQL): the CSRF token and the
share and reason are checked before anything is written; a key session sets it only with
the admin scope and not bound to a site (as ``PUT /v1/holdout``), and is recorded as that
key; a refusal is in the person's language; nothing is changed by a refused form."""

from __future__ import annotations

import html
import re

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from records import holdout
from records.staff_accounts import Role
from records.tables import ApiKey, HoldoutPeriodRow, StaffAccount
from tests.api.support import make_key
from tests.page.support import PASSWORD, add_staff, csrf_of, login
from tests.page.test_accounts import log_in, page
from tests.page.test_http import browser_like


async def _current(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> HoldoutPeriodRow | None:
    async with sessions() as s:
        return await holdout.current(s, tenant)


def refusal_of(r: httpx.Response) -> tuple[str, str, str]:
    """The refusal page's language, title and detail (its ``h1`` and first paragraph)."""
    lang = re.search(r'<html lang="(\w+)"', r.text)
    said = re.search(r"<h1>(.*?)</h1><p>(.*?)</p>", r.text, re.S)
    assert lang and said, r.text[:500]
    return lang.group(1), html.unescape(said.group(1)), html.unescape(said.group(2))


async def test_the_forms_check_the_token_the_share_and_the_reason(settings, sessions, tenant):
    key = await make_key(sessions, tenant, scopes=("alerts:read", "admin"))
    async with browser_like(settings) as client:
        await login(client, key)
        page = await client.get("/staff/reports")
        assert page.status_code == 200
        assert 'action="/staff/reports/holdout"' in page.text
        csrf = csrf_of(page.text)
        for form, status in (
            ({"csrf": "forged", "share": "10", "reason": "pilot"}, 403),
            ({"csrf": csrf, "share": "60", "reason": "pilot"}, 422),
            ({"csrf": csrf, "share": "0", "reason": "pilot"}, 422),
            ({"csrf": csrf, "share": "nan", "reason": "pilot"}, 422),
            ({"csrf": csrf, "share": "ten", "reason": "pilot"}, 422),
            ({"csrf": csrf, "share": "10", "reason": "  "}, 422),
            ({"csrf": csrf, "share": "10", "reason": "a\x1b[31m"}, 422),
            ({"csrf": csrf, "share": "10", "reason": "x" * 501}, 422),
        ):
            r = await client.post("/staff/reports/holdout", data=form)
            assert r.status_code == status, (form, r.text[:300])
        assert await _current(sessions, tenant) is None
        r = await client.post(
            "/staff/reports/holdout", data={"csrf": csrf, "share": "12.5", "reason": "pilot"}
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/staff/reports?holdout=set#holdout-h"
        row = await _current(sessions, tenant)
        async with sessions() as s:
            key_id = await s.scalar(select(ApiKey.id).where(ApiKey.tenant_id == tenant))
        assert row is not None and (row.share, row.set_by, row.reason) == (0.125, key_id, "pilot")
        page = await client.get("/staff/reports?holdout=set")
        assert "Saved: from now on <bdi>12.5 %</bdi> of new episodes are held back." in page.text
        # The same share again changes nothing, and says so.
        r = await client.post(
            "/staff/reports/holdout", data={"csrf": csrf, "share": "12.5", "reason": "again"}
        )
        assert r.headers["location"].startswith("/staff/reports?holdout=same")
        r = await client.post("/staff/reports/holdout/stop", data={"csrf": csrf, "reason": ""})
        assert r.headers["location"].startswith("/staff/reports?holdout=stop")
        assert await _current(sessions, tenant) is None


async def test_a_key_without_the_admin_scope_or_bound_to_a_site_cannot_change_it(
    settings, sessions, tenant
):
    reader = await make_key(sessions, tenant, scopes=("alerts:read",))
    north = await make_key(sessions, tenant, scopes=("alerts:read", "admin"), site_id="north")
    async with sessions() as s:
        await holdout.set_share(s, tenant, 0.2, by="test", reason="pilot")
        await s.commit()
    for key, why, in_hebrew in (
        (
            reader,
            "needs a manager&#x27;s account or a key with the admin scope",
            "כדי לשנות את קבוצת הביקורת צריך חשבון של מנהל/ת או מפתח עם הרשאת ניהול.",
        ),
        (
            north,
            "a key bound to one site cannot change it",
            "קבוצת הביקורת חלה על כל המועדון: מפתח של סניף אחד אינו יכול לשנות אותה.",
        ),
    ):
        async with browser_like(settings) as client:
            await login(client, key)
            page = await client.get("/staff/reports")
            # The state is shown; the forms are not.
            assert "On: <bdi>20 %</bdi> of new episodes are held back" in page.text
            assert '<form method="post" action="/staff/reports/holdout' not in page.text
            assert why in page.text
            csrf = csrf_of(page.text)
            r = await client.post(
                "/staff/reports/holdout", data={"csrf": csrf, "share": "50", "reason": "mine"}
            )
            assert r.status_code == 403
            r = await client.post("/staff/reports/holdout/stop", data={"csrf": csrf})
            assert r.status_code == 403 and why in r.text
            # In the person's language: a key session's choice is the lapse_lang cookie.
            client.cookies.set("lapse_lang", "he", path="/staff")
            r = await client.post("/staff/reports/holdout/stop", data={"csrf": csrf})
            assert r.status_code == 403
            assert refusal_of(r) == ("he", "אין הרשאה", in_hebrew)
    row = await _current(sessions, tenant)
    assert row is not None and (row.share, row.reason) == (0.2, "pilot")


# The words a Hebrew-speaking manager reads (api/page/i18n.py, api/page/i18n_uplift.py).
INVALID_HE = "בקשה לא תקינה"
REASON_HE = "נא לכתוב סיבה לשינוי (עד 500 תווים, בלי תווי בקרה)."


async def _account_in(
    sessions: async_sessionmaker[AsyncSession], tenant: str, role: Role, language: str
) -> str:
    """A new staff account of ``role`` whose page language is ``language``."""
    login_name = await add_staff(sessions, tenant, role)
    async with sessions() as s:
        account = await s.scalar(select(StaffAccount).where(StaffAccount.login == login_name))
        assert account is not None
        account.language = language
        await s.commit()
    return login_name


async def test_a_hebrew_speaking_account_is_refused_in_hebrew_an_english_one_in_english(
    settings, sessions, tenant
):
    """The refusals of the control-group forms in the account's language (the browser asks
    for English: the account's choice wins); their JSON, the API's contract, stays English."""
    he = await _account_in(sessions, tenant, Role.MANAGER, "he")
    en = await _account_in(sessions, tenant, Role.MANAGER, "en")
    desk = await _account_in(sessions, tenant, Role.FRONT_DESK, "he")
    english = {"Accept-Language": "en"}
    bad_share = {"share": "60", "reason": "pilot"}
    no_reason = {"share": "10", "reason": "  "}
    long_reason = {"share": "10", "reason": "x" * 501}
    async with page(settings) as client:
        assert (await log_in(client, he, PASSWORD)).status_code == 303
        csrf = csrf_of((await client.get("/staff/reports", headers=english)).text)
        for url, form, status, title, detail in (
            ("", bad_share, 422, INVALID_HE, "נא לבחור שיעור גדול מ־0 ועד 50%."),
            ("", no_reason, 422, INVALID_HE, REASON_HE),
            ("", long_reason, 422, INVALID_HE, REASON_HE),
            ("/stop", {"reason": "a\x1b[31m"}, 422, INVALID_HE, REASON_HE),
            ("/stop", {"csrf": "forged"}, 403, "אין הרשאה", "אסימון האבטחה של הטופס לא תאם."),
        ):
            r = await client.post(
                f"/staff/reports/holdout{url}", data={"csrf": csrf, **form}, headers=english
            )
            assert r.status_code == status, (form, r.text[:300])
            assert refusal_of(r) == ("he", title, detail), form
        r = await client.post(
            "/staff/reports/holdout",
            data={"csrf": csrf, **bad_share},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 422 and r.json()["detail"] == (
            "Choose a share of more than 0 and at most 50 %."
        )
    async with page(settings) as client:
        assert (await log_in(client, en, PASSWORD)).status_code == 303
        csrf = csrf_of((await client.get("/staff/reports", headers={"Accept-Language": "he"})).text)
        for form, detail in (
            (bad_share, "Choose a share of more than 0 and at most 50 %."),
            (
                no_reason,
                "Give a reason for the change (at most 500 characters, no control characters).",
            ),
        ):
            r = await client.post(
                "/staff/reports/holdout",
                data={"csrf": csrf, **form},
                headers={"Accept-Language": "he"},
            )
            assert r.status_code == 422
            assert refusal_of(r) == ("en", "Invalid request", detail)
    # The front desk is refused by the Manager check before the form is read: in Hebrew too.
    async with page(settings) as client:
        assert (await log_in(client, desk, PASSWORD)).status_code == 303
        r = await client.post("/staff/reports/holdout", data=bad_share)
        assert r.status_code == 403
        assert refusal_of(r) == ("he", "אין הרשאה", "התפקיד שלך אינו פותח את הדף הזה.")
    assert await _current(sessions, tenant) is None


# The control-group forms and what shows another tenant cannot use them: neither takes a
# tenant or an id, both act on the session's own club (test_uplift_browser.py: another club's
# manager sets its own share and the first club's stays as it was).
ISOLATION_CASES = {
    ("POST", "/staff/reports/holdout"): "sets the caller's own club's share only",
    ("POST", "/staff/reports/holdout/stop"): "stops the caller's own club's only",
}
