"""A manager reads the reports in a real browser (Playwright, Debian's Chromium, real
uvicorn and PostgreSQL): the trends and the calibration report, in English and in Hebrew
(right to left), on a tablet (1024x768) and a phone (375x812), without sideways scrolling;
another club's manager sees none of it; the front desk is refused. Screenshots go to
``test-artifacts/page/`` as the other page tests keep them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, Page, ViewportSize
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.read.alerts import CLOSING
from api.read.trends import monday_of
from records.staff_accounts import Role
from records.tables import ActionRow, CalibrationReport
from tests.api.support import serve
from tests.page.a11y import accessible
from tests.page.support import PASSWORD, Club, add_staff, make_club
from tests.page.test_browser import TABLET, browser, shot  # noqa: F401
from tests.page.test_reports_page import STORED, with_missed

PHONE: ViewportSize = {"width": 375, "height": 812}


async def _log_in(page: Page, base: str, login: str) -> None:
    await page.goto(f"{base}/staff/login")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/staff/login'] button.primary").click()
    await page.wait_for_url(f"{base}/staff/")


async def _open_reports(
    chromium: Browser, base: str, login: str
) -> tuple[BrowserContext, Page, list[str]]:
    """A tablet page logged in as ``login`` and on Reports, with the console's and the page's
    errors collected in the list returned (a test asserts it empty at the end)."""
    errors: list[str] = []
    context = await chromium.new_context(viewport=TABLET, locale="en-GB")
    page = await context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await _log_in(page, base, login)
    await page.get_by_role("link", name="Reports").click()
    await page.wait_for_url(f"{base}/staff/reports")
    return context, page, errors


async def _fits(page: Page, what: str) -> None:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    viewport: int = await page.evaluate("window.innerWidth")
    assert width <= viewport, f"{what} scrolls sideways: {width}px in {viewport}px"


async def _club_with_actions_and_a_report(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> tuple[Club, str]:
    club = await make_club(sessions, tenant)
    now = datetime.now(UTC)
    async with sessions() as s:
        for member, kind in (("ana", "call"), ("cara", "message")):
            alert = club.open_alert(member)
            s.add(
                ActionRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    episode_id=alert.episode_id,
                    alert_id=alert.alert_id,
                    member_id=member,
                    action=kind,
                    note=None,
                    taken_at=now - timedelta(days=1),
                    taken_by="manager",
                )
            )
        report_id = str(uuid.uuid4())
        s.add(
            CalibrationReport(
                id=report_id,
                tenant_id=tenant,
                created_at=now - timedelta(days=2),
                window_start=now - timedelta(days=367),
                window_end=now - timedelta(days=2),
                policy=STORED["policy"],
                scores=with_missed(),
                report_html="<h1>Calibration</h1>",
            )
        )
        await s.commit()
    return club, report_id


def _opened_in_the_weeks(club: Club, weeks: int = 12) -> int:
    """Episodes of the club whose first alert is in the last ``weeks`` ISO weeks (UTC: the
    club's sites have no zone set)."""
    utc = ZoneInfo("UTC")
    first_monday = monday_of(datetime.now(UTC), utc) - timedelta(weeks=weeks - 1)
    opened: dict[str, datetime] = {}
    for a in club.alerts:
        if a.type not in CLOSING:
            opened[a.episode_id] = min(opened.get(a.episode_id, a.raised_at), a.raised_at)
    return sum(1 for t in opened.values() if monday_of(t, utc) >= first_monday)


async def _column_total(page: Page, column: int) -> int:
    cells: list[str] = await page.locator(
        f"table.trends tbody tr td:nth-of-type({column})"
    ).all_inner_texts()
    assert len(cells) == 12
    return sum(int(c) for c in cells)


async def test_a_manager_reads_the_trends_and_the_calibration_in_english_and_hebrew(
    browser,  # noqa: F811 (the fixture of tests/page/test_browser.py)
    settings,
    sessions,
    tenant,
):
    club, _ = await _club_with_actions_and_a_report(sessions, tenant)
    manager = await add_staff(sessions, tenant, Role.MANAGER)
    async with serve(create_app(settings, deliver=False)) as base:
        context, page, errors = await _open_reports(browser, base, manager)
        assert await page.locator("h1").inner_text() == "Reports"

        # Trends: four charts, and a table of the same weeks whose figures are the club's.
        assert await page.locator("svg.trend[role=img]").count() == 4
        assert await _column_total(page, 1) == _opened_in_the_weeks(club)
        assert await _column_total(page, 2) == 2  # ana and cara, contacted yesterday
        assert await page.get_by_role("img", name="Went at risk, week by week").is_visible()
        # Which actions bring members back: a bar per action with a closed episode.
        outcomes = page.locator("svg#outcomes")
        assert "Called · no closed episode yet" in (await outcomes.text_content() or "")
        assert await page.locator("table.outcomes tbody tr").count() == 5

        # The calibration in plain words first; the statistics folded away until asked for.
        plain = page.locator(".cal-plain")
        assert (await plain.inner_text()).startswith("Lapse flags members away much longer")
        assert "alerts a week for your" in await plain.inner_text()
        missed = page.get_by_role("list", name="Whom it finds, and whom it misses")
        assert await missed.get_by_role("listitem").count() == 5  # the groups holding anyone
        details = page.locator("details.cal-details")
        assert not await details.locator("table.cal-traits").is_visible()
        await _fits(page, "reports, tablet")
        await accessible(page, "reports")
        await shot(page, "reports-manager-tablet")
        await details.locator("summary").click()
        assert await details.locator("table.cal-traits").is_visible()
        assert await details.locator("table.cal-grid").count() == 4
        await _fits(page, "reports with the statistics open, tablet")
        await shot(page, "reports-statistics-tablet")

        # The same on a phone.
        await page.set_viewport_size(PHONE)
        await page.goto(f"{base}/staff/reports")
        await _fits(page, "reports, phone")
        await page.locator("details.cal-details summary").click()
        await _fits(page, "reports with the statistics open, phone")
        # Tables wider than a phone scroll in their own focusable box, never the page.
        boxes = page.locator(".table-wrap")
        assert await boxes.evaluate_all(
            "els => els.every(el => el.tabIndex === 0 && el.getAttribute('role') === 'region')"
        )
        wide = page.locator(".cal-details .table-wrap").first
        assert await wide.evaluate("el => el.scrollWidth > el.clientWidth") is True
        await accessible(page, "reports on a phone")
        await shot(page, "reports-manager-phone")

        # Hebrew, chosen on the account: right to left, every word the page's own.
        await page.get_by_label("Language").select_option("he")
        await page.get_by_role("button", name="Change").click()
        await page.wait_for_url(f"{base}/staff/reports")
        assert await page.evaluate("document.dir") == "rtl"
        assert await page.locator("h1").inner_text() == "דוחות"
        assert await page.get_by_role("img", name="נכנסו לסיכון, שבוע אחר שבוע").is_visible()
        assert (await page.locator(".cal-plain").inner_text()).startswith("המערכת מסמנת")
        assert await page.get_by_role(
            "list", name="את מי היא מוצאת, ואת מי היא מפספסת"
        ).is_visible()
        # Mirrored: the actions chart's bars start at the right edge of the chart.
        chart = await page.locator("svg#outcomes").bounding_box()
        bar = await page.locator("svg#outcomes rect.ch-bar").first.bounding_box()
        if bar is not None:  # a bar only once an action's episode has closed
            assert (
                chart is not None and abs(bar["x"] + bar["width"] - chart["x"] - chart["width"]) < 2
            )
        # The oldest week on the right: the first value label is right of the last.
        values = page.locator("svg#trend-at_risk text.tr-value")
        first, last = await values.first.bounding_box(), await values.last.bounding_box()
        assert first is not None and last is not None and first["x"] > last["x"]
        await page.locator("details.cal-details summary").click()
        await _fits(page, "reports in Hebrew, phone")
        await accessible(page, "reports in Hebrew on a phone")
        await shot(page, "reports-manager-he-phone")
        await page.set_viewport_size(TABLET)
        await page.goto(f"{base}/staff/reports")
        assert await page.evaluate("document.dir") == "rtl"
        await _fits(page, "reports in Hebrew, tablet")
        await accessible(page, "reports in Hebrew")
        await shot(page, "reports-manager-he-tablet")
        await context.close()
    assert errors == []


async def test_another_clubs_manager_sees_none_of_it_and_the_front_desk_is_refused(
    browser,  # noqa: F811 (the fixture of tests/page/test_browser.py)
    settings,
    sessions,
    tenant,
):
    club, report_id = await _club_with_actions_and_a_report(sessions, tenant)
    other = f"{tenant}-other"
    stranger = await add_staff(sessions, other, Role.MANAGER)
    desk = await add_staff(sessions, tenant, Role.FRONT_DESK)
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await _log_in(page, base, stranger)
        await page.goto(f"{base}/staff/reports")
        text = await page.locator("main").inner_text()
        assert "No calibration report yet" in text and "No episodes yet" in text
        assert await _column_total(page, 1) == 0 and await _column_total(page, 2) == 0
        assert 'value="north"' not in await page.content()
        answer = await page.goto(f"{base}/staff/reports/calibration/{report_id}")
        assert answer is not None and answer.status == 404
        await shot(page, "reports-other-club-phone")
        await context.close()

        context = await browser.new_context(viewport=TABLET)
        page = await context.new_page()
        await _log_in(page, base, desk)
        assert await page.get_by_role("link", name="Reports").count() == 0
        answer = await page.goto(f"{base}/staff/reports")
        assert answer is not None and answer.status == 403
        assert "Your role does not open this page." in await page.content()
        assert "Week by week" not in await page.content()
        await accessible(page, "reports refused")
        await shot(page, "reports-front-desk-refused-tablet")
        await context.close()
    assert club.alerts  # the club had data to hide
