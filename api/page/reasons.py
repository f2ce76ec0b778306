"""Reason codes in words front-desk staff read at a glance, with the figures behind them.

Codes and figures are the alert contract's (``schemas.alerts.Reason``); a code this page
does not know yet is still shown, as its code, rather than hidden. The words come from the
page's catalogue (``api.page.i18n``) in the staff member's language.
"""

from __future__ import annotations

from collections.abc import Mapping

from api.page.i18n import EN, plural, t

Figures = Mapping[str, float | int | str | None]

TITLES = {k.removeprefix("reason."): v for k, v in EN.items() if k.startswith("reason.")}


def _num(value: float | int | str | None) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def days(value: float | None, lang: str = "en") -> str:
    return "?" if value is None else plural(lang, "day", value)


def ago(value: float | None, lang: str = "en") -> str:
    """When a sign came, counted back from the alert: "today" under a day, else whole days
    ("7 days ago": an age in tenths of a day reads as a measurement, not a date)."""
    if value is None:
        return t(lang, "when.ago", days="?")
    if value < 1.0:
        return t(lang, "when.today")
    return t(lang, "when.ago", days=plural(lang, "day", float(round(value))))


def _count(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _counted(lang: str, noun: str, value: float | None) -> str:
    return "?" if value is None else plural(lang, noun, value)


def title(code: str, lang: str = "en") -> str:
    if code in TITLES:
        return t(lang, f"reason.{code}")
    return code.replace("_", " ").capitalize()


def detail(code: str, figures: Figures, lang: str = "en") -> str:
    """One sentence with the figures that made the detector raise this reason."""
    f = {k: _num(v) for k, v in figures.items()}
    absent, usual = f.get("days_absent"), f.get("usual_gap_days")
    if code == "absent_beyond_usual_rhythm":
        text = t(lang, "why.raised_after", days=days(absent, lang))
        if usual is not None:
            text += t(lang, "why.usually_every", days=days(usual, lang))
        if f.get("threshold_days") is not None:
            text += t(lang, "why.normal_up_to", days=days(f["threshold_days"], lang))
        return text + "."
    if code == "absent_beyond_threshold":
        club_limit = days(f.get("threshold_days"), lang)
        return t(lang, "why.club_limit", days=days(absent, lang), limit=club_limit)
    if code == "probability_active_low":
        p, limit = f.get("p_alive"), f.get("p_threshold")
        shown = "?" if p is None else f"{p:.0%}"
        text = t(lang, "why.p_alive", p=shown)
        return text + (t(lang, "why.alert_below", p=f"{limit:.0%}") if limit is not None else ".")
    if code == "risk_of_leaving":
        return _risk(f, lang)
    if code in HYBRID:
        return _hybrid(code, f, lang)
    if code == "visit_frequency_decline":
        return t(
            lang,
            "why.frequency",
            visits=_counted(lang, "visit", f.get("visits_last_4_weeks")),
            usual=_count(f.get("usual_visits_4_weeks")),
        )
    if code == "visit_duration_decline":
        return t(
            lang,
            "why.duration",
            recent=_count(f.get("recent_minutes")),
            usual=_count(f.get("usual_minutes")),
        )
    simple = {
        "entry_denied": "why.entry_denied",
        "payment_failed": "why.payment_failed",
        "member_recovered": "why.recovered",
        "member_churned": "why.churned",
    }
    if code in simple:
        return t(lang, simple[code])
    shown = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items())
    return t(lang, "why.unknown", code=code) + (f": {shown}." if shown else ".")


# The hybrid policy's rules (detector/core/hybrid.py), one code each.
HYBRID = ("absent_beyond_personal_limit", "absent_after_decline", "absent_after_payment_problem")


def _hybrid(code: str, f: Mapping[str, float | None], lang: str) -> str:
    """The hybrid policy's reason: which rule fired, with its figures."""
    absent, limit = days(f.get("days_absent"), lang), days(f.get("threshold_days"), lang)
    if code == "absent_beyond_personal_limit":
        factor = f.get("gap_factor")
        text = t(lang, "why.personal", days=absent, limit=limit,
                 factor="?" if factor is None else _count(factor))  # fmt: skip
        if f.get("longest_return_days") is not None:
            text += t(lang, "why.longest_return", days=days(f["longest_return_days"], lang))
        return text
    if code == "absent_after_decline":
        ratio = f.get("decline_ratio")
        return t(
            lang,
            "why.declined",
            times=_counted(lang, "time", f.get("visits_6_weeks_before")),
            usual=_count(f.get("usual_visits_6_weeks")),
            days=absent,
            limit=limit,
            ratio="?" if ratio is None else f"{ratio:.0%}",
        )
    return t(lang, "why.payment_absent", when=ago(f.get("warning_days_ago"), lang), absent=absent)


def _risk(f: Mapping[str, float | None], lang: str) -> str:
    """The risk policy's reason: the risk, then the terms that raised it most, in the order
    the detector ranked them (its figures come in that order)."""
    risk, limit = f.get("risk"), f.get("risk_threshold")
    text = t(lang, "why.risk", p="?" if risk is None else f"{risk:.0%}")
    text += t(lang, "why.alert_from", p=f"{limit:.0%}") if limit is not None else "."
    absent = f.get("days_absent")
    if absent is not None:
        text += t(lang, "why.away", days=days(absent, lang))
        usual = f.get("usual_gap_days")
        text += (
            t(lang, "why.usually_every", days=days(usual, lang)) + "." if usual is not None else "."
        )
    for key in f:
        if key == "warning_days_ago":
            text += t(lang, "why.warning", when=ago(f[key], lang))
        elif key == "visits_6_weeks_before":
            text += t(
                lang,
                "why.before6",
                times=_counted(lang, "time", f[key]),
                usual=_count(f.get("usual_visits_6_weeks")),
            )
        elif key == "gap_before_last_visit_days":
            text += t(lang, "why.gap_before", days=days(f[key], lang))
        elif key == "recent_minutes":
            text += t(
                lang,
                "why.recent_minutes",
                recent=_count(f[key]),
                usual=_count(f.get("usual_minutes")),
            )
        elif key == "longest_return_days":
            text += t(lang, "why.beyond", days=days(f[key], lang))
        elif key == "long_returns":
            n = f[key]
            text += (
                t(lang, "why.no_long_return")
                if not n
                else t(lang, "why.long_returns", times=_counted(lang, "time", n))
            )
    return text
