"""The reports page's uplift section and holdout control (api/page/uplift.py), pure: the
verdict in plain words (the API's words, in English and Hebrew), the figures behind a fold,
values escaped, what to do with no control group yet, and who may change the control group."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.page import holdout as holdout_routes
from api.page import i18n
from api.page.uplift import change_refusal, holdout_control, section, verdict_text
from api.read.holdout import HoldoutOut, Period
from api.read.uplift import UpliftRead
from api.uplift_stats import Episode, report
from records.staff_accounts import Role
from schemas.holdout import MAX_REASON, HoldoutPeriod
from schemas.units import DAY
from tests.page.test_i18n import english_left

START = datetime(2026, 1, 1, tzinfo=UTC)


def _episodes(contact: int = 320, control: int = 80, back_contact: float = 0.6) -> list[Episode]:
    """``contact`` contacted episodes of which ``back_contact`` came back, ``control`` held
    back of which 30 % came back; one site, one severity, the contacted ones called."""
    out = []
    for i in range(contact + control):
        arm = "contact" if i < contact else "control"
        j = i if arm == "contact" else i - contact
        back = j < round(contact * back_contact) if arm == "contact" else j < round(control * 0.3)
        out.append(
            Episode(
                episode_id=f"e{i}",
                arm=arm,  # type: ignore[arg-type]
                opened_at=START.timestamp(),
                returned_at=START.timestamp() + 3 * DAY if back else None,
                cancelled_at=None,
                severity="medium",
                site="<script>alert(1)</script>",
                action="call" if arm == "contact" else None,
                policy="risk",
                period=START.isoformat(),
                share=0.2,
            )
        )
    return out


def _read(episodes: list[Episode]) -> UpliftRead:
    return UpliftRead(
        report(episodes, START.timestamp() + 90 * DAY), [HoldoutPeriod(START, None, 0.2)], 3
    )


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).replace("&#x27;", "'")


def test_the_verdict_comes_first_and_the_figures_sit_behind_a_fold() -> None:
    read = _read(_episodes())
    html = section(read)
    verdict = read.report.overall.verdict
    assert verdict.startswith("proven: reaching out brings back about 30 more")
    # The API's words, as a sentence; the figures in <bdi>.
    assert f"{verdict[0].upper()}{verdict[1:]}." in _text(html)
    assert "about <bdi>30</bdi> more members" in html
    assert html.index('class="verdict"') < html.index("<details")
    assert "<bdi>400 settled episodes</bdi>" in html
    assert "Contacted: <bdi>192 of 320 (60%)</bdi> came back." in html
    assert "<bdi>24 of 80 (30%)</bdi> came back." in html
    fold = html[html.index("<details") : html.index("</details>")]
    # Five narrow tables: all and by period, risk level, site, first action, policy.
    assert fold.count("<table") == 5 and fold.count("<tr>") == 5 + 2 + 1 + 1 + 1 + 1
    rows = [r for r in re.findall(r"<tr>.*?</tr>", fold) if 'scope="row"' in r]
    assert len(rows) == 6 and all(row.count("<td>") == 3 for row in rows)
    assert "left out: <bdi>3</bdi>" in fold  # opened while no holdout was on
    assert "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("contact", "control", "back_contact"),
    [(320, 80, 0.6), (60, 15, 0.45), (320, 80, 0.3), (320, 80, 0.1), (0, 10, 0.5)],
)
def test_each_verdict_says_what_the_api_says(contact: int, control: int, back_contact: float):
    overall = _read(_episodes(contact, control, back_contact)).report.overall
    api = overall.verdict
    page = _text(verdict_text(overall, "en"))
    assert page == f"{api[0].upper()}{api[1:]}.", (page, api)
    hebrew = verdict_text(overall, "he")
    assert english_left(hebrew) == [] and hebrew.startswith(("הוכח", "עדיין לא", "לא הוכח"))


@pytest.mark.parametrize(("cancelled_arm", "words"), [("control", "kept"), ("contact", "fewer")])
def test_months_kept_are_said_with_their_sign(cancelled_arm: str, words: str) -> None:
    """Members of one arm cancel 10 days in; the others stay: months kept, or fewer."""
    eps = [
        replace(ep, cancelled_at=ep.opened_at + 10 * DAY, returned_at=None)
        if ep.arm == cancelled_arm
        else ep
        for ep in _episodes()
    ]
    read = _read(eps)
    months = read.report.overall.months_kept_per_100
    assert months is not None and abs(round(months)) >= 1
    assert (months > 0) == (words == "kept")
    html = section(read)
    assert f"About <bdi>{abs(round(months)):,}</bdi> member-months {words} per 100" in html
    assert "-" not in _text(html).split("member-months")[0].rsplit("About", 1)[1]


def test_in_hebrew_no_english_is_left_and_numbers_sit_in_bdi() -> None:
    now = Period(start=START, end=None, share=0.1, set_by="a1", reason="לנסות", ended_by=None)
    control = holdout_control(
        HoldoutOut(active=True, share=0.1, since=START, periods=[now]),
        {"a1": ("account", "דנה")},
        csrf="tok",
        lang="he",
    )
    html = section(_read(_episodes()), lang="he", control=control)
    assert english_left(html, "&lt;script&gt;alert(1)&lt;/script&gt;") == []
    assert "הוכח: הפנייה מחזירה בערך <bdi>30</bdi> מנויים נוספים מכל 100" in html
    assert "<bdi>400 אירועים שהוכרעו</bdi>" in html
    assert "פעילה: <bdi>10 %</bdi> מהאירועים החדשים לא מטופלים מאז <bdi>1 בינואר 2026</bdi>" in html
    assert '<td><bdi dir="ltr">+30</bdi>' in html


def test_without_a_control_group_it_says_how_to_start_one() -> None:
    off = HoldoutOut(active=False, share=0.0, since=None, periods=[])
    control = holdout_control(off, {}, csrf="tok")
    html = section(UpliftRead(report([], START.timestamp()), [], 0), control=control)
    assert "No control group yet" in html and "<details" not in html
    assert "Off: every new episode goes on the contact list." in html
    assert 'action="/staff/reports/holdout"' in html and "/holdout/stop" not in html
    assert '<option value="10" selected>10 %</option>' in html
    assert html.index("No control group yet") < html.index("<form")


def test_the_control_states_the_share_who_set_it_and_every_change() -> None:
    earlier = Period(
        start=START - timedelta(days=30),
        end=START,
        share=0.2,
        set_by="k1",
        reason="first try",
        ended_by="a1",
    )
    now = Period(start=START, end=None, share=0.125, set_by="a1", reason="<b>", ended_by=None)
    state = HoldoutOut(active=True, share=0.125, since=START, periods=[now, earlier])
    who = {"a1": ("account", "Dana"), "k1": ("key", "set-up")}
    html = holdout_control(state, who, csrf="tok", done="set")
    assert "Saved: from now on <bdi>12.5 %</bdi> of new episodes are held back." in html
    assert (
        "On: <bdi>12.5 %</bdi> of new episodes are held back since <bdi>1 Jan 2026</bdi>. "
        "Set by <bdi>Dana</bdi>. Reason: <bdi>&lt;b&gt;</bdi>" in html
    )
    # A share set through the API that the form does not list is still offered, selected.
    assert '<option value="12.5" selected>12.5 %</option>' in html
    assert 'action="/staff/reports/holdout/stop"' in html
    assert (
        "<bdi>20 %</bdi> from <bdi>2 Dec 2025</bdi> to <bdi>1 Jan 2026</bdi>: set by "
        "<bdi>API key set-up</bdi>, ended by <bdi>Dana</bdi>. Reason: <bdi>first try</bdi>"
    ) in html
    refused = holdout_control(state, who, csrf="tok", refusal="role")
    assert "<form" not in refused and "needs a manager's account" in _text(refused)
    assert "On: <bdi>12.5 %</bdi>" in refused


def test_who_may_change_the_control_group() -> None:
    assert change_refusal(Role.MANAGER, False, None) is None
    assert change_refusal(Role.ADMIN, False, None) is None
    assert change_refusal(Role.FRONT_DESK, False, None) == "role"
    # A key session: only with the admin scope (as PUT /v1/holdout), never bound to a site.
    assert change_refusal(Role.MANAGER, True, None) == "role"
    assert change_refusal(Role.ADMIN, True, None) is None
    assert change_refusal(Role.ADMIN, True, "north") == "site"


def test_every_refusal_of_the_holdout_routes_has_its_hebrew_words() -> None:
    source = Path(holdout_routes.__file__).read_text()
    # The detail may be an f-string naming the reason's limit (schemas.holdout.MAX_REASON):
    # its words are looked up as shown, so a changed limit needs its translation changed too.
    call = r'\brefuse\(\s*request,\s*\d+,\s*"([^"]+)",\s*((?:f?"[^"]+"\s*)+),?\s*\)'
    found = re.findall(call, source)
    assert len(found) == 4
    for title, detail in found:
        text = "".join(re.findall(r'"([^"]+)"', detail))
        text = text.replace("{MAX_REASON}", str(MAX_REASON))
        for words in (title, text):
            assert i18n.refusal("he", words) != words, words
