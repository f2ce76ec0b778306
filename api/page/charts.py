"""Which actions bring members back, as inline SVG bars with the same figures as a table.

Pure: takes the rows of ``GET /v1/actions/summary`` and returns markup. Bars show the
recovery rate (recovered / closed episodes); an action with no closed episode yet gets no
bar and says so, rather than a bar of zero that reads as "never works".
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol

ACTION_NAMES = {
    "call": "Called",
    "message": "Messaged",
    "incentive": "Offered an incentive",
    "other": "Other action",
    "none": "No action (baseline)",
}
WIDTH = 720
NAME_W = 190
BAR_W = 330
ROW_H = 44


class SummaryRow(Protocol):
    @property
    def action(self) -> str: ...
    @property
    def episodes(self) -> int: ...
    @property
    def recovered(self) -> int: ...
    @property
    def churned(self) -> int: ...
    @property
    def still_open(self) -> int: ...
    @property
    def recovery_rate(self) -> float | None: ...
    @property
    def median_days_to_return(self) -> float | None: ...


def action_name(kind: str) -> str:
    return ACTION_NAMES.get(kind, kind)


def rate_text(row: SummaryRow) -> str:
    closed = row.recovered + row.churned
    if row.recovery_rate is None:
        return "no closed episode yet"
    return f"{row.recovery_rate:.0%} came back ({row.recovered} of {closed})"


def outcome_bars(rows: Sequence[SummaryRow], *, svg_id: str = "outcomes") -> str:
    height = ROW_H * len(rows) + 34
    parts: list[str] = [
        f'<text class="ch-head" x="{NAME_W + 4}" y="16">share of closed episodes where the '
        "member came back</text>",
        f'<line class="ch-axis" x1="{NAME_W}" y1="24" x2="{NAME_W}" y2="{height - 4}"/>',
    ]
    for i, row in enumerate(rows):
        y = 28 + i * ROW_H
        parts.append(
            f'<text class="ch-name" x="{NAME_W - 10}" y="{y + 25}" text-anchor="end">'
            f"{escape(action_name(row.action))}</text>"
        )
        if row.recovery_rate is not None:
            w = max(round(row.recovery_rate * BAR_W, 1), 2.0)
            parts.append(
                f'<rect class="ch-bar ch-{escape(row.action)}" x="{NAME_W}" y="{y + 8}" '
                f'width="{w}" height="26"><title>{escape(rate_text(row))}</title></rect>'
            )
            tx = NAME_W + w + 8
        else:
            tx = NAME_W + 8
        parts.append(
            f'<text class="ch-value" x="{tx}" y="{y + 25}">{escape(rate_text(row))}</text>'
        )
    desc = "; ".join(f"{action_name(r.action)}: {rate_text(r)}" for r in rows) + "."
    return (
        f'<svg id="{svg_id}" class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{svg_id}-title {svg_id}-desc" preserveAspectRatio="xMinYMin meet">'
        f'<title id="{svg_id}-title">Which actions bring members back</title>'
        f'<desc id="{svg_id}-desc">{escape(desc)}</desc>' + "".join(parts) + "</svg>"
    )


def outcome_table(rows: Sequence[SummaryRow]) -> str:
    body = []
    for r in rows:
        rate = "–" if r.recovery_rate is None else f"{r.recovery_rate:.0%}"
        median = "–" if r.median_days_to_return is None else f"{r.median_days_to_return:.1f}"
        body.append(
            f'<tr><th scope="row">{escape(action_name(r.action))}</th>'
            f"<td>{r.episodes}</td><td>{r.recovered}</td><td>{r.churned}</td>"
            f"<td>{r.still_open}</td><td>{rate}</td><td>{median}</td></tr>"
        )
    return (
        # Focusable and named: on a phone the table scrolls sideways, by keyboard too.
        '<div class="table-wrap" tabindex="0" role="region" aria-labelledby="outcomes-caption">'
        '<table class="outcomes"><caption id="outcomes-caption">'
        "Episodes by the action taken (an episode counts under each kind of action "
        "taken in it)</caption>"
        '<thead><tr><th scope="col">Action</th><th scope="col">Episodes</th>'
        '<th scope="col">Came back</th><th scope="col">Cancelled</th>'
        '<th scope="col">Still open</th><th scope="col">Came back, share of closed</th>'
        '<th scope="col">Median days from action to return</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
