"""The score's edges: alerts after the horizon's cutoff catch leavers but are not counted."""

from __future__ import annotations

from datetime import UTC, datetime

from offline.calibration.scoring import Outcome, score
from schemas import Alert
from schemas.units import DAY
from tests.support import at_risk

START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
END = START + 200 * DAY
CUTOFF = END - 30 * DAY


def _alert(member: str, t: float) -> Alert:
    return at_risk(member, datetime.fromtimestamp(t, UTC))


def _score(alerts: list[Alert], outcomes: dict[str, Outcome]) -> tuple[int, int, int, int]:
    last = {m: o.last_visit for m, o in outcomes.items()}
    s = score("p", alerts, last, outcomes, start=START, end=END, min_lead_days=14.0)
    return s.alerts, s.true_alerts, s.dropouts, s.caught


def test_an_alert_after_the_cutoff_catches_a_leaver_gone_before_it() -> None:
    # Last visit 20 days before the cutoff, alerted 45 days after it, cancelled long after.
    gone = Outcome("a", CUTOFF - 20 * DAY, END + 60 * DAY)
    assert _score([_alert("a", CUTOFF + 25 * DAY)], {"a": gone}) == (0, 0, 1, 1)
    # ... not after the history's end, nor with less than 14 days' lead.
    assert _score([_alert("a", END + DAY)], {"a": gone}) == (0, 0, 1, 0)
    quick = Outcome("a", CUTOFF - 20 * DAY, CUTOFF + 30 * DAY)
    assert _score([_alert("a", CUTOFF + 20 * DAY)], {"a": quick}) == (0, 0, 1, 0)
    # Before the cutoff the alert also counts in precision.
    assert _score([_alert("a", CUTOFF - DAY)], {"a": gone}) == (1, 1, 1, 1)


def test_leavers_gone_after_the_cutoff_and_false_alarms_after_it_are_not_scored() -> None:
    late = Outcome("b", CUTOFF + DAY, None)
    assert _score([_alert("b", CUTOFF + 10 * DAY)], {"b": late}) == (0, 0, 0, 0)
    stayer = Outcome("c", None, None)
    last: dict[str, float | None] = {"c": CUTOFF + 5 * DAY}  # came back after a false alarm
    alerts = [_alert("c", CUTOFF - DAY), _alert("c", CUTOFF + DAY)]
    s = score("p", alerts, last, {"c": stayer}, start=START, end=END, min_lead_days=14.0)
    assert (s.alerts, s.true_alerts, s.dropouts) == (1, 0, 0)
