"""The staff page in a real browser: Playwright driving Debian's Chromium, headless, against
the running api (real uvicorn, PostgreSQL). Screenshots go to ``test-artifacts/page/``.

Chromium comes from Debian (``scripts/setup.sh --test``), never from ``playwright install``.
Without ``/usr/bin/chromium`` these tests skip on a developer machine and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from api.app import create_app
from records.profiles import ProfileIn, set_profile
from records.staff_accounts import Role
from records.tables import ActionRow
from tests.api.support import make_key, serve
from tests.page.support import PASSWORD, add_staff, make_club, make_crowd

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"
TABLET: ViewportSize = {"width": 1024, "height": 768}
PHONE: ViewportSize = {"width": 390, "height": 844}

if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip(
        f"{CHROMIUM} is missing: `bash scripts/setup.sh --test` installs Debian's chromium",
        allow_module_level=True,
    )

from playwright.async_api import Browser, Page, ViewportSize, async_playwright  # noqa: E402

from tests.page.a11y import accessible, problems  # noqa: E402


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            await b.close()


async def todo(page: Page) -> list[str]:
    members: list[str] = await page.locator("#todo-list > li").evaluate_all(
        "items => items.map(i => i.dataset.member)"
    )
    return members


async def contacted(page: Page) -> list[str]:
    members: list[str] = await page.locator("#contacted-list > li").evaluate_all(
        "items => items.map(i => i.dataset.member)"
    )
    return members


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def log_in(page: Page, base: str, key: str, *, scripts: bool = True) -> None:
    """Log in with the key; ``scripts``: the page runs JavaScript, so axe can be run in it
    (with scripts off its timers never fire and the check would wait forever)."""
    await page.goto(f"{base}/staff/")
    assert page.url.endswith("/staff/login")
    if scripts:
        await accessible(page, "login")
        await shot(page, "login-tablet")
    await page.get_by_text("Log in with an API key instead").click()
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Log in with the key").click()
    await page.wait_for_url(f"{base}/staff/")


async def test_front_desk_acknowledges_and_opens_a_timeline(browser, settings, sessions, tenant):
    await make_club(sessions, tenant)
    async with sessions() as s:  # one member with a profile: a name and contact links
        profile = ProfileIn(display_name="Ben Ari", phone="+972501234567", email="ben@example.org")
        await set_profile(s, tenant, "ben", profile)
        await s.commit()
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    errors: list[str] = []
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=TABLET)
        page = await context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, base, key)
        assert await context.cookies() and all(
            c["httpOnly"] and c["sameSite"] == "Strict" for c in await context.cookies()
        )

        # Choose the site (keyboard works: the skip link is the first stop).
        await page.get_by_label("Site").select_option("north")
        await page.get_by_role("button", name="Show").click()
        await page.wait_for_url(f"{base}/staff/?site=north")
        assert await todo(page) == ["ben", "ana", "cara", "gia"]
        assert await contacted(page) == []
        await accessible(page, "list")
        await shot(page, "list-tablet")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip"
        await page.keyboard.press("Enter")
        assert await page.evaluate("document.activeElement.id") == "main"

        # Acknowledge ana with one click and a note: no reload, she moves to Contacted.
        await page.evaluate("window.notReloaded = true")
        ana = page.locator("#todo-list > li[data-member='ana']")
        # The row is compact: the note and the buttons open on tap.
        assert not await ana.get_by_label("Note (optional)").is_visible()
        await ana.get_by_text("More").click()
        await ana.get_by_label("Note (optional)").fill("Left a voicemail")
        await ana.get_by_role("button", name="Called").click()
        await page.locator("#contacted-list > li[data-member='ana']").wait_for()
        assert await todo(page) == ["ben", "cara", "gia"]
        assert await contacted(page) == ["ana"]
        assert await page.locator("#todo-count").inner_text() == "3"
        assert await page.evaluate("window.notReloaded") is True
        done = await page.locator("#contacted-list > li[data-member='ana'] .actions").inner_text()
        assert done.startswith("Called · ") and done.endswith("UTC Left a voicemail"), done
        moved = page.locator("#contacted-list > li[data-member='ana'] .last-contact")
        assert (await moved.inner_text()).startswith("last contact ")
        focused = await page.evaluate("document.activeElement.closest('li').dataset.member")
        assert focused == "cara"  # focus moved to the next member to do
        await shot(page, "list-after-ack-tablet")
        async with sessions() as s:
            acts = list(await s.scalars(select(ActionRow).where(ActionRow.tenant_id == tenant)))
        assert [(a.member_id, a.action, a.note) for a in acts] == [
            ("ana", "call", "Left a voicemail")
        ]
        await page.reload()
        assert await todo(page) == ["ben", "cara", "gia"]
        assert await contacted(page) == ["ana"]

        # A member's timeline.
        # Found by name (the profile's), with a one-tap call link.
        ben = page.locator("#todo-list > li[data-member='ben']")
        assert await ben.get_by_role("link", name="Call Ben Ari").get_attribute("href") == (
            "tel:+972501234567"
        )
        await page.get_by_role("link", name="Ben Ari", exact=True).click()
        await page.wait_for_url(f"{base}/staff/members/ben")
        assert await page.locator("h1").inner_text() == "Ben Ari High risk"
        assert await page.get_by_role("link", name="Email").get_attribute("href") == (
            "mailto:ben@example.org"
        )
        assert await page.locator("svg#timeline rect.tl-visit").count() == 12
        assert await page.locator("svg#timeline .tl-deadline").count() == 1
        assert await page.locator("svg#timeline rect.tl-ep-open").count() == 1
        assert await page.locator("svg#timeline").is_visible()
        await accessible(page, "member")
        await shot(page, "member-tablet")

        await page.get_by_role("link", name="Reports").click()
        await page.wait_for_url(f"{base}/staff/reports")
        assert await page.locator("svg#outcomes rect.ch-bar").count() >= 1
        await accessible(page, "reports")
        await shot(page, "reports-tablet")

        # The same pages on a phone.
        await page.set_viewport_size(PHONE)
        for path, name in (("/staff/?site=north", "list"), ("/staff/members/eve", "member")):
            await page.goto(base + path)
            await accessible(page, f"{name} on a phone")
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} scrolls sideways on a phone: {width}px"
            await shot(page, f"{name}-phone")
        await context.close()
    assert errors == []


async def test_acknowledge_works_without_javascript(browser, settings, sessions, tenant):
    await make_club(sessions, tenant)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=TABLET, java_script_enabled=False)
        page = await context.new_page()
        await log_in(page, base, key, scripts=False)
        await page.goto(f"{base}/staff/?site=north")
        cara = page.locator("#todo-list > li[data-member='cara']")
        await cara.get_by_text("More").click()  # <details> opens without a script
        await cara.get_by_role("button", name="Messaged").click()
        await page.wait_for_url("**/staff/?site=north&recorded=message&member=cara*")
        assert await todo(page) == ["ben", "ana", "gia"]
        assert await contacted(page) == ["cara"]
        notice = page.get_by_role("status").filter(has_text="Recorded")
        assert await notice.inner_text() == "Recorded: Messaged for member cara."
        # Log out: back to the login page, and the list needs a login again.
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url(f"{base}/staff/login")
        await page.goto(f"{base}/staff/")
        assert page.url.endswith("/staff/login")
        await context.close()


async def test_the_accessibility_check_finds_what_it_looks_for(browser):
    """The check itself (axe and the house rules), on a page with one of each fault: it
    must not pass anything."""
    context = await browser.new_context(viewport=TABLET)
    page = await context.new_page()
    await page.set_content(
        "<html><head><title>bad</title></head><body>"
        '<a class="skip" href="#main">Skip</a><main id="main"><h1>Bad</h1><h3>skipped</h3>'
        '<input name="nolabel"><button class="tiny"></button>'
        '<p class="faint">faint text</p><svg width="10" height="10"></svg>'
        '<h2 id="twice">one</h2><h2 id="twice">two</h2>'
        '<svg role="img" width="90" height="20"><title>chart</title>'
        '<text class="faint" x="0" y="15">faint label</text></svg>'
        "</main></body></html>"
    )
    await page.add_style_tag(
        content=".faint { color: #bbbbbb; fill: #bbbbbb } .tiny { width: 20px }"
    )
    found = await problems(page)
    await context.close()
    text = "\n".join(found)
    for fault in (
        "axe html-has-lang (serious)",
        "axe heading-order (moderate)",
        "axe label (critical)",
        "axe button-name (critical)",
        "axe color-contrast (serious)",
        "svg without role=img",
        "duplicate ids: twice",
        "small target BUTTON",
        'contrast 1.92 < 4.5: "faint label"',
    ):
        assert fault in text, (fault, found)
    # The faint paragraph is axe's to find; the house rule looks only at SVG text.
    assert 'contrast 1.92 < 4.5: "faint text"' not in text


async def test_a_front_desk_account_logs_in_by_name_and_is_refused_the_reports(
    browser, settings, sessions, tenant
):
    await make_club(sessions, tenant)
    login = await add_staff(
        sessions, tenant, Role.FRONT_DESK, login=f"dana-{tenant}@club.example", name="Dana"
    )
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await page.goto(f"{base}/staff/")
        await page.get_by_label("Email or user name").fill(login)
        await page.get_by_label("Password").fill("not her password")
        await page.get_by_role("button", name="Log in", exact=True).click()
        assert "do not match an active account" in await page.locator("#login-error").inner_text()
        await accessible(page, "login error")
        await page.get_by_label("Email or user name").fill(login.upper())
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Log in", exact=True).click()
        await page.wait_for_url(f"{base}/staff/")
        await page.goto(f"{base}/staff/?site=north")
        assert await todo(page) == ["ben", "ana", "cara", "gia"]
        await shot(page, "account-list-phone")
        answer = await page.goto(f"{base}/staff/reports")
        assert answer is not None and answer.status == 403
        assert "Your role does not open this page." in await page.content()
        await accessible(page, "refused")
        await context.close()


async def test_hebrew_right_to_left_on_a_phone_and_the_switch_to_english(
    browser, settings, sessions, tenant
):
    """A Hebrew browser gets the page in Hebrew, right to left and mirrored; the account's
    switch to English is kept; the accessibility check passes in both languages."""
    await make_club(sessions, tenant)
    login = f"noa-{tenant}@club.example"
    await add_staff(sessions, tenant, Role.FRONT_DESK, login=login, name="Noa")
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=PHONE, locale="he-IL")
        page = await context.new_page()
        await page.goto(f"{base}/staff/")
        assert await page.get_attribute("html", "dir") == "rtl"
        await accessible(page, "login, Hebrew")
        await shot(page, "login-he-phone")
        await page.get_by_label("דוא״ל או שם משתמש").fill(login)
        await page.get_by_label("סיסמה").fill(PASSWORD)
        await page.get_by_role("button", name="כניסה", exact=True).click()
        await page.wait_for_url(f"{base}/staff/")
        await page.goto(f"{base}/staff/?site=north")
        assert await page.get_attribute("html", "lang") == "he"
        assert await todo(page) == ["ben", "ana", "cara", "gia"]
        assert await page.locator("h1").inner_text() == "מנויים בסיכון היום"
        # Mirrored: the first acknowledge button sits to the right of the second (in the
        # row's fold, opened by its Hebrew "more").
        row = page.locator("#todo-list > li").first
        await row.locator("summary").click()
        assert await row.get_by_label("הערה (לא חובה)").is_visible()
        buttons = row.locator(".buttons button")
        first, second = await buttons.nth(0).bounding_box(), await buttons.nth(1).bounding_box()
        assert first is not None and second is not None and first["x"] > second["x"]
        await accessible(page, "list, Hebrew")
        await shot(page, "list-he-phone")
        await page.goto(f"{base}/staff/members/ben")
        assert "ימים" in await page.locator("dl.figures").inner_text()
        await accessible(page, "member, Hebrew")
        await shot(page, "member-he-phone")
        # The switch: stored on the account, it wins over the Hebrew browser from now on.
        await page.get_by_label("שפה").select_option("en")
        await page.get_by_role("button", name="החלפה").click()
        await page.wait_for_url(f"{base}/staff/members/ben")
        assert await page.get_attribute("html", "dir") == "ltr"
        assert "Visit timeline" in await page.content()
        await accessible(page, "member, English")
        await page.goto(f"{base}/staff/")
        assert await page.get_attribute("html", "lang") == "en"
        await accessible(page, "list, English")
        await context.close()


async def page_height(page: Page) -> int:
    height: int = await page.evaluate("document.documentElement.scrollHeight")
    return height


async def test_twenty_three_members_fit_a_couple_of_screens(browser, settings, sessions, tenant):
    """Issue 20 measured 9,926 px at 1024x768 and 14,076 px on a phone for 23 cards; the
    compact rows (details open on tap) must keep the list to a few screens."""
    await make_crowd(sessions, tenant, 23)
    key = await make_key(sessions, tenant, scopes=("alerts:read",))
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=TABLET)
        page = await context.new_page()
        await log_in(page, base, key)
        assert len(await todo(page)) == 23
        tablet = await page_height(page)
        await accessible(page, "23 rows")
        await shot(page, "list-23-tablet")
        await page.set_viewport_size(PHONE)
        phone = await page_height(page)
        await shot(page, "list-23-phone")
        # Opening one row shows its note box and buttons (and makes the page taller).
        first = page.locator("#todo-list > li").first
        await first.get_by_text("More").click()
        assert await first.get_by_label("Note (optional)").is_visible()
        assert await page_height(page) > phone
        await context.close()
    print(f"23 members: {tablet} px at 1024x768, {phone} px at 390x844")
    assert tablet <= 3 * TABLET["height"], tablet
    assert phone <= 5 * PHONE["height"], phone


async def test_every_page_an_admin_opens_passes_axe_in_both_languages(
    browser, settings, sessions, tenant
):
    """Login, list, member, reports and the administration (with a key and a webhook shown
    once), in Hebrew and in English, on a tablet and a phone: axe and the house rules."""
    await make_club(sessions, tenant)
    login = f"ori-{tenant}@club.example"
    await add_staff(sessions, tenant, Role.ADMIN, login=login, name="Ori")
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=TABLET, locale="he-IL")
        page = await context.new_page()
        await page.goto(f"{base}/staff/")
        await page.get_by_label("דוא״ל או שם משתמש").fill(login)
        await page.get_by_label("סיסמה").fill(PASSWORD)
        await page.get_by_role("button", name="כניסה", exact=True).click()
        await page.wait_for_url(f"{base}/staff/")
        await page.get_by_role("link", name="ניהול").click()
        await page.wait_for_url(f"{base}/staff/admin")
        await page.get_by_label("שם (איזה מכשיר או שילוב)").fill("שער צפון")
        await page.get_by_label("alerts:read").check()
        await page.get_by_role("button", name="יצירת מפתח").click()
        assert (await page.locator("#shown-once").inner_text()).startswith("lapse_")
        await accessible(page, "admin with a new key, Hebrew")
        await shot(page, "admin-key-he-tablet")
        await page.get_by_label("כתובת (https)").fill("http://127.0.0.1:9/hooks")
        await page.get_by_role("button", name="הוספת webhook").click()
        assert (await page.locator("#shown-once").inner_text()).startswith("whsec_")
        for lang, viewport in (("he", PHONE), ("he", TABLET), ("en", PHONE), ("en", TABLET)):
            await page.set_viewport_size(viewport)
            if lang == "en" and await page.get_attribute("html", "lang") == "he":
                await page.get_by_label("שפה").select_option("en")
                await page.get_by_role("button", name="החלפה").click()
                await page.wait_for_load_state()
            form = "phone" if viewport is PHONE else "tablet"
            for path, name in (
                ("/staff/?site=north", "list"),
                ("/staff/members/ben", "member"),
                ("/staff/reports", "reports"),
                ("/staff/admin", "admin"),
            ):
                await page.goto(base + path)
                assert await page.get_attribute("html", "lang") == lang
                await accessible(page, f"{name}, {lang}, {form}")
                if form == "phone":
                    width = await page.evaluate("document.documentElement.scrollWidth")
                    assert width <= PHONE["width"], f"{name} scrolls sideways: {width}px"
            await shot(page, f"admin-{lang}-{form}")
        await context.close()
