"""The demo's stand-in CRM words each alert as the staff page does (one wording per code)."""

from __future__ import annotations

from api.page.reasons import detail, title
from lapse.demo import _describe


def test_the_demo_says_an_alerts_first_reason_as_the_page_does() -> None:
    figures = {"risk": 0.62, "risk_threshold": 0.5, "visits_6_weeks_before": 3.0,
               "usual_visits_6_weeks": 9.0}  # fmt: skip
    alert = {"type": "at_risk", "reasons": [{"code": "risk_of_leaving", "figures": figures}]}
    text = _describe(alert)
    assert text == f"{title('risk_of_leaving')}: {detail('risk_of_leaving', figures)}"
    assert "Came 3 times in the 6 weeks before; usually 9" in text
    # Recoveries and cancellations carry no reason worth a line in the demo.
    assert _describe({"type": "recovered", "reasons": alert["reasons"]}) == ""
