"""The staff page's languages, pure: both catalogues have every key and the same
placeholders; counts take each language's forms; Hebrew dates; the browser's preference;
and the main pages rendered in Hebrew carry no English word (ids and data aside)."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

from api.page import access, i18n, reasons, routes, timeline, views
from api.page.listing import Paging
from api.read.actions import ActionOut
from api.read.alerts import AlertItem, Episode
from api.read.members import Member
from api.read.worklist import WorkItem, Worklist
from records.profiles import Profile
from records.tables import ActionRow
from schemas.alerts import Reason

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
TLV = ZoneInfo("Asia/Jerusalem")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_key_is_in_both_catalogues_with_the_same_placeholders():
    assert set(i18n.EN) == set(i18n.HE)
    for key, english in i18n.EN.items():
        assert i18n.HE[key].strip(), key
        assert _fields(english) == _fields(i18n.HE[key]), key
    assert set(i18n.NOUNS["en"]) == set(i18n.NOUNS["he"])


def test_counts_take_each_languages_forms():
    assert [i18n.plural("en", "alert", n) for n in (1, 2, 5)] == ["1 alert", "2 alerts", "5 alerts"]
    assert i18n.plural("en", "day", 1) == "1 day" and i18n.plural("en", "day", 1.5) == "1.5 days"
    assert [i18n.plural("he", "day", n) for n in (1, 2, 11)] == ["יום אחד", "יומיים", "11 ימים"]
    assert i18n.plural("he", "time", 2) == "פעמיים" and i18n.plural("en", "time", 3) == "3 times"
    assert reasons.days(1.0) == "1 day" and reasons.days(2.0, "he") == "יומיים"


def test_dates_in_hebrew_use_hebrew_month_names_and_western_digits():
    assert i18n.date_text("he", NOW, TLV, weekday=True) == "שבת, 5 בדצמבר 2026"
    assert i18n.date_text("en", NOW, TLV, weekday=True) == "Sat 5 Dec 2026"
    assert views.moment(NOW, TLV, "he") == "5 בדצמבר 2026, 11:30 IST"
    assert i18n.short_date("he", NOW - timedelta(days=30), TLV) == "5 בנובמבר"


def test_the_browsers_preference_by_quality_with_english_when_none_is_supported():
    assert i18n.from_accept_language("he-IL,he;q=0.9,en;q=0.8") == "he"
    assert i18n.from_accept_language("en-US,en;q=0.9,he;q=0.8") == "en"
    assert i18n.from_accept_language("fr;q=1,he;q=0.4,en;q=0.3") == "he"
    assert i18n.from_accept_language("iw") == "he"
    assert i18n.from_accept_language("he;q=0,fr") == "en"
    assert i18n.from_accept_language(None) == "en" and i18n.from_accept_language("") == "en"
    assert i18n.direction("he") == "rtl" and i18n.direction("en") == "ltr"


class _Text(HTMLParser):
    """The words a person reads or hears: text, and the attributes shown or spoken."""

    SPOKEN = (
        "aria-label",
        "placeholder",
        "title",
        "alt",
        "data-actions",
        "data-failed",
        "data-retry",
    )

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("code", "bdi", "option"):
            self._skip += 1
        self.words += [v for k, v in attrs if k in self.SPOKEN and v]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "bdi", "option"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.words.append(data)


# Words that stay Latin in a Hebrew page: the product's name, time zones, "CRM", "API".
LATIN_OK = {"Lapse", "IST", "IDT", "UTC", "CRM", "API"}


def english_left(html: str, *data: str) -> list[str]:
    """Latin words of two letters or more in the page's text, leaving out ``data`` (ids,
    names, sites: what the club typed) and the words that stay Latin in Hebrew."""
    parser = _Text()
    parser.feed(html)
    text = " ".join(parser.words)
    for value in data:
        text = text.replace(value, " ")
    return [w for w in re.findall(r"[A-Za-z][A-Za-z']+", text) if w not in LATIN_OK]


def _member(member_id: str, **more: object) -> Member:
    values: dict[str, object] = {
        "member_id": member_id,
        "site_id": "north",
        "status": "active",
        "last_visit": NOW - timedelta(days=40),
        "absent_since": NOW - timedelta(days=40),
        "days_absent": 40.0,
        "deadline": NOW - timedelta(days=10),
        "severity": "high",
        "open_episode": None,
        "usual_gap_days": 2.0,
        "visits_last_4_weeks": 1,
        "usual_visits_4_weeks": 14.0,
        "updated_at": NOW,
    }
    values.update(more)
    return Member.model_validate(values)


def _reasons() -> list[Reason]:
    return [
        Reason(code="absent_beyond_usual_rhythm", figures={"days_absent": 40, "usual_gap_days": 2}),
        Reason(
            code="visit_frequency_decline",
            figures={"visits_last_4_weeks": 1, "usual_visits_4_weeks": 14},
        ),
        Reason(
            code="risk_of_leaving",
            figures={
                "risk": 0.7,
                "risk_threshold": 0.5,
                "days_absent": 40,
                "usual_gap_days": 2,
                "visits_6_weeks_before": 2,
            },
        ),
        Reason(code="payment_failed"),
    ]


def test_the_work_list_in_hebrew_has_no_english_left():
    profile = Profile(
        member_id="m7",
        display_name="Dana Levi",
        phone="+972501234567",
        email="dana@example.org",
        updated_at=NOW,
    )
    todo = WorkItem(
        _member("m7", display_name="Dana Levi", profile=profile),
        "a1",
        NOW - timedelta(days=3),
        _reasons(),
    )
    clipped = _member(
        "m000099",
        absence_clipped=True,
        gate_data_since=NOW - timedelta(days=40),
        usual_gap_days=None,
        usual_visits_4_weeks=None,
        severity="medium",
    )
    called = ActionRow(
        id="x1",
        tenant_id="club",
        episode_id="ep2",
        alert_id="a2",
        member_id="m8",
        action="call",
        note=None,
        taken_at=NOW - timedelta(days=1),
        taken_by="k1",
    )
    contacted = WorkItem(_member("m8", severity="low"), "a2", NOW, actions=[called])
    # The whole work list: compact rows, a contacted row (its last contact), site names, a
    # site with a zone and one without, an order and risk level chosen, two pages.
    html = views.worklist_page(
        Worklist([todo, WorkItem(clipped, None, NOW)], [contacted]),
        tenant="club",
        csrf="tok",
        sites=["north", "south"],
        site=None,
        fixed_site=False,
        zones={"north": "Asia/Jerusalem"},
        notice=None,
        assets="1",
        query="Dana",
        names={"north": "North Club"},
        sort="absent",
        severity="high",
        paging=Paging(1, 2, 30, 25),
        counts=(29, 1),
        lang="he",
    )
    assert html.startswith('<!doctype html>\n<html lang="he" dir="rtl">')
    assert english_left(html, "Dana Levi", "m000099", "m8", "club") == []
    assert "עמוד 1 מתוך 2 (30 מנויים)" in html and "נעדר/ת 40 ימים" in html
    assert "קשר אחרון" in html and "<bdi>Dana Levi</bdi>" in html
    assert "לפני 40 ימים" not in html and "40 ימים" in html and "כל יומיים" in html
    assert "יום ד׳, 2 בדצמבר 2026" in html  # the episode's start, in Hebrew words
    # The same page in English says it all in English (the scan would see a miss).
    english = views.worklist_page(
        Worklist([todo], []),
        tenant="club",
        csrf="tok",
        sites=[],
        site=None,
        fixed_site=False,
        zones={},
        notice=None,
        assets="1",
    )
    assert '<html lang="en" dir="ltr">' in english and "At-risk members today" in english
    assert len(english_left(english, "Dana Levi")) > 50


def test_the_member_page_in_hebrew_has_no_english_left():
    m = _member("m000099", severity="high")
    alert = AlertItem(
        alert_id="al1",
        episode_id="ep1",
        type="at_risk",
        tenant_id="club",
        member_id="m000099",
        site_id="north",
        severity="high",
        policy="cadence",
        reasons=_reasons(),
        deadline=None,
        raised_at=NOW - timedelta(days=30),
        created_at=NOW - timedelta(days=30),
    )
    action = ActionOut(
        id="x1",
        episode_id="ep1",
        alert_id="al1",
        member_id="m000099",
        action="call",
        note="Left a message",
        taken_at=NOW - timedelta(days=1),
        taken_by="k1",
    )
    episodes = [
        Episode(
            episode_id="ep1",
            member_id="m000099",
            site_id="north",
            status="open",
            opened_at=NOW - timedelta(days=30),
            closed_at=None,
            severity="high",
            alerts=[alert],
            actions=[action],
        ),
        Episode(
            episode_id="ep0",
            member_id="m000099",
            site_id="north",
            status="recovered",
            opened_at=NOW - timedelta(days=90),
            closed_at=NOW - timedelta(days=80),
            severity="low",
            alerts=[],
            actions=[],
        ),
    ]
    visits = [NOW - timedelta(days=44), NOW - timedelta(days=42), NOW - timedelta(days=40)]
    data = timeline.TimelineData(
        now=NOW.timestamp(),
        visits=[v.timestamp() for v in visits],
        deadline=(NOW - timedelta(days=10)).timestamp(),
        usual_minutes=55.0,
        episodes=[
            timeline.EpisodeSpan(
                (NOW - timedelta(days=30)).timestamp(),
                None,
                "open",
                "high",
                [((NOW - timedelta(days=1)).timestamp(), "call")],
            )
        ],
    )

    def label(t: float) -> str:
        return i18n.short_date("he", datetime.fromtimestamp(t, UTC), TLV)

    html = views.member_page(
        m,
        state={
            "first_visit": (NOW - timedelta(days=200)).timestamp(),
            "visits": 80,
            "usual_minutes": 55.0,
        },
        episodes=episodes,
        timeline_svg=timeline.render(data, label, lang="he"),
        timeline_text=timeline.describe(data, label, "he"),
        visits=visits,
        tz=TLV,
        tenant="club",
        csrf="tok",
        notice=i18n.t("he", "notice.recorded", action="התקשרתי"),
        assets="1",
        lang="he",
    )
    assert '<html lang="he" dir="rtl">' in html
    assert english_left(html, "m000099", "club", "north", "Left a message") == []
    assert "<bdi>מנוי m000099</bdi>" in html  # the id isolated inside the Hebrew title
    assert "3 ביקורים אחרונים מ־22 באוקטובר עד 26 באוקטובר" in html  # the chart's caption


def test_the_login_page_in_hebrew_has_no_english_left():
    html = views.login("tok", i18n.t("he", "error.refused"), "1", lang="he")
    assert '<html lang="he" dir="rtl">' in html
    assert english_left(html) == []
    assert english_left(views.login("tok", None, "1")) != []


def test_every_refusal_the_routes_write_has_its_hebrew_words():
    # The routes' refusals and the checks every route shares (the form, the role, a login).
    source = Path(routes.__file__).read_text() + Path(access.__file__).read_text()
    refusals = re.findall(r'\brefuse\(\s*request,\s*\d+,\s*"([^"]+)",\s*"([^"]+)"', source)
    assert len(refusals) >= 10
    for title, detail in refusals:
        for text in (title, detail):
            assert i18n.refusal("he", text) != text, text
    assert i18n.refusal("he", "something new") == "something new"
