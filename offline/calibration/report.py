"""Step 4 of the method: the report a club manager reads, as one self-contained HTML page.

Charts are inline SVG drawn here (no JavaScript, no fonts or styles from the network), each
with a title, a description and a table of the same figures beside it, so the page reads
the same in a screen reader, in print and offline.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from offline.calibration.fitting import Fit, Trial
from offline.calibration.misses import ALERT_DAYS, MISSED_GROUPS
from offline.calibration.objective import MIN_CAUGHT
from offline.calibration.periods import HORIZON_DAYS
from offline.calibration.scoring import LEAD_DAYS, Score
from offline.calibration.traits import ABSENCE_BINS, Traits
from offline.calibration.window import WindowDecision

LEAVERS = "#b2182b"
STAYERS = "#2166ac"
PALETTE = ("#555555", "#b2182b", "#2166ac", "#1b7837", "#762a83")
# What each group of held-out leavers (``misses.MISSED_GROUPS``) means, in the report's words.
MISSED_WORDS: dict[str, str] = {
    "caught": f"flagged at least {LEAD_DAYS:g} days before they cancelled",
    "too_late": f"flagged, but less than {LEAD_DAYS:g} days before they cancelled",
    "unreachable": f"cancelled within {ALERT_DAYS + LEAD_DAYS:g} days of their last visit: "
    f"too soon for a rule that waits three weeks and leaves two to call",
    "near_end": "last came too near the end of the history for this setting's usual alert to "
    "fall inside it",
    "rare": "came less than once a fortnight: a long absence is ordinary for them",
    "no_sign": "stopped coming with no fade, no failed payment and no refused entry: to the "
    "gates, a holiday",
    "sign_missed": "faded, or had a failed payment or a refused entry, and were not flagged "
    "in time",
}


@dataclass(slots=True)
class Calibration:
    tenant_id: str
    created_at: datetime
    members: int
    events: int
    rejected: int
    window: WindowDecision
    traits: Traits
    fit: Fit
    truth_used: bool
    seconds: float
    sorted_files: tuple[str, ...] = ()  # files not in time order, sorted in memory

    @property
    def chosen(self) -> Trial:
        return self.fit.chosen

    def shown(self) -> list[Trial]:
        """The fixed 60-day rule, the choice, and each family's best, once each."""
        seen: dict[str, Trial] = {}
        fit = self.fit
        families, refs = fit.best_per_family.values(), fit.references.values()
        for t in [fit.baseline, fit.chosen, *families, *refs]:
            seen.setdefault(t.label, t)
        return list(seen.values())

    def scores(self) -> dict[str, Any]:
        """Everything the staff page or a script needs, as JSON."""
        return {
            "objective": f"max recall with {self.fit.objective.words()} on the training "
            "months (precision less one standard error); else, if no setting reaches it, "
            "the highest precision reached in steps of 10 points, above the fixed 60-day "
            "rule's; else, at least as precise as it (by its precision and less one standard "
            "error), the most leavers of those catching "
            f"{MIN_CAUGHT}, or the most precise when none does; ties by median delay",
            "objective_met": self.fit.objective_met,
            # the selection months too short to judge any setting (``Fit.too_short``)
            "too_short_to_choose": self.fit.too_short,
            "sorted_in_memory": list(self.sorted_files),
            "fallback_precision": self.fit.fallback_precision,
            # the rule when no level is reached either (the staff page words it)
            "last_resort": self.fit.last_resort,
            "risk": self.fit.risk_note,
            "hybrid": self.fit.hybrid_note,
            "split": _iso(self.fit.split),
            "train": {"start": _iso(self.fit.train_start), "end": _iso(self.fit.split)},
            # Every family's training figures: months its first fit never saw.
            "risk_threshold_chosen_on": {
                "start": _iso(self.fit.risk_select_start),
                "end": _iso(self.fit.split),
            },
            "settings_chosen_on": {
                "start": _iso(self.fit.risk_select_start),
                "end": _iso(self.fit.split),
            },
            "leavers": {
                "risk_fit": self.fit.risk_leavers,
                "selection_scored": self.fit.select_leavers,
                "held_out_scored": self.fit.held_out_leavers,
            },
            "held_out": {"start": _iso(self.fit.test_start), "end": _iso(self.fit.end)},
            "held_out_scored_against": "ground truth" if self.truth_used else "cancellations",
            "chosen": self.chosen.label,
            "policies": [
                {
                    "label": t.label,
                    "spec": t.spec,
                    "train": t.train.as_dict(),
                    "held_out": t.test.as_dict() if t.test else None,
                    # its held-out leavers by why it caught or missed them (``misses``)
                    "held_out_missed": t.test.missed if t.test else None,
                }
                for t in self.shown()
            ],
            "grid": [
                {
                    "label": t.label,
                    "eligible": t.eligible,
                    "frontier": t.frontier,
                    **{k: v for k, v in t.train.as_dict().items() if k != "policy"},
                }
                for t in self.fit.trials
            ],
            "bgnbd": self.fit.bgnbd_note,
            "warnings": self.fit.warnings_choice,
            "window": {
                "uses": self.window.uses,
                "start": _iso(self.window.start),
                "end": _iso(self.window.end),
                "differs": self.window.differs,
                "changed": self.window.changed,
                "season": self.window.season,
                "reason": self.window.reason,
            },
            "traits": [
                {
                    "key": t.key,
                    "auc": round(t.auc, 3),
                    "low": round(t.low, 3),
                    "high": round(t.high, 3),
                    "strength": t.strength,
                }
                for t in self.traits.traits
            ],
            "strong_traits": [t.key for t in self.traits.strong],
            "seconds": round(self.seconds, 1),
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%d %b %Y")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pct(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{100 * v:.0f}%"


def _num(v: float | None, digits: int = 1) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:,.{digits}f}"


def _count(n: float | None, one: str, many: str | None = None) -> str:
    """``n`` (rounded to a whole number) with the noun agreeing: "1 leaver", "2 leavers"."""
    if n is None or math.isnan(n):
        return f"— {many or one + 's'}"
    whole = round(n)
    return f"{whole:,} {one if whole == 1 else many or one + 's'}"


# --- plain language --------------------------------------------------------------------------


def describe(spec: dict[str, Any]) -> str:
    kind = spec["policy"]
    if kind == "fixed":
        text = f"members who have not visited for {_count(spec['absence_days'], 'day')}"
    elif kind == "cadence":
        text = (
            "members absent much longer than their own usual gap between visits "
            f"(never sooner than {_count(spec.get('floor_days', 21), 'day')}, always by "
            f"{_count(spec.get('cap_days', 60), 'day')})"
        )
    elif kind == "hybrid":
        from offline.calibration.hybrid import describe as hybrid_words

        text = "members " + hybrid_words(spec)
    elif kind == "risk":
        text = (
            "members whose risk of not coming back (a model fitted on your own members' "
            "absences: days away, how often they came in the weeks before against their usual, "
            "their usual gap, tenure, failed payments) passes "
            f"{100 * spec.get('threshold', 0.5):.0f}%"
        )
    else:
        fb = spec.get("fallback", {})
        text = (
            "members whose chance of still being active (a BG/NBD model of your members' "
            f"visits) falls below {100 * spec['p_alive']:.0f}% (never sooner than "
            f"{_count(fb.get('floor_days', 21), 'day')} after their last visit, always by "
            f"{_count(fb.get('cap_days', 60), 'day')})"
        )
    warnings = spec.get("warnings", None if kind == "fixed" else {})
    if warnings == {}:
        text += ", with early warnings (falling visit rate, shorter visits, failed payments, "
        text += "denied entries)"
    elif warnings is not None and warnings.get("duration_ratio") == 0.0:
        text += ", and members with a failed payment or a denied entry"
    return text


def summary(c: Calibration) -> str:
    t, base = c.chosen, c.fit.baseline
    s, b = t.test, base.test
    if s is None or b is None:
        return "No policy could be scored on the held-out history."
    weekly = s.alerts_per_1000_week * s.members / 1000
    text = (
        f"Monitor {describe(t.spec)}. On the most recent part of your history, held out from "
        f"the fit, this caught {_pct(s.recall)} of the members who stopped coming before "
        f"they cancelled, a median of {_count(s.median_delay, 'day')} after their last visit "
        f"and {_count(s.median_lead, 'day')} before they cancelled; {_pct(s.precision)} of "
        f"its alerts were about members who did not come back. That is about "
        f"{_count(weekly, 'alert')} a week for your {_count(s.members, 'member')}. "
        f"The usual 60-day rule caught {_pct(b.recall)} at {_count(b.median_delay, 'day')}, "
        f"with {_pct(b.precision)} of its alerts right."
    )
    text += _missed_sentence(s)
    goal = c.fit.objective.words()
    if c.fit.objective_met:
        text += (
            f" It was chosen because it catches the most leavers, earliest, of the settings "
            f"that met your objective ({goal}) on the training months."
        )
    elif c.fit.fallback_precision is not None:
        text += (
            f" No setting met your objective ({goal}) on the training months; the highest "
            f"precision one reached, in steps of ten points, was {_pct(c.fit.fallback_precision)}"
            ", and of the settings that reached it this one catches the most leavers, earliest."
        )
    elif c.fit.last_resort == "most_precise":
        text += (
            f" No setting met your objective ({goal}) on the training months, nor caught "
            f"{MIN_CAUGHT} leavers at any lower precision in steps of ten points, so the most "
            "precise setting at least as precise as the 60-day rule was chosen: with so few "
            "leavers caught, which setting caught one more says little."
        )
    else:
        text += (
            f" No setting met your objective ({goal}) on the training months, so the one "
            "catching the most leavers at least as precisely as the 60-day rule was chosen."
        )
    fit = c.fit
    if fit.too_short:
        text += (
            f" The months settings are chosen on ({_day(fit.risk_select_start)} to "
            f"{_day(fit.split)}) hold {_count(fit.select_leavers, 'leaver')} whose outcome can "
            f"be judged (a last visit at least {HORIZON_DAYS:g} days before they end), fewer "
            f"than the {MIN_CAUGHT} a setting must catch to be chosen: the gate data is too "
            "short to show any rule better than another. Calibrate again when it covers more "
            "months."
        )
    if t.label == base.label and not fit.too_short:
        text += " No other rule did better at the same precision, so keep the 60-day rule."
    w = c.window
    if w.differs and w.uses == "full":
        changed = ", ".join(w.changed)
        text += (
            f" Your last quarter differs from the months before it ({changed}), but holds "
            f"only {_count(w.recent_train_leavers, 'leaver')} to learn from (at least "
            f"{w.min_leavers} needed) and {w.recent_select_leavers} and "
            f"{w.recent_held_out_leavers} to judge rules with (at least {w.min_scored_leavers} "
            "each), and no recent window short of your whole history holds enough, so this rule "
            "comes from your whole history: calibrate again once the recent months hold more "
            "leavers."
        )
    return text


def _missed_sentence(s: Score) -> str:
    """The leavers held out that no setting reading the gates could flag in time without
    many more false alarms (section 3 counts every group)."""
    m = s.missed
    if not m or not s.dropouts or not (m["no_sign"] or m["unreachable"]):
        return ""
    parts = []
    if m["no_sign"]:
        parts.append(
            f"{m['no_sign']:,} stopped coming with no fade, failed payment or refused entry "
            "(to the gates, a holiday)"
        )
    if m["unreachable"]:
        parts.append(
            f"{m['unreachable']:,} cancelled within {ALERT_DAYS + LEAD_DAYS:g} days of their "
            "last visit"
        )
    return (
        f" Of the {_count(s.dropouts, 'leaver')} held out, " + " and ".join(parts) + ": few of "
        "those can be flagged in time without many more false alarms (section 3 counts each "
        "group)."
    )


def missed_table(s: Score | None) -> str:
    """The chosen setting's held-out leavers by why it caught or missed them."""
    if s is None or not s.missed or not s.dropouts:
        return ""
    m = s.missed
    return _table(
        "The held-out leavers, by why the chosen setting caught or missed them",
        ("leavers who", "count", "share"),
        [
            [MISSED_WORDS[key], f"{m[key]:,}", _pct(m[key] / s.dropouts)]
            for key, _ in MISSED_GROUPS
            if m[key]
        ],
    )


# --- SVG -------------------------------------------------------------------------------------

W, H = 640, 280
ML, MR, MT, MB = 56, 16, 16, 52


def _svg(ident: str, title: str, desc: str, body: str, height: int = H) -> str:
    return (
        f'<svg role="img" viewBox="0 0 {W} {height}" '
        f'width="100%" style="max-width:{W}px" aria-labelledby="{ident}-t {ident}-d">'
        f'<title id="{ident}-t">{_e(title)}</title><desc id="{ident}-d">{_e(desc)}</desc>'
        f"{body}</svg>"
    )


def _axes(ymax: float, ylabel: str, height: int = H, ticks: int = 4, fmt: str = "{:.0%}") -> str:
    out = [f'<line x1="{ML}" y1="{height - MB}" x2="{W - MR}" y2="{height - MB}" stroke="#333"/>']
    for i in range(ticks + 1):
        v = ymax * i / ticks
        y = height - MB - (height - MB - MT) * i / ticks
        out.append(
            f'<line x1="{ML}" y1="{y:.1f}" x2="{W - MR}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
            f"{_e(fmt.format(v))}</text>"
        )
    out.append(
        f'<text x="14" y="{(height - MB + MT) / 2:.0f}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {(height - MB + MT) / 2:.0f})">{_e(ylabel)}</text>'
    )
    return "".join(out)


def _legend(items: Sequence[tuple[str, str]], height: int = H) -> str:
    out = []
    x = ML
    for label, colour in items:
        out.append(
            f'<rect x="{x}" y="{height - 16}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="{height - 6}" font-size="12">{_e(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return "".join(out)


def absence_chart(tr: Traits) -> str:
    labels = [f"{lo}–{hi}" for lo, hi in itertools.pairwise(ABSENCE_BINS)] + [
        f"{ABSENCE_BINS[-1]}+"
    ]
    ymax = max([*tr.absence_leavers, *tr.absence_stayers, 0.05])
    ymax = math.ceil(ymax * 10) / 10
    plot_w, plot_h = W - ML - MR, H - MT - MB
    slot = plot_w / len(labels)
    body = [_axes(ymax, "share of members")]
    for i, label in enumerate(labels):
        for j, (values, colour) in enumerate(
            ((tr.absence_leavers, LEAVERS), (tr.absence_stayers, STAYERS))
        ):
            v = values[i] if i < len(values) else 0.0
            h = plot_h * v / ymax
            x = ML + i * slot + 4 + j * (slot - 8) / 2
            body.append(
                f'<rect x="{x:.1f}" y="{H - MB - h:.1f}" width="{(slot - 8) / 2:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{_e(label)} days: '
                f"{'leavers' if j == 0 else 'stayers'} {v:.0%}</title></rect>"
            )
        body.append(
            f'<text x="{ML + (i + 0.5) * slot:.1f}" y="{H - MB + 14}" font-size="10" '
            f'text-anchor="middle">{_e(label)}</text>'
        )
    body.append(
        f'<text x="{ML + plot_w / 2:.0f}" y="{H - MB + 30}" font-size="11" '
        'text-anchor="middle">days since the last visit</text>'
    )
    body.append(_legend([("leavers, at cancellation", LEAVERS),
                         ("stayers, on a random day", STAYERS)]))  # fmt: skip
    return _svg(
        "absence",
        "Days since the last visit: leavers at cancellation against members who stayed",
        "Bars give the share of each group per band of days since the last visit; the table "
        "below has the same figures.",
        "".join(body),
    )


def weekly_chart(tr: Traits) -> str:
    series = ((tr.weekly_leavers, LEAVERS), (tr.weekly_stayers, STAYERS))
    n = len(tr.weekly_leavers)
    ymax = max([*tr.weekly_leavers, *tr.weekly_stayers, 0.5])
    ymax = math.ceil(ymax * 2) / 2
    plot_w, plot_h = W - ML - MR, H - MT - MB
    body = [_axes(ymax, "visits a week", fmt="{:.1f}")]
    for values, colour in series:
        points = " ".join(
            f"{ML + plot_w * i / max(n - 1, 1):.1f},{H - MB - plot_h * v / ymax:.1f}"
            for i, v in enumerate(values)
        )
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                    'stroke-width="2.5"/>')  # fmt: skip
    for i in range(0, n, 2):
        body.append(
            f'<text x="{ML + plot_w * i / max(n - 1, 1):.1f}" y="{H - MB + 14}" '
            f'font-size="10" text-anchor="middle">{i - n + 1}</text>'
        )
    body.append(
        f'<text x="{ML + plot_w / 2:.0f}" y="{H - MB + 30}" font-size="11" '
        'text-anchor="middle">weeks before the last visit (0: the week of it)</text>'
    )
    body.append(_legend([("leavers", LEAVERS), ("stayers", STAYERS)]))
    return _svg(
        "weekly",
        "Visits a week in the 16 weeks up to the last visit: leavers against stayers",
        "Two lines, mean visits a week per group, from 15 weeks before the last visit to the "
        "week of it; the table below has the same figures.",
        "".join(body),
    )


def policy_chart(trials: Sequence[Trial]) -> str:
    """Held-out catch rate, false alarms and delay per policy, as grouped horizontal bars."""
    rows: list[tuple[str, str, float, float, str]] = []  # metric, policy, value, max, text
    for t in trials:
        s = t.test
        if s is None:
            continue
        rows.append(("caught (recall)", t.label, s.recall or 0.0, 1.0, _pct(s.recall)))
        rows.append(("false alarms (1 − precision)", t.label,
                     1 - (s.precision or 0.0), 1.0, _pct(None if s.precision is None
                                                         else 1 - s.precision)))  # fmt: skip
        rows.append(("median delay after last visit", t.label, s.median_delay or 0.0, 90.0,
                     f"{_num(s.median_delay, 0)} d"))  # fmt: skip
        rows.append(("alerts / 1,000 members / week", t.label, s.alerts_per_1000_week, 0.0,
                     _num(s.alerts_per_1000_week)))  # fmt: skip
    metrics = list(dict.fromkeys(r[0] for r in rows))
    labels = list(dict.fromkeys(r[1] for r in rows))
    bar, gap = 14, 10
    block = len(labels) * bar + 24
    height = MT + len(metrics) * (block + gap) + 30
    left, right = 250, W - 70
    body: list[str] = []
    colour = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    for k, metric in enumerate(metrics):
        y0 = MT + k * (block + gap)
        body.append(f'<text x="8" y="{y0 + 12}" font-size="12" font-weight="bold">'
                    f"{_e(metric)}</text>")  # fmt: skip
        mine = [r for r in rows if r[0] == metric]
        top = max([r[3] for r in mine] + [r[2] for r in mine] + [1e-9])
        for i, (_, label, value, _, text) in enumerate(mine):
            y = y0 + 20 + i * bar
            w = (right - left) * value / top
            body.append(
                f'<text x="{left - 6}" y="{y + 10}" font-size="10" text-anchor="end">'
                f"{_e(label[:44])}</text>"
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 3}" '
                f'fill="{colour[label]}"/>'
                f'<text x="{left + w + 4:.1f}" y="{y + 10}" font-size="10">{_e(text)}</text>'
            )
    return _svg(
        "policies",
        "Each policy on held-out history: catch rate, false alarms, delay and load",
        "Horizontal bars per policy for four figures measured on the held-out part of the "
        "history; the table below has the same figures.",
        "".join(body),
        height=int(height),
    )


def frontier_chart(trials: Sequence[Trial]) -> str:
    plot_w, plot_h = W - ML - MR, H - MT - MB
    body = [_axes(1.0, "recall (training)")]
    for i in range(5):
        x = ML + plot_w * i / 4
        body.append(f'<text x="{x:.0f}" y="{H - MB + 14}" font-size="10" '
                    f'text-anchor="middle">{i / 4:.0%}</text>')  # fmt: skip
    body.append(f'<text x="{ML + plot_w / 2:.0f}" y="{H - MB + 30}" font-size="11" '
                'text-anchor="middle">precision (training)</text>')  # fmt: skip
    family_colour = {
        "fixed": PALETTE[0],
        "cadence": PALETTE[2],
        "bgnbd": PALETTE[3],
        "risk": PALETTE[1],
        "hybrid": PALETTE[4],
    }
    for t in trials:
        p, r = t.train.precision or 0.0, t.train.recall or 0.0
        x, y = ML + plot_w * p, H - MB - plot_h * r
        shape = 5 if t.frontier else 3
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{shape}" fill="{family_colour[t.family]}" '
            f'stroke="{"#000" if t.frontier else "none"}"><title>{_e(t.label)}: precision '
            f"{_pct(p)}, recall {_pct(r)}</title></circle>"
        )
    body.append(_legend([(f, c) for f, c in family_colour.items()] +
                        [("ringed: on the frontier", "#ffffff")]))  # fmt: skip
    return _svg(
        "frontier",
        "Every grid point on the training history: precision against recall",
        "One dot per policy setting tried; ringed dots are on the frontier (no other setting "
        "is both more precise and catches more). The grid table below has the figures.",
        "".join(body),
    )


# --- tables ----------------------------------------------------------------------------------


def _table(caption: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = "".join(
        "<tr>" + "".join(
            (f'<th scope="row">{_e(c)}</th>' if i == 0 else f"<td>{_e(c)}</td>")
            for i, c in enumerate(r)
        ) + "</tr>"
        for r in rows
    )  # fmt: skip
    # Scrolls sideways inside its own box on a phone (the page itself does not).
    return f'<div class="wrap" role="region" tabindex="0" aria-label="{_e(caption)}">' \
        f"<table><caption>{_e(caption)}</caption><thead><tr>{th}</tr></thead>" \
        f"<tbody>{body}</tbody></table></div>"  # fmt: skip


def _score_row(label: str, s: Score | None) -> list[str]:
    if s is None:
        return [label, *["—"] * 7]
    return [
        label,
        _pct(s.recall),
        _pct(s.precision),
        _num(s.median_delay, 0),
        _num(s.median_lead, 0),
        _num(s.alerts_per_1000_week),
        f"{s.caught}/{s.dropouts}",
        str(s.alerts),
    ]


SCORE_HEAD = ("policy", "caught (recall)", "precision", "median delay, days",
              "median lead, days", "alerts/1k/week", "leavers caught", "alerts")  # fmt: skip

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1a1a1a;line-height:1.5}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th[scope=row],thead th{text-align:left}
.summary{background:#f3f6fa;border-left:4px solid #2166ac;padding:.8rem 1rem;font-size:1.05rem}
.note{color:#444;font-size:.9rem}figure{margin:1rem 0}
.wrap{overflow-x:auto;max-width:100%}code{overflow-wrap:anywhere}
"""


def _met_words(fit: Fit) -> str:
    """Whether a setting met the objective, and the level the choice was made at if not."""
    if fit.objective_met:
        return "A setting met the objective."
    if fit.fallback_precision is None:
        if fit.last_resort == "most_precise":
            return "None met it, nor any lower level: the most precise was chosen."
        return "None met it."
    return f"None met it; chosen at the highest precision reached, {_pct(fit.fallback_precision)}."


def render(c: Calibration) -> str:
    """The whole report as one HTML document."""
    w, tr, fit = c.window, c.traits, c.fit
    year = {d.figure: d for d in w.seasonal}

    def digits(figure: str) -> int:
        return 3 if "cancellations" in figure else 1

    def verdict(figure: str) -> str:
        return "yes" if figure in w.changed else "a season" if figure in w.season else "no"

    parts: list[str] = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Lapse calibration — {_e(c.tenant_id)}</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Calibration for {_e(c.tenant_id)}</h1>",
        f'<p class="note">Made {_e(c.created_at.strftime("%d %b %Y %H:%M UTC"))} from '
        f"{_count(c.events, 'event')} of {_count(c.members, 'member')} "
        f"({_count(c.rejected, 'row')} rejected), "
        f"history {_day(w.full.start)} to {_day(w.full.end)}; took {c.seconds:.0f} s."
        + "".join(
            f" {_e(PurePath(p).name)} was not in time order: its rows were sorted by time."
            for p in c.sorted_files
        )
        + "</p>",
        '<h2 id="summary">In short</h2>',
        f'<p class="summary">{_e(summary(c))}</p>',
        f"<p>{_e(tr.verdict)}</p>",
        # 1. window
        '<h2 id="window">1. Which history was used</h2>',
        f"<p>{_e(w.reason)} Window used: {_day(w.start)} to {_day(w.end)}.</p>",
        _table(
            "The last quarter against the history before it"
            + (" and the same quarter a year before" if w.year_before else ""),
            ("figure", "history before", "last quarter", "whole history")
            + (("a year before",) if w.year_before else ())
            + ("differs?", "why"),
            [
                [
                    d.figure,
                    _num(d.earlier, digits(d.figure)),
                    _num(d.recent, digits(d.figure)),
                    _num(
                        {
                            "cancellations a month": w.full.cancel_rate,
                            "visits per member a month": w.full.visits_per_member_month,
                        }.get(d.figure, w.full.median_gap),
                        digits(d.figure),
                    ),
                    *([_num(year[d.figure].earlier, digits(d.figure))] if w.year_before else []),
                    verdict(d.figure),
                    d.why + (f"; a year before: {year[d.figure].why}" if w.year_before else ""),
                ]
                for d in w.differences
            ],
        ),
        '<p class="note">Material: cancellations a month at least 25% apart and two '
        "standard errors; visits a month 15% apart; median last visit to cancellation 25% "
        "apart (with at least 20 cancellations in the quarter). When the history covers the "
        "same quarter a year before, a figure is a change only if it differs from that quarter "
        "too; otherwise it is the season.</p>",
        # 2. traits
        '<h2 id="traits">2. What leavers share</h2>',
        f"<p>{_count(tr.leavers, 'leaver')} (looked at on the day they cancelled) against "
        f"{_count(tr.stayers, 'member')} who stayed (looked at on a random day of their "
        f"membership). {_count(tr.leavers_without_visits, 'leaver')} with no visit in the "
        "history left out. AUC: the chance that a random leaver is further along the trait "
        "than a random stayer (0.5: no difference; strong from 0.70 with the interval above "
        "0.60).</p>",
        _table(
            "Traits of leavers against stayers",
            ("trait", "leavers", "stayers", "AUC", "95% interval", "strength", "direction"),
            [
                [
                    t.name,
                    _pct(t.leavers) if t.unit == "share" else _num(t.leavers, 2),
                    _pct(t.stayers) if t.unit == "share" else _num(t.stayers, 2),
                    f"{t.auc:.2f}",
                    f"{t.low:.2f}–{t.high:.2f}",
                    t.strength,
                    t.direction,
                ]
                for t in tr.traits
            ],
        ),
        "<figure>",
        absence_chart(tr),
        "<figcaption>Days since the last visit: leavers on the day they cancelled, stayers on "
        "a random day.</figcaption></figure>",
        _table(
            "Days since the last visit (share of each group)",
            ("days", "leavers", "stayers"),
            [
                [f"{lo}–{hi}" if hi else f"{lo}+", _pct(a), _pct(b)]
                for lo, hi, a, b in zip(
                    ABSENCE_BINS,
                    [*ABSENCE_BINS[1:], None],
                    tr.absence_leavers,
                    tr.absence_stayers,
                    strict=False,
                )
            ],
        ),
        "<figure>",
        weekly_chart(tr),
        "<figcaption>Visits a week before the last visit.</figcaption></figure>",
        _table(
            "Visits a week before the last visit (mean per member)",
            ("week", "leavers", "stayers"),
            [
                [str(i - len(tr.weekly_leavers) + 1), _num(a, 2), _num(b, 2)]
                for i, (a, b) in enumerate(zip(tr.weekly_leavers, tr.weekly_stayers, strict=True))
            ],
        ),
        # 3. policies
        '<h2 id="policies">3. Each policy, fitted and tested</h2>',
        f"<p>Fitted on {_day(fit.train_start)} to {_day(fit.split)} (replayed alone: nothing "
        f"later is seen), tested on {_day(fit.test_start)} to {_day(fit.end)}, scored "
        f"against {'the ground truth file' if c.truth_used else 'the cancellations'}. "
        "Leavers whose last visit falls in the last 30 days are not scored, nor alerts raised "
        "there in precision: the history cannot yet tell whether those members came back (an "
        "alert there still catches a leaver who last came before them). Objective: catch the "
        f"most leavers among the settings with {_e(fit.objective.words())} on the training "
        f"history (precision less one standard error) and at least {MIN_CAUGHT} leavers "
        "caught; if none does, the precision target lowered in steps of ten points; failing "
        "that, among those at least as precise as the 60-day rule (by their precision and "
        "less one standard error), the most leavers, or the "
        f"most precise (less one standard error) when none caught {MIN_CAUGHT}; ties go to "
        "the earliest (median delay). Every family's settings "
        f"(the fixed rules too) are scored only from {_day(fit.risk_select_start)}, on "
        "training months what it fits was not fitted on (the risk model's coefficients, "
        "BG/NBD's population, the cohort's usual gap: fitted before that day, refitted on all "
        "the training months once the setting was chosen). Leavers the scores can judge: "
        f"{fit.select_leavers:,} in those selection months, {fit.held_out_leavers:,} held out. "
        + _met_words(fit)
        + "</p>",
        f"<p>Cohort defaults from the training members: usual gap {fit.cohort_gap_days:g} "
        f"days, spread {fit.cohort_spread:g}. {_e(fit.bgnbd_note)}. Early warnings chosen: "
        + _e(
            "; ".join(
                f"{fam}: {v} ({'help' if fit.warnings_help.get(fam) else 'do not help'})"
                for fam, v in fit.warnings_choice.items()
            )
        )
        + f". {fit.replays} replays of the real detector in {fit.seconds:.0f} s.</p>",
        "<figure>",
        policy_chart(c.shown()),
        "<figcaption>Held-out figures per policy (the fixed 60-day rule first).</figcaption>"
        "</figure>",
        _table(
            "Held-out history (tested)",
            SCORE_HEAD,
            [_score_row(t.label, t.test) for t in c.shown()],
        ),
        missed_table(c.chosen.test),
        _table(
            "Training history (fitted)",
            SCORE_HEAD,
            [_score_row(t.label, t.train) for t in c.shown()],
        ),
        f"<p>{_e(fit.risk_note[:1].upper() + fit.risk_note[1:])}. "
        + _e(
            "What moved the risk most (weight times spread): "
            + ", ".join(f"{name} {value:+.2f}" for name, value in fit.risk_importance[:6])
            if fit.risk_importance
            else ""
        )
        + "</p>",
        _table(
            "The risk policy at each threshold beside the fixed rules, held-out history",
            SCORE_HEAD,
            [
                _score_row(t.label, t.test)
                for t in [
                    *fit.references.values(),
                    *(t for t in fit.trials if t.family == "risk" and t.test is not None),
                ]
            ],
        ),
        *(
            [
                f"<p>The hybrid policy (a personal deadline, a decline rule, payment "
                f"warnings: the earliest wins): {_e(fit.hybrid_note)}.</p>",
                _table(
                    "The hybrid policy for each precision target beside the fixed rules, "
                    "held-out history",
                    SCORE_HEAD,
                    [
                        _score_row(t.label, t.test)
                        for t in [
                            *fit.references.values(),
                            *(t for t in fit.trials if t.family == "hybrid" and t.test is not None),
                        ]
                    ],
                ),
            ]
            if fit.hybrid_note
            else []
        ),
        "<figure>",
        frontier_chart(fit.trials),
        "<figcaption>Every setting tried on the training history.</figcaption></figure>",
        _table(
            "The whole grid on the training history",
            (*SCORE_HEAD, "eligible", "frontier"),
            [
                [
                    *_score_row(t.label, t.train),
                    "yes" if t.eligible else "no",
                    "yes" if t.frontier else "no",
                ]
                for t in fit.trials
            ],
        ),
        '<h2 id="config">4. The configuration written</h2>',
        f"<p>The detector's configuration for {_e(c.tenant_id)} now runs "
        f"<code>{_e(c.chosen.label)}</code>. Roll it out in steps and calibrate again after "
        "any material change of the business.</p>",
        "</main></body></html>",
    ]
    return "\n".join(parts)


__all__ = ["Calibration", "render", "summary"]
