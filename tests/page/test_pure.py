"""The page's pure parts: session tokens, reason texts, the timeline and the outcome chart."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from api.page import charts, reasons, session, timeline
from api.read.outcomes import ActionStats
from schemas.units import DAY

KEY = b"k" * 32


def test_a_session_token_names_the_key_id_and_is_bound_to_its_secret():
    token, held = session.issue(KEY, "key-1", 1000.0, 3600.0)
    assert session.verify(KEY, token, 1001.0) == held
    assert held.key_id == "key-1" and held.expires_at == 4600
    assert session.verify(KEY, token, 4600.0) is None  # expired
    assert session.verify(b"x" * 32, token, 1001.0) is None  # another secret
    body, _, mac = token.partition(".")
    forged = body.replace(body[5], "A" if body[5] != "A" else "B", 1)
    assert session.verify(KEY, f"{forged}.{mac}", 1001.0) is None
    for junk in ("", ".", "abc", "a.b.c", "!!!.???", "x" * 2000):
        assert session.verify(KEY, junk, 1001.0) is None


def test_csrf_tokens_are_per_login_and_login_tokens_per_form():
    _, one = session.issue(KEY, "key-1", 1000.0, 3600.0)
    _, two = session.issue(KEY, "key-1", 1000.0, 3600.0)
    token = session.csrf_token(KEY, one)
    assert session.csrf_ok(KEY, one, token)
    assert not session.csrf_ok(KEY, two, token)  # another login of the same key
    assert not session.csrf_ok(KEY, one, "")
    nonce = session.login_nonce()
    assert session.login_ok(KEY, nonce, session.login_token(KEY, nonce))
    assert not session.login_ok(KEY, None, session.login_token(KEY, nonce))
    assert not session.login_ok(KEY, session.login_nonce(), session.login_token(KEY, nonce))


def test_the_configured_secret_is_stable_and_an_empty_one_random_per_process():
    assert session.session_key("s3cret") == session.session_key("s3cret")
    assert session.session_key("s3cret") != session.session_key("other")
    assert session.session_key("") == session.session_key("") != session.session_key("s3cret")


def test_every_reason_code_reads_as_a_sentence_with_its_figures():
    figures = {
        "days_absent": 34.0,
        "usual_gap_days": 3.5,
        "threshold_days": 21.0,
        "visits_last_4_weeks": 2,
        "usual_visits_4_weeks": 8.0,
        "p_alive": 0.31,
        "p_threshold": 0.5,
        "usual_minutes": 60,
        "recent_minutes": 25,
    }
    expected = {
        "absent_beyond_usual_rhythm": "34 days without a visit; usually every 3.5 days",
        "absent_beyond_threshold": "the club's limit is 21 days",
        "probability_active_low": "31% (alert below 50%)",
        "visit_frequency_decline": "2 visits in the last 4 weeks; usually 8",
        "visit_duration_decline": "about 25 min; usually 60 min",
        "entry_denied": "refused their card",
        "payment_failed": "payment did not go through",
    }
    for code, words in expected.items():
        assert reasons.title(code) != code
        assert words in reasons.detail(code, figures), code
    assert reasons.title("brand_new_code") == "Brand new code"
    assert reasons.detail("brand_new_code", {"x": 1}) == "Reason code brand_new_code: x 1."
    assert reasons.detail("absent_beyond_threshold", {}) == (
        "Raised after ? without a visit; the club's limit is ?."
    )


def test_a_sign_is_dated_today_or_in_whole_days_back():
    """A failed payment the same day is "today", not "0 days ago"; an age in tenths of a day
    is a whole number of days back (the figure itself stays exact in the alert)."""
    assert reasons.ago(0.0) == reasons.ago(0.6) == "today"
    assert reasons.ago(1.2) == "1 day ago" and reasons.ago(6.6) == "7 days ago"
    assert reasons.ago(2.0, "he") == "לפני יומיים" and reasons.ago(0.2, "he") == "היום"
    payment = {"days_absent": 14.0, "warning_days_ago": 0.0}
    assert reasons.detail("absent_after_payment_problem", payment) == (
        "A failed payment or a refused entry today; away 14 days."
    )
    risk = {"risk": 0.83, "risk_threshold": 0.8, "days_absent": 21.0, "warning_days_ago": 9.4}
    assert "A failed payment or a refused entry 9 days ago." in reasons.detail(
        "risk_of_leaving", risk
    )


def _label(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%-d %b")


def test_the_timeline_marks_each_kept_visit_the_deadline_and_episodes():
    now = 1_800_000_000.0
    visits = [now - (40 + 3 * k) * DAY for k in range(11, -1, -1)]
    data = timeline.TimelineData(
        now=now,
        visits=visits,
        deadline=now - 19 * DAY,
        usual_minutes=60.0,
        episodes=[
            timeline.EpisodeSpan(now - 19 * DAY, None, "open", "medium", [(now - DAY, "call")]),
            timeline.EpisodeSpan(now - 300 * DAY, now - 280 * DAY, "recovered", "medium"),
            timeline.EpisodeSpan(now - 900 * DAY, now - 800 * DAY, "churned", "high"),
        ],
    )
    svg = timeline.render(data, _label)
    assert svg.count('class="tl-visit"') == 12
    assert svg.count('class="tl-deadline"') == 1 and svg.count('class="tl-now"') == 1
    assert "tl-ep-open" in svg and "tl-ep-recovered" in svg and 'class="tl-action"' in svg
    assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg
    xs = [float(x) for x in re.findall(r'class="tl-visit" x="([\d.]+)"', svg)]
    assert xs == sorted(xs) and len(set(xs)) == 12  # in time order, apart
    lo, hi = timeline.span(data)
    assert hi - lo <= (timeline.MAX_BACK_DAYS + 30) * DAY  # a year back at most: clipped
    # The one-line description says what the chart shows.
    text = timeline.describe(data, _label)
    assert "12 recent visits" in text and "absent 40 d" in text and "3 episodes (1 open)" in text


def test_the_timeline_of_a_member_with_no_visit_kept():
    data = timeline.TimelineData(now=1e9, visits=[], deadline=None, usual_minutes=None, episodes=[])
    svg = timeline.render(data, _label)
    assert "tl-visit" not in svg and "tl-deadline" not in svg
    assert timeline.describe(data, _label) == "no visit on record."


def test_outcome_bars_are_as_long_as_the_rate_and_absent_without_closed_episodes():
    rows = [
        ActionStats("call", 1654, 1622, 32, 0, 0.98, 4.0),
        ActionStats("message", 3, 0, 0, 3, None, None),
        ActionStats("none", 20, 5, 5, 10, 0.5, None),
    ]
    svg = charts.outcome_bars(rows)
    bars = re.findall(r'class="ch-bar ch-(\w+)" x="([\d.]+)%" y="[\d.]+" width="([\d.]+)%"', svg)
    assert bars == [
        ("call", "0", f"{0.98 * charts.BAR_MAX:g}"),
        ("none", "0", f"{0.5 * charts.BAR_MAX:g}"),
    ]
    # The whole count on the name's own line (issue 20: "98% came back (1622 of 1" was cut
    # at the chart's edge), the share beside the bar, which leaves room for "100%".
    assert "Called · 1622 of 1654 came back</text>" in svg and ">98%</text>" in svg
    assert "no closed episode yet" in svg and charts.BAR_MAX <= 85
    table = charts.outcome_table(rows)
    assert table.count("<tr>") == 4 and "<caption>" in table and "<td>4.0</td>" in table


def test_outcome_bars_grow_from_the_right_in_hebrew():
    svg = charts.outcome_bars([ActionStats("call", 10, 6, 2, 2, 0.75, 4.0)], lang="he")
    start = 100 - 0.75 * charts.BAR_MAX
    assert f'x="{start:g}%" y="26" width="{0.75 * charts.BAR_MAX:g}%"' in svg
    assert 'direction="rtl"' in svg and "שיחת טלפון · 6 מתוך 8 חזרו" in svg
