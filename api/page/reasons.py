"""Reason codes in words front-desk staff read at a glance, with the figures behind them.

Codes and figures are the alert contract's (``schemas.alerts.Reason``); a code this page
does not know yet is still shown, as its code, rather than hidden.
"""

from __future__ import annotations

from collections.abc import Mapping

Figures = Mapping[str, float | int | str | None]

TITLES = {
    "absent_beyond_usual_rhythm": "Absent longer than usual for them",
    "absent_beyond_threshold": "Absent longer than the club's limit",
    "probability_active_low": "Unlikely to still be active",
    "risk_of_leaving": "Likely not coming back",
    "visit_frequency_decline": "Visiting less often",
    "visit_duration_decline": "Shorter visits",
    "entry_denied": "Refused entry at the gate",
    "payment_failed": "A payment failed",
    "member_recovered": "Came back",
    "member_churned": "Cancelled",
}


def _num(value: float | int | str | None) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def days(value: float | None) -> str:
    if value is None:
        return "?"
    shown = f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{shown} day" if shown == "1" else f"{shown} days"


def _count(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def title(code: str) -> str:
    return TITLES.get(code, code.replace("_", " ").capitalize())


def detail(code: str, figures: Figures) -> str:
    """One sentence with the figures that made the detector raise this reason."""
    f = {k: _num(v) for k, v in figures.items()}
    absent, usual = f.get("days_absent"), f.get("usual_gap_days")
    if code == "absent_beyond_usual_rhythm":
        text = f"Raised after {days(absent)} without a visit"
        if usual is not None:
            text += f"; usually every {days(usual)}"
        if f.get("threshold_days") is not None:
            text += f" (normal for them: up to {days(f['threshold_days'])})"
        return text + "."
    if code == "absent_beyond_threshold":
        club_limit = days(f.get("threshold_days"))
        return f"Raised after {days(absent)} without a visit; the club's limit is {club_limit}."
    if code == "probability_active_low":
        p, limit = f.get("p_alive"), f.get("p_threshold")
        shown = "?" if p is None else f"{p:.0%}"
        text = f"Estimated chance they still visit: {shown}"
        return text + (f" (alert below {limit:.0%})." if limit is not None else ".")
    if code == "risk_of_leaving":
        return _risk(f)
    if code == "visit_frequency_decline":
        return (
            f"{_count(f.get('visits_last_4_weeks'))} visits in the last 4 weeks; "
            f"usually {_count(f.get('usual_visits_4_weeks'))}."
        )
    if code == "visit_duration_decline":
        return (
            f"Recent visits last about {_count(f.get('recent_minutes'))} min; "
            f"usually {_count(f.get('usual_minutes'))} min."
        )
    if code == "entry_denied":
        return "The gate refused their card (check the membership or payment)."
    if code == "payment_failed":
        return "Their last payment did not go through."
    if code == "member_recovered":
        return "They visited again: the episode is closed."
    if code == "member_churned":
        return "They cancelled their membership."
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items())
    return f"Reason code {code}" + (f": {shown}." if shown else ".")


def _risk(f: Mapping[str, float | None]) -> str:
    """The risk policy's reason: the risk, then the terms that raised it most, in the order
    the detector ranked them (its figures come in that order)."""
    risk, limit = f.get("risk"), f.get("risk_threshold")
    text = f"Estimated chance they will not come back: {'?' if risk is None else f'{risk:.0%}'}"
    text += f" (alert from {limit:.0%})." if limit is not None else "."
    absent = f.get("days_absent")
    if absent is not None:
        text += f" Away {days(absent)}"
        usual = f.get("usual_gap_days")
        text += f"; usually every {days(usual)}." if usual is not None else "."
    for key in f:
        if key == "warning_days_ago":
            text += f" A failed payment or a refused entry {days(f[key])} ago."
        elif key == "visits_6_weeks_before":
            text += (
                f" Came {_count(f[key])} times in the 6 weeks before; "
                f"usually {_count(f.get('usual_visits_6_weeks'))}."
            )
        elif key == "gap_before_last_visit_days":
            text += f" {days(f[key])} between their last two visits."
        elif key == "recent_minutes":
            text += (
                f" Recent visits about {_count(f[key])} min; "
                f"usually {_count(f.get('usual_minutes'))} min."
            )
    return text
