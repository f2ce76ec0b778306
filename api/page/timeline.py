"""A member's visit timeline as inline SVG, drawn on the server: no script, no chart library.

Pure: it takes times (POSIX seconds) and returns markup. What it can draw is what the
detector keeps: the start times of the latest visits (``MemberState.recent``), the usual
visit length (not each visit's), the deadline, and the episodes from the alerts table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from api.page.i18n import plural
from api.page.i18n import t as say
from schemas.units import DAY

WIDTH, HEIGHT = 960, 230
LEFT, RIGHT = 16, 944
EPISODE_TOP, EPISODE_H = 14, 40
VISIT_Y = 120
AXIS_Y = 184
MAX_BACK_DAYS = 365.0


@dataclass(frozen=True, slots=True)
class EpisodeSpan:
    start: float
    end: float | None  # None while open
    status: str  # open, recovered, churned
    severity: str
    actions: Sequence[tuple[float, str]] = field(default_factory=tuple)  # (taken_at, kind)


@dataclass(frozen=True, slots=True)
class TimelineData:
    now: float
    visits: Sequence[float]  # visit start times, oldest first
    deadline: float | None
    usual_minutes: float | None
    episodes: Sequence[EpisodeSpan]


Label = Callable[[float], str]  # a time as the reader's date


def _days(seconds: float, lang: str = "en") -> str:
    d = seconds / DAY
    return say(lang, "tl.days", n=f"{d:.0f}" if d >= 10 else f"{d:.1f}")


def span(data: TimelineData) -> tuple[float, float]:
    """The time range shown: the kept visits and episodes, today and the deadline.

    At least four weeks, at most a year back; an older episode is clipped at the left edge.
    """
    lo = min([data.now - 28 * DAY, *data.visits, *(e.start for e in data.episodes)])
    lo = max(lo, data.now - MAX_BACK_DAYS * DAY)
    hi = data.now
    if data.deadline is not None:
        hi = max(hi, min(data.deadline, data.now + 120 * DAY))
    pad = (hi - lo) * 0.03 or DAY
    return lo - pad, hi + pad


def render(data: TimelineData, label: Label, *, svg_id: str = "timeline", lang: str = "en") -> str:
    lo, hi = span(data)

    def x(t: float) -> float:
        t = min(max(t, lo), hi)
        return round(LEFT + (t - lo) / (hi - lo) * (RIGHT - LEFT), 1)

    parts: list[str] = []
    # Axis with a tick per week (or per four weeks on long ranges).
    step = 7 * DAY if hi - lo <= 120 * DAY else 28 * DAY
    parts.append(f'<line class="tl-axis" x1="{LEFT}" y1="{AXIS_Y}" x2="{RIGHT}" y2="{AXIS_Y}"/>')
    t = data.now
    while t - step >= lo:
        t -= step
    last_label_x = -1e9
    while t <= hi:
        tx = x(t)
        parts.append(f'<line class="tl-tick" x1="{tx}" y1="{AXIS_Y}" x2="{tx}" y2="{AXIS_Y + 6}"/>')
        if tx - last_label_x >= 80 and RIGHT - tx >= 30 and tx - LEFT >= 30:
            parts.append(
                f'<text class="tl-label" x="{tx}" y="{AXIS_Y + 22}" text-anchor="middle">'
                f"{escape(label(t))}</text>"
            )
            last_label_x = tx
        t += step

    # Episodes: shaded spans, coloured and named by outcome.
    for ep in data.episodes:
        end = ep.end if ep.end is not None else data.now
        x0, x1 = x(ep.start), x(end)
        w = max(x1 - x0, 3.0)
        known = ("open", "recovered", "churned")
        words = {k: say(lang, f"status.{k}") for k in known}
        severity = (
            say(lang, f"severity.{ep.severity}")
            if ep.severity in ("high", "medium", "low")
            else ep.severity
        )
        name = say(lang, "tl.episode", status=words.get(ep.status, ep.status), severity=severity)
        until = label(end) if ep.end is not None else say(lang, "tl.now")
        tip = f"{name}: " + say(lang, "episode.to", start=label(ep.start), end=until)
        parts.append(
            f'<rect class="tl-episode tl-ep-{escape(ep.status)}" x="{x0}" y="{EPISODE_TOP}" '
            f'width="{round(w, 1)}" height="{EPISODE_H}"><title>{escape(tip)}</title></rect>'
        )
        if w >= 90:
            parts.append(
                f'<text class="tl-ep-text" x="{round(x0 + 6, 1)}" y="{EPISODE_TOP + 25}">'
                f"{escape(words.get(ep.status, ep.status))}</text>"
            )
        for at, kind in ep.actions:
            ax = x(at)
            did = say(lang, "tl.action", action=_action(kind, lang), date=label(at))
            parts.append(
                f'<path class="tl-action" d="M{ax} {EPISODE_TOP + EPISODE_H + 2} l-6 10 h12 z">'
                f"<title>{escape(did)}</title></path>"
            )

    # Gaps between kept visits, labelled where there is room.
    visits = sorted(data.visits)
    for a, b in itertools.pairwise(visits):
        xa, xb = x(a), x(b)
        if xb - xa >= 44:
            mid = round((xa + xb) / 2, 1)
            parts.append(
                f'<text class="tl-gap" x="{mid}" y="{VISIT_Y - 16}" text-anchor="middle">'
                f"{_days(b - a, lang)}</text>"
            )
    # The absence so far: from the last visit to today.
    if visits:
        xa, xn = x(visits[-1]), x(data.now)
        parts.append(
            f'<line class="tl-absence" x1="{xa}" y1="{VISIT_Y}" x2="{xn}" y2="{VISIT_Y}">'
            f"<title>{escape(say(lang, 'tl.absent_for', days=_days(data.now - visits[-1], lang)))}"
            "</title></line>"
        )
        if xn - xa >= 60:
            parts.append(
                f'<text class="tl-gap tl-gap-now" x="{round((xa + xn) / 2, 1)}" '
                f'y="{VISIT_Y - 16}" text-anchor="middle">'
                f"{escape(say(lang, 'tl.absent', days=_days(data.now - visits[-1], lang)))}</text>"
            )
    # Visits: a mark each, as wide as the usual visit when that is known (it is tiny at this
    # scale, so never thinner than a readable mark).
    length = (data.usual_minutes or 0.0) * 60.0
    for v in visits:
        vx = x(v)
        w = max(x(v + length) - vx, 5.0)
        tip = say(lang, "tl.visit", date=label(v))
        parts.append(
            f'<rect class="tl-visit" x="{round(vx - 2.5, 1)}" y="{VISIT_Y - 9}" '
            f'width="{round(w, 1)}" height="18" rx="2"><title>{escape(tip)}</title></rect>'
        )

    # Today and the deadline the detector holds.
    xn = x(data.now)
    parts.append(f'<line class="tl-now" x1="{xn}" y1="6" x2="{xn}" y2="{AXIS_Y}"/>')
    parts.append(
        f'<text class="tl-label tl-now-text" x="{xn - 4}" y="{VISIT_Y + 34}" '
        f'text-anchor="end">{escape(say(lang, "tl.today"))}</text>'
    )
    if data.deadline is not None:
        xd = x(data.deadline)
        anchor = "end" if xd > RIGHT - 80 else "start"
        dx = -4 if anchor == "end" else 4
        parts.append(
            f'<line class="tl-deadline" x1="{xd}" y1="6" x2="{xd}" y2="{AXIS_Y}">'
            f"<title>{escape(say(lang, 'tl.deadline_on', date=label(data.deadline)))}"
            "</title></line>"
        )
        parts.append(
            f'<text class="tl-label tl-deadline-text" x="{xd + dx}" y="{VISIT_Y + 52}" '
            f'text-anchor="{anchor}">{escape(say(lang, "legend.deadline"))}</text>'
        )

    title = say(lang, "timeline")
    desc = describe(data, label, lang)
    return (
        f'<svg id="{escape(svg_id)}" class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{escape(svg_id)}-title {escape(svg_id)}-desc" '
        # Time runs left to right in both languages (as on Hebrew calendars' charts); the
        # drawing keeps that direction, so its text anchors do not flip in a Hebrew page.
        f'preserveAspectRatio="xMinYMin meet" direction="ltr">'
        f'<title id="{escape(svg_id)}-title">{escape(title)}</title>'
        f'<desc id="{escape(svg_id)}-desc">{escape(desc)}</desc>' + "".join(parts) + "</svg>"
    )


def _action(kind: str, lang: str) -> str:
    known = ("call", "message", "incentive", "other")
    return say(lang, f"action.{kind}") if kind in known else kind


def describe(data: TimelineData, label: Label, lang: str = "en") -> str:
    """The chart in one paragraph, for screen readers and as its caption."""
    bits: list[str] = []
    visits = sorted(data.visits)
    if visits:
        bits.append(
            say(
                lang,
                "tl.d.visits",
                visits=plural(lang, "recent_visit", len(visits)),
                start=label(visits[0]),
                end=label(visits[-1]),
            )
        )
        bits.append(say(lang, "tl.d.absent", days=_days(data.now - visits[-1], lang)))
    else:
        bits.append(say(lang, "tl.d.none"))
    if data.deadline is not None:
        bits.append(say(lang, "tl.deadline_on", date=label(data.deadline)))
    if data.episodes:
        opened = sum(1 for e in data.episodes if e.status == "open")
        episodes = plural(lang, "episode", len(data.episodes))
        bits.append(say(lang, "tl.d.episodes", episodes=episodes, open=opened))
    return "; ".join(bits) + "."
