"""Issue 20's acceptance scenario for the front desk, in Debian's Chromium through
Playwright, screenshots in ``test-artifacts/page/accept-*.png``: a front-desk account finds a
member by name, the call link is ``tel:``, acknowledges, and sees them move to Contacted; the
same in Hebrew, right to left, on a tablet (1024 × 768) and a phone (375 × 812); another
tenant's staff see nothing of it. axe and the house rules pass on every page on the way."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from api.app import create_app
from records.profiles import ProfileIn, set_profile
from tests.api.support import serve
from tests.page.support import PASSWORD, add_staff, make_club

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is missing", allow_module_level=True)

from playwright.async_api import Page  # noqa: E402

from tests.page.a11y import accessible  # noqa: E402
from tests.page.test_browser import TABLET, browser, contacted, shot, todo  # noqa: E402, F401

PHONE = {"width": 375, "height": 812}
# Who the desk looks for, in which language and on what screen: (member, name, phone).
SCENES = (
    ("en", TABLET, "ana", "Ana Levi", "+972501110001"),
    ("he", TABLET, "cara", "כרמל כהן", "+972501110002"),
    ("he", PHONE, "ben", "בן ארי", "+972501110003"),
)
WORDS = {
    "en": {"login": "Email or user name", "password": "Password", "submit": "Log in",
           "find": "Find a member", "go": "Find", "more": "More", "called": "Called",
           "call": "Call {name}"},
    "he": {"login": "דוא״ל או שם משתמש", "password": "סיסמה", "submit": "כניסה",
           "find": "חיפוש מנוי", "go": "חיפוש", "more": "עוד", "called": "התקשרתי",
           "call": "להתקשר אל {name}"},
}  # fmt: skip


async def log_in(page: Page, base: str, login: str, lang: str) -> None:
    w = WORDS[lang]
    await page.goto(f"{base}/staff/")
    await accessible(page, f"login, {lang}")
    await page.get_by_label(w["login"]).fill(login)
    await page.get_by_label(w["password"]).fill(PASSWORD)
    await page.get_by_role("button", name=w["submit"], exact=True).click()
    await page.wait_for_url(f"{base}/staff/")


async def test_the_front_desk_finds_calls_and_acknowledges_in_both_languages(
    browser,  # noqa: F811 (the fixture of tests/page/test_browser.py)
    settings,
    sessions,
    tenant,
):
    await make_club(sessions, tenant)
    async with sessions() as db:
        for _lang, _view, member, name, phone in SCENES:
            await set_profile(db, tenant, member, ProfileIn(display_name=name, phone=phone))
        await db.commit()
    desk = await add_staff(sessions, tenant, name="Dana")
    other = f"other-{uuid.uuid4().hex[:8]}"
    stranger = await add_staff(sessions, other, name="Dana")
    async with serve(create_app(settings, deliver=False)) as base:
        for lang, viewport, member, name, phone in SCENES:
            w = WORDS[lang]
            form = "phone" if viewport is PHONE else "tablet"
            context = await browser.new_context(
                viewport=viewport, locale="he-IL" if lang == "he" else "en-US"
            )
            page = await context.new_page()
            await log_in(page, base, desk, lang)
            assert await page.get_attribute("html", "dir") == ("rtl" if lang == "he" else "ltr")
            # Find the member by (part of) the name.
            await page.get_by_label(w["find"]).fill(name.split()[0])
            await page.get_by_role("button", name=w["go"], exact=True).click()
            await page.wait_for_url("**/staff/?*q=*")
            assert await todo(page) == [member]
            await accessible(page, f"found, {lang}, {form}")
            await shot(page, f"accept-found-{lang}-{form}")
            row = page.locator(f"#todo-list > li[data-member='{member}']")
            call = row.get_by_role("link", name=w["call"].format(name=name))
            assert await call.get_attribute("href") == f"tel:{phone}"
            box = await call.bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 44
            # Acknowledge the call: the member moves from To do to Contacted, no reload.
            await row.locator("summary").click()
            await row.get_by_role("button", name=w["called"]).click()
            await page.locator(f"#contacted-list > li[data-member='{member}']").wait_for()
            assert await todo(page) == [] and await contacted(page) == [member]
            await accessible(page, f"acknowledged, {lang}, {form}")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{lang} {form} scrolls sideways: {width}px"
            await shot(page, f"accept-moved-{lang}-{form}")
            # The whole list agrees after a reload: not on To do any more.
            await page.goto(f"{base}/staff/?site=north")
            assert member not in await todo(page) and member in await contacted(page)
            await context.close()

        # Another club's front desk: no member, no name, no member page, no export row.
        context = await browser.new_context(viewport=PHONE, locale="he-IL")
        page = await context.new_page()
        await log_in(page, base, stranger, "he")
        await page.goto(f"{base}/staff/?q=Ana")
        assert await todo(page) == [] and await contacted(page) == []
        await page.goto(f"{base}/staff/")
        assert await todo(page) == [] and await contacted(page) == []
        content = await page.content()
        for _lang, _view, member, name, phone in SCENES:
            assert name not in content and phone not in content
            answer = await page.goto(f"{base}/staff/members/{member}")
            assert answer is not None and answer.status == 404
            assert name not in await page.content()
        await accessible(page, "another club, he, phone")
        await shot(page, "accept-other-club-he-phone")
        csv = await page.request.get(f"{base}/staff/export.csv")
        assert csv.ok and (await csv.text()).count("\n") <= 1, await csv.text()
        await context.close()
