"""A manager proves whether reaching out works, in a real browser (Playwright, Debian's
Chromium, real uvicorn and PostgreSQL; issue 22 on the reports page): reads the uplift in
plain words, sets a 10 % control group with a reason and sees it stated (and recorded as
set by their account), then reads the same in Hebrew, right to left, on a tablet and a
375 px phone without sideways scrolling, axe-checked. The front desk cannot set it; another
club's manager sees none of it and cannot touch it. Screenshots in ``test-artifacts/page/``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Page
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.read.uplift import read_uplift
from records import holdout
from records.outbox import add_alerts
from records.staff_accounts import Role
from records.tables import ActionRow, HoldoutPeriodRow, StaffAccount
from schemas import Alert
from schemas.holdout import CONTROL, arm_for
from tests.api.support import serve
from tests.page.a11y import accessible
from tests.page.support import add_staff
from tests.page.test_browser import ARTIFACTS, TABLET, browser, shot  # noqa: F401
from tests.page.test_reports_browser import PHONE, _fits, _log_in, _open_reports

SHARE_THEN = 0.3
EPISODES = 150


async def _past_holdout(
    sessions: async_sessionmaker[AsyncSession], tenant: str, now: datetime
) -> None:
    """A control group of 30 % that ran from 220 to 100 days ago, and the episodes opened in
    it: stored through ``add_alerts`` (which draws each arm as the detector's alerts get it;
    stored as withheld, so nothing waits in the shared outbox), the contacted ones called
    the next day; 70 % of the contacted and 40 % of the control members came back."""
    start = now - timedelta(days=220)
    async with sessions() as s:
        await holdout.set_share(s, tenant, SHARE_THEN, by="seed", reason="first pilot", now=start)
        await holdout.stop(s, tenant, by="seed", now=now - timedelta(days=100))
        alerts: list[Alert] = []
        calls: list[tuple[Alert, datetime]] = []
        for i in range(EPISODES):
            episode = str(uuid.uuid4())
            opened = start + timedelta(hours=20 * i + 1)
            control = arm_for(episode, SHARE_THEN) == CONTROL
            rank = i % 10
            common: dict[str, Any] = {
                "episode_id": episode,
                "tenant_id": tenant,
                "member_id": f"u{i:03d}",
                "site_id": "north" if i % 3 else "south",
                "severity": "high" if i % 4 == 0 else "medium",
                "policy": "cadence",
                "reasons": [],
                "deadline": None,
            }
            first = Alert(alert_id=str(uuid.uuid4()), type="at_risk", raised_at=opened, **common)
            alerts.append(first)
            if rank < (4 if control else 7):
                back = opened + timedelta(days=5)
                alerts.append(
                    Alert(alert_id=str(uuid.uuid4()), type="recovered", raised_at=back, **common)
                )
            if not control:
                calls.append((first, opened + timedelta(days=1)))
        await add_alerts(s, alerts, withheld=True)
        await s.flush()
        for alert, at in calls:
            s.add(
                ActionRow(
                    id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    episode_id=alert.episode_id,
                    alert_id=alert.alert_id,
                    member_id=alert.member_id,
                    action="call",
                    note=None,
                    taken_at=at,
                    taken_by="seed",
                )
            )
        await s.commit()


async def _in_force(sessions: async_sessionmaker[AsyncSession], tenant: str) -> HoldoutPeriodRow:
    async with sessions() as s:
        row = await holdout.current(s, tenant)
    assert row is not None
    return row


async def _section_shot(page: Page, name: str) -> None:
    """The uplift section alone (the full-page shots are long on a phone)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.locator("section.uplift").screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def _plain(page: Page) -> str:
    return re.sub(r"\s+", " ", await page.locator(".up-plain").inner_text())


async def test_a_manager_sets_a_ten_percent_control_group_and_reads_the_uplift(
    browser,  # noqa: F811 (the fixture of tests/page/test_browser.py)
    settings,
    sessions,
    tenant,
):
    now = datetime.now(UTC)
    await _past_holdout(sessions, tenant, now)
    async with sessions() as s:
        expected = (await read_uplift(s, tenant, as_of=now)).report
    manager = await add_staff(sessions, tenant, Role.MANAGER)
    async with serve(create_app(settings, deliver=False)) as base:
        context, page, errors = await _open_reports(browser, base, manager)

        # Plain words first: the API's verdict as a sentence, and what it rests on.
        section = page.locator("section.uplift")
        assert await section.locator("h2").inner_text() == "Does reaching out work?"
        verdict = expected.overall.verdict
        assert await section.locator(".verdict").inner_text() == (
            f"{verdict[0].upper()}{verdict[1:]}."
        )
        plain = await _plain(page)
        assert f"Based on {expected.settled} settled episodes" in plain
        contact = expected.overall.contact
        assert f"Contacted: {contact.back} of {contact.episodes} (" in plain
        # The figures are folded away until asked for.
        fold = section.locator("details.up-details")
        assert not await fold.locator("table.uplift-severity").is_visible()

        # The control group: off now, its past period listed; set 10 % with a reason.
        control = page.locator(".holdout-control")
        assert (await control.locator("#holdout-state").inner_text()).startswith("Off:")
        assert await control.locator("form.hold-stop").count() == 0
        await page.get_by_label("Share of new episodes to hold back").select_option("10")
        await page.get_by_label("Reason (kept with the change)").fill("pilot at north")
        await page.get_by_role("button", name="Set the control group").click()
        await page.wait_for_url(re.compile(r".*/staff/reports\?holdout=set.*"))
        assert await page.locator("#holdout-done").inner_text() == (
            "Saved: from now on 10 % of new episodes are held back."
        )
        state = await page.locator("#holdout-state").inner_text()
        today = datetime.now(UTC).strftime("%-d %b %Y")
        assert state.startswith(f"On: 10 % of new episodes are held back since {today}.")
        assert f"Set by {manager}." in state and "Reason: pilot at north" in state
        row = await _in_force(sessions, tenant)
        async with sessions() as s:
            account = await s.scalar(select(StaffAccount).where(StaffAccount.login == manager))
        assert account is not None
        assert (row.share, row.set_by, row.reason) == (0.1, account.id, "pilot at north")
        await page.locator("details.hold-history summary").click()
        history = await page.locator("details.hold-history li").all_inner_texts()
        assert len(history) == 2 and history[1].startswith("30 % from ")
        assert "set by seed, ended by seed. Reason: first pilot" in history[1]
        await _fits(page, "reports with the control group, tablet")
        await accessible(page, "reports with the control group")
        await shot(page, "uplift-manager-tablet")
        await fold.locator("summary").click()
        assert await fold.locator("table.uplift-severity").is_visible()
        assert await fold.locator("table.uplift-site tbody tr").count() == 2
        assert await fold.locator("table.uplift-action tbody th").first.inner_text() == "Called"
        await _fits(page, "the uplift's figures open, tablet")
        await shot(page, "uplift-figures-tablet")

        # A phone: the page fits; the tables fit too (four columns, counts under shares).
        await page.set_viewport_size(PHONE)
        await page.goto(f"{base}/staff/reports")
        await page.locator("details.up-details summary").click()
        await _fits(page, "the uplift on a phone")
        wide = await page.locator(".up-details .table-wrap").evaluate_all(
            "els => els.filter(el => el.scrollWidth > el.clientWidth + 1)"
            ".map(el => [el.querySelector('table').className, el.scrollWidth, el.clientWidth,"
            " [...el.querySelectorAll('thead th')].map(th => th.offsetWidth)])"
        )
        assert wide == [], f"uplift tables scroll sideways on a 375 px phone: {wide}"
        await accessible(page, "the uplift on a phone")
        await shot(page, "uplift-manager-phone")
        await _section_shot(page, "uplift-section-phone")

        # Hebrew, chosen on the account: right to left, the same figures.
        await page.get_by_label("Language").select_option("he")
        await page.get_by_role("button", name="Change").click()
        await page.wait_for_url(f"{base}/staff/reports")
        assert await page.evaluate("document.dir") == "rtl"
        assert await section.locator("h2").inner_text() == "האם הפנייה למנויים עובדת?"
        assert (await section.locator(".verdict").inner_text()).startswith(
            ("הוכח", "עדיין לא הוכח", "לא הוכח")
        )
        assert f"על סמך {expected.settled} אירועים שהוכרעו" in await _plain(page)
        state = await page.locator("#holdout-state").inner_text()
        assert state.startswith("פעילה: 10 % מהאירועים החדשים לא מטופלים מאז")
        await page.locator("details.up-details summary").click()
        await _fits(page, "the uplift in Hebrew, phone")
        await accessible(page, "the uplift in Hebrew on a phone")
        await shot(page, "uplift-manager-he-phone")
        await _section_shot(page, "uplift-section-he-phone")
        await page.set_viewport_size(TABLET)
        await page.goto(f"{base}/staff/reports")
        await page.locator("details.up-details summary").click()
        await _fits(page, "the uplift in Hebrew, tablet")
        await accessible(page, "the uplift in Hebrew")
        await shot(page, "uplift-manager-he-tablet")

        # Stop it, in Hebrew: the period ends, recorded as ended by the account.
        await page.get_by_role("button", name="עצירת קבוצת הביקורת").click()
        await page.wait_for_url(re.compile(r".*/staff/reports\?holdout=stop.*"))
        assert (await page.locator("#holdout-state").inner_text()).startswith("כבויה")
        async with sessions() as s:
            assert await holdout.current(s, tenant) is None
            ended = await s.get(HoldoutPeriodRow, row.id)
            assert ended is not None and ended.ended_by == account.id
        await context.close()
    assert errors == []


async def test_the_front_desk_cannot_set_it_and_another_club_sees_nothing(
    browser,  # noqa: F811 (the fixture of tests/page/test_browser.py)
    settings,
    sessions,
    tenant,
):
    now = datetime.now(UTC)
    await _past_holdout(sessions, tenant, now)
    async with sessions() as s:
        await holdout.set_share(s, tenant, 0.1, by="seed", reason="secret pilot", now=now)
        await s.commit()
    desk = await add_staff(sessions, tenant, Role.FRONT_DESK)
    stranger = await add_staff(sessions, f"{tenant}-other", Role.MANAGER)
    async with serve(create_app(settings, deliver=False)) as base:
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await _log_in(page, base, desk)
        csrf = await page.locator("form.logout input[name=csrf]").get_attribute("value")
        assert csrf
        for path, form in (
            ("/staff/reports/holdout", {"csrf": csrf, "share": "50", "reason": "mine now"}),
            ("/staff/reports/holdout/stop", {"csrf": csrf, "reason": "no"}),
        ):
            answer = await context.request.post(f"{base}{path}", form=form, max_redirects=0)
            assert answer.status == 403, path
            assert "Your role does not open this page." in await answer.text()
        assert (await _in_force(sessions, tenant)).share == 0.1
        answer = await page.goto(f"{base}/staff/reports")
        assert answer is not None and answer.status == 403
        await context.close()

        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await _log_in(page, base, stranger)
        await page.goto(f"{base}/staff/reports")
        text = await page.locator("section.uplift").inner_text()
        assert "No control group yet" in text and "Off:" in text
        assert "secret pilot" not in await page.content()
        assert await page.locator("details.hold-history").count() == 0
        # Their own forms act on their own club only.
        await page.get_by_label("Reason (kept with the change)").fill("our own pilot")
        await page.get_by_role("button", name="Set the control group").click()
        await page.wait_for_url(re.compile(r".*holdout=set.*"))
        row = await _in_force(sessions, tenant)
        assert (row.share, row.reason) == (0.1, "secret pilot")
        assert (await _in_force(sessions, f"{tenant}-other")).reason == "our own pilot"
        await _fits(page, "another club's reports, phone")
        await accessible(page, "another club's reports")
        await shot(page, "uplift-other-club-phone")
        await context.close()
