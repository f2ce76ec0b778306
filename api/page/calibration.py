"""The calibration report as a manager reads it on the staff page: plain words first (what
was chosen, what it means for the front desk), the statistics behind a fold.

Read from the figures ``lapse calibrate --store`` keeps beside its report
(``Calibration.scores`` in offline/calibration/report.py, the ``scores`` column), never from
its English HTML, so every word is the page's own, in the person's language. Pure: a stored
row's JSON in, markup out. A report whose figures cannot be read says so (older reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.page import i18n
from api.page.charts import bdi_t, e, table_wrap
from api.page.i18n import t
from detector.core.hybrid import HybridPolicy

BASELINE = "fixed:60"
# The groups of held-out leavers a report counts (offline/calibration/misses.py), in the order
# the page words them: the caught first, then those no rule on gate data reaches in time.
MISSED = ("caught", "too_late", "unreachable", "no_sign", "rare", "sign_missed", "near_end")
FAMILIES = ("fixed", "cadence", "bgnbd", "risk", "hybrid")


@dataclass(frozen=True, slots=True)
class Figures:
    """One rule measured on one stretch of history."""

    recall: float | None
    precision: float | None
    median_delay: float | None
    median_lead: float | None
    per_1000_week: float | None
    members: int
    alerts: int
    leavers: int
    caught: int

    @property
    def alerts_a_week(self) -> float | None:
        """Alerts a week for the club's members (the load the front desk would carry)."""
        if self.per_1000_week is None:
            return None
        return self.per_1000_week * self.members / 1000


@dataclass(frozen=True, slots=True)
class Rule:
    label: str  # the policy's spec string, e.g. ``cadence:z=3.5,floor_days=35``
    spec: Mapping[str, Any]
    train: Figures | None
    held_out: Figures | None
    eligible: bool | None = None
    frontier: bool | None = None
    # The held-out leavers by why the rule caught or missed them (``MISSED``'s groups;
    # reports since 2026-12-06), None in older reports.
    missed: Mapping[str, int] | None = None

    @property
    def family(self) -> str:
        return self.label.split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class Trait:
    key: str
    auc: float
    low: float
    high: float
    strength: str


@dataclass(frozen=True, slots=True)
class Report:
    chosen: str
    spec: Mapping[str, Any]
    objective_met: bool | None
    rules: list[Rule]  # the 60-day rule, the choice, each family's best
    grid: list[Rule]  # every setting tried (training figures only)
    traits: list[Trait]
    train: tuple[datetime, datetime] | None
    held_out: tuple[datetime, datetime] | None
    # When no setting met the objective: the precision level the choice was made at.
    fallback_precision: float | None = None
    # The rule when no level was reached either: "most_precise" (no setting caught three
    # leavers; reports since 2026-12-06), else the most leavers at least as precise as the
    # 60-day rule ("most_leavers", or None in older reports).
    last_resort: str | None = None
    # The history's months settings are chosen on held too few leavers to judge any setting
    # (reports since 2026-12-06; False in older ones).
    too_short: bool = False

    def rule(self, label: str) -> Rule | None:
        return next((r for r in self.rules if r.label == label), None)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _figures(raw: object) -> Figures | None:
    if not isinstance(raw, Mapping):
        return None
    return Figures(
        recall=_num(raw.get("recall")),
        precision=_num(raw.get("precision")),
        median_delay=_num(raw.get("median_delay_days")),
        median_lead=_num(raw.get("median_lead_days")),
        per_1000_week=_num(raw.get("alerts_per_1000_members_week")),
        members=int(raw.get("members") or 0),
        alerts=int(raw.get("alerts") or 0),
        leavers=int(raw.get("dropouts") or 0),
        caught=int(raw.get("caught") or 0),
    )


def _missed(raw: object) -> dict[str, int] | None:
    if not isinstance(raw, Mapping):
        return None
    return {k: int(v) for k, v in raw.items() if k in MISSED and isinstance(v, int)}


def _period(raw: object) -> tuple[datetime, datetime] | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return datetime.fromisoformat(str(raw["start"])), datetime.fromisoformat(str(raw["end"]))
    except (KeyError, ValueError):
        return None


def read(policy: Mapping[str, Any], scores: Mapping[str, Any]) -> Report | None:
    """The figures of a stored report, or None when it holds none this page can read."""
    try:
        chosen = str(scores["chosen"])
        rules = [
            Rule(
                str(p["label"]),
                p.get("spec") or {},
                _figures(p["train"]),
                _figures(p["held_out"]),
                missed=_missed(p.get("held_out_missed")),
            )
            for p in scores["policies"]
        ]
        grid = [
            Rule(
                str(g["label"]),
                {},
                _figures(g),
                None,
                bool(g.get("eligible")),
                bool(g.get("frontier")),
            )
            for g in scores.get("grid", [])
        ]
        traits = [
            Trait(
                str(x["key"]),
                float(x["auc"]),
                float(x["low"]),
                float(x["high"]),
                str(x["strength"]),
            )
            for x in scores.get("traits", [])
        ]
    except (KeyError, TypeError, ValueError):
        return None
    met = scores.get("objective_met")
    return Report(
        chosen=chosen,
        spec=policy or next((r.spec for r in rules if r.label == chosen), {}),
        objective_met=met if isinstance(met, bool) else None,
        fallback_precision=_num(scores.get("fallback_precision")),
        last_resort=str(scores["last_resort"]) if scores.get("last_resort") else None,
        too_short=scores.get("too_short_to_choose") is True,
        rules=rules,
        grid=grid,
        traits=traits,
        train=_period(scores.get("train")),
        held_out=_period(scores.get("held_out")),
    )


# -- plain words -----------------------------------------------------------------------------


def _days(lang: str, value: object) -> str:
    n = _num(value)
    return i18n.plural(lang, "day", n) if n is not None else "–"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def policy_words(spec: Mapping[str, Any], label: str, lang: str = "en") -> str:
    """What the rule flags, in words: "members who have not visited for 60 days"."""
    kind = spec.get("policy")
    if kind == "fixed":
        text = t(lang, "cal.policy.fixed", days=_days(lang, spec.get("absence_days", 60)))
    elif kind == "cadence":
        text = t(
            lang,
            "cal.policy.cadence",
            floor=_days(lang, spec.get("floor_days", 21)),
            cap=_days(lang, spec.get("cap_days", 60)),
        )
    elif kind == "risk":
        text = t(lang, "cal.policy.risk", p=_share(_num(spec.get("threshold", 0.5))))
    elif kind == "hybrid":
        text = _hybrid_words(spec, lang)
    elif kind == "bgnbd":
        fallback = spec.get("fallback") or {}
        text = t(
            lang,
            "cal.policy.bgnbd",
            p=_share(_num(spec.get("p_alive"))),
            floor=_days(lang, fallback.get("floor_days", 21)),
            cap=_days(lang, fallback.get("cap_days", 60)),
        )
    else:
        return t(lang, "cal.policy.unknown", name=label)
    # As offline/calibration/report.py reads a spec: no key on a fixed rule means none,
    # on the others all of them; a zero duration ratio keeps payments and refused entries.
    warnings = spec.get("warnings", None if kind == "fixed" else {})
    if warnings == {}:
        text += t(lang, "cal.warnings.all")
    elif isinstance(warnings, Mapping) and warnings.get("duration_ratio") == 0.0:
        text += t(lang, "cal.warnings.payments")
    return text


def _hybrid_words(spec: Mapping[str, Any], lang: str) -> str:
    """The hybrid rule (detector/core/hybrid.py) in words, with its defaults where the spec
    leaves a field out: the personal deadline, then the longest return and the decline rule
    when they are on."""
    d = HybridPolicy()  # what a spec leaves out
    k = _num(spec.get("k", d.k))
    text = t(
        lang,
        "cal.policy.hybrid",
        k="–" if k is None else f"{k:g}",
        floor=_days(lang, spec.get("floor_days", d.floor_days)),
        cap=_days(lang, spec.get("cap_days", d.cap_days)),
    )
    if (_num(spec.get("longest_factor", d.longest_factor)) or 0.0) > 0:
        text += t(lang, "cal.policy.hybrid.longest")
    ratio = _num(spec.get("decline_ratio", d.decline_ratio)) or 0.0
    if ratio > 0:
        text += t(
            lang,
            "cal.policy.hybrid.decline",
            days=_days(lang, spec.get("decline_days", d.decline_days)),
            ratio=_share(ratio),
        )
    back = _num(spec.get("payment_lookback_days", d.payment_lookback_days)) or 0.0
    days = _days(lang, spec.get("payment_days", d.payment_days))
    if "warnings" in spec and spec["warnings"] is None:  # the rule's day is the alert
        text += t(lang, "cal.policy.hybrid.payment", days=days)
        if back > 0:
            text += t(lang, "cal.policy.hybrid.payment.before", before=_days(lang, back))
    elif back > 0:  # the failure's own warning comes first; a sign before the absence too
        text += t(lang, "cal.policy.hybrid.payment.lookback", days=days, before=_days(lang, back))
    return text


def _in_ten(value: float | None) -> str:
    return "–" if value is None else str(round(value * 10))


def plain_words(report: Report, lang: str = "en") -> str:
    """What was chosen and what it means for staff, as sentences (figures of the held-out
    months: those the choice never saw)."""
    chosen = report.rule(report.chosen)
    policy = policy_words(report.spec, report.chosen, lang)
    lines = [f'<p class="cal-chosen">{e(t(lang, "cal.chosen", policy=policy))}</p>']
    s = chosen.held_out if chosen is not None else None
    if s is not None:
        items = []
        weekly = s.alerts_a_week
        members = i18n.plural(lang, "member", s.members)
        if weekly is not None and round(weekly) >= 1:
            alerts = i18n.plural(lang, "alert", round(weekly))
            items.append(bdi_t(lang, "cal.alerts", alerts=alerts, members=members))
        elif weekly is not None:
            items.append(bdi_t(lang, "cal.alerts.fewer", members=members))
        if s.precision is not None:
            items.append(bdi_t(lang, "cal.precision", n=_in_ten(s.precision)))
        if s.median_delay is not None:
            items.append(bdi_t(lang, "cal.delay", days=_days(lang, round(s.median_delay))))
        if s.median_lead is not None:
            items.append(bdi_t(lang, "cal.lead", days=_days(lang, round(s.median_lead))))
        if s.recall is not None:
            items.append(bdi_t(lang, "cal.recall", n=_in_ten(s.recall)))
        lis = "".join(f"<li>{x}</li>" for x in items)
        lines.append(
            f'<h3 id="cal-staff-h">{e(t(lang, "cal.for_staff"))}</h3>'
            f'<ul class="cal-means" aria-labelledby="cal-staff-h">{lis}</ul>'
        )
        if chosen is not None and chosen.missed and s.leavers:
            lines.append(missed_words(chosen.missed, s.leavers, lang))
    base = report.rule(BASELINE)
    if report.chosen == BASELINE:
        key = "cal.too_short" if report.too_short else "cal.same_as_baseline"
        lines.append(f"<p>{e(t(lang, key))}</p>")
    elif base is not None and base.held_out is not None:
        b = base.held_out
        lines.append(
            '<p class="hint">'
            + bdi_t(
                lang,
                "cal.baseline",
                n=_in_ten(b.precision),
                found=_in_ten(b.recall),
                days=_days(lang, None if b.median_delay is None else round(b.median_delay)),
            )
            + "</p>"
        )
    return "".join(lines)


def missed_words(missed: Mapping[str, int], leavers: int, lang: str = "en") -> str:
    """The held-out leavers by why the choice caught or missed them, as a list: what a
    manager needs to judge what else to do about the ones no rule on gate data reaches."""
    items = [
        bdi_t(lang, f"cal.missed.{key}", n=i18n.plural(lang, "leaver", missed[key]))
        for key in MISSED
        if missed.get(key)
    ]
    lis = "".join(f"<li>{x}</li>" for x in items)
    total = i18n.plural(lang, "leaver", leavers)
    return (
        f'<h3 id="cal-missed-h">{e(t(lang, "cal.missed.h"))}</h3>'
        f"<p>{bdi_t(lang, 'cal.missed.of', leavers=total)}</p>"
        f'<ul class="cal-means" aria-labelledby="cal-missed-h">{lis}</ul>'
    )


# -- the statistics (behind the fold) --------------------------------------------------------


def _rule_cell(rule: Rule, chosen: str, lang: str) -> str:
    mark = f" <strong>{e(t(lang, 'cal.chosen_mark'))}</strong>" if rule.label == chosen else ""
    # The spec string may break after each comma (a phone's narrow column), never inside.
    label = e(rule.label).replace(",", ",<wbr>")
    return f'<th scope="row"><code dir="ltr">{label}</code>{mark}</th>'


def _figure_cells(s: Figures | None, *, lead: bool = True) -> str:
    if s is None:
        return "<td>–</td>" * (7 if lead else 6)

    def n(v: float | None, digits: int = 0) -> str:
        return "–" if v is None else f"{v:,.{digits}f}"

    cells = [_share(s.recall), _share(s.precision), n(s.median_delay)]
    if lead:
        cells.append(n(s.median_lead))
    cells += [n(s.per_1000_week, 1), f'<bdi dir="ltr">{s.caught}/{s.leavers}</bdi>', str(s.alerts)]
    return "".join(f"<td>{c}</td>" for c in cells)


def _head(lang: str, keys: Sequence[str]) -> str:
    return "".join(f'<th scope="col">{e(t(lang, f"cal.col.{k}"))}</th>' for k in keys)


def _rules_table(report: Report, caption: str, which: str, lang: str) -> str:
    rows = "".join(
        f"<tr>{_rule_cell(r, report.chosen, lang)}"
        f"{_figure_cells(r.held_out if which == 'held_out' else r.train)}</tr>"
        for r in report.rules
    )
    keys = ("rule", "recall", "precision", "delay", "lead", "load", "caught", "alerts")
    return table_wrap(
        caption,
        f'<table class="cal-rules"><caption>{e(caption)}</caption><thead><tr>{_head(lang, keys)}'
        f"</tr></thead><tbody>{rows}</tbody></table>",
        lang,
    )


def _family_table(report: Report, family: str, lang: str) -> str:
    rules = [r for r in report.grid if r.family == family]
    if not rules:
        return ""
    yes, no = t(lang, "cal.yes"), t(lang, "cal.no")
    rows = "".join(
        f"<tr>{_rule_cell(r, report.chosen, lang)}{_figure_cells(r.train, lead=False)}"
        f"<td>{e(yes if r.eligible else no)}</td><td>{e(yes if r.frontier else no)}</td></tr>"
        for r in rules
    )
    caption = t(lang, "cal.family", family=t(lang, f"cal.family.{family}"))
    keys = (
        "rule",
        "recall",
        "precision",
        "delay",
        "load",
        "caught",
        "alerts",
        "eligible",
        "frontier",
    )
    return table_wrap(
        caption,
        f'<table class="cal-grid"><caption>{e(caption)}</caption><thead><tr>{_head(lang, keys)}'
        f"</tr></thead><tbody>{rows}</tbody></table>",
        lang,
    )


def _traits_table(report: Report, lang: str) -> str:
    if not report.traits:
        return ""
    known = ("absence", "frequency", "decline", "tenure", "duration", "payments", "denied")

    def word(kind: str, value: str, words: Sequence[str]) -> str:
        return t(lang, f"cal.{kind}.{value}") if value in words else value

    rows = "".join(
        f'<tr><th scope="row">{e(word("trait", x.key, known))}</th>'
        f'<td>{x.auc:.2f}</td><td><bdi dir="ltr">{x.low:.2f}–{x.high:.2f}</bdi></td>'
        f"<td>{e(word('strength', x.strength, ('strong', 'moderate', 'weak')))}</td></tr>"
        for x in report.traits
    )
    caption = t(lang, "cal.traits")
    return (
        table_wrap(
            caption,
            f'<table class="cal-traits"><caption>{e(caption)}</caption><thead><tr>'
            f"{_head(lang, ('trait', 'auc', 'interval', 'strength'))}</tr></thead>"
            f"<tbody>{rows}</tbody></table>",
            lang,
        )
        + f'<p class="hint">{e(t(lang, "cal.traits.hint"))}</p>'
    )


def statistics(report: Report, tz: ZoneInfo, lang: str = "en") -> str:
    def period(key: str, span: tuple[datetime, datetime] | None) -> str:
        if span is None:
            return t(lang, key, start="–", end="–")
        return t(
            lang,
            key,
            start=i18n.date_text(lang, span[0], tz),
            end=i18n.date_text(lang, span[1], tz),
        )

    objective = ""
    if report.objective_met is not None:
        key = "cal.objective.met" if report.objective_met else "cal.objective.unmet"
        level = report.fallback_precision
        if not report.objective_met and level is not None:
            key = "cal.objective.lowered"
        elif not report.objective_met and report.last_resort == "most_precise":
            key = "cal.objective.most_precise"
        objective = f"<p>{e(t(lang, key, level=_share(level)))}</p>"
    families = "".join(_family_table(report, f, lang) for f in FAMILIES)
    return (
        objective
        + _rules_table(report, period("cal.held_out", report.held_out), "held_out", lang)
        + _rules_table(report, period("cal.training", report.train), "train", lang)
        + _traits_table(report, lang)
        + families
    )


def tested_on(report: Report, tz: ZoneInfo, lang: str = "en") -> str:
    if report.held_out is None:
        return ""
    start, end = report.held_out
    text = bdi_t(
        lang,
        "cal.tested",
        start=i18n.date_text(lang, start, tz),
        end=i18n.date_text(lang, end, tz),
    )
    return f'<p class="hint">{text}</p>'
