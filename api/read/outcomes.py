"""Episode outcomes and what actions bring members back: pure functions over plain rows.

An episode is the alerts sharing an ``episode_id``: ``at_risk``, maybe ``escalated``, then
``recovered`` (the member came back) or ``churned`` (cancelled). Its outcome is read from
those alerts only, so it needs no state of its own and replays give the same answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas.units import DAY

EpisodeStatus = Literal["open", "recovered", "churned"]
ActionKind = Literal["call", "message", "incentive", "other"]
ACTION_KINDS: tuple[ActionKind, ...] = ("call", "message", "incentive", "other")
# The row of episodes nobody acted on: the baseline an action must beat.
NO_ACTION = "none"


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    """One episode as the summary needs it."""

    episode_id: str
    status: EpisodeStatus
    closed_at: datetime | None  # when it recovered or churned (event time)
    # Per action kind, when it was first taken in this episode.
    first_action: dict[str, datetime]


def episode_status(types: Iterable[str]) -> EpisodeStatus:
    """Outcome from the types of an episode's alerts; churned wins if both were recorded."""
    kinds = set(types)
    if "churned" in kinds:
        return "churned"
    if "recovered" in kinds:
        return "recovered"
    return "open"


@dataclass(frozen=True, slots=True)
class ActionStats:
    action: str
    episodes: int
    recovered: int
    churned: int
    still_open: int
    recovery_rate: float | None
    median_days_to_return: float | None


def summarise(episodes: Iterable[EpisodeFacts]) -> list[ActionStats]:
    """Per action kind (and ``none``): episodes, outcomes, median days from action to return.

    An episode counts once per kind taken in it, from that kind's first action; a return
    before the action (the action was recorded late) is counted as 0 days.
    """
    rows: dict[str, list[EpisodeFacts]] = {k: [] for k in (*ACTION_KINDS, NO_ACTION)}
    for ep in episodes:
        if not ep.first_action:
            rows[NO_ACTION].append(ep)
        for kind in ep.first_action:
            rows.setdefault(kind, []).append(ep)
    out: list[ActionStats] = []
    for kind, eps in rows.items():
        recovered = [e for e in eps if e.status == "recovered"]
        churned = sum(1 for e in eps if e.status == "churned")
        days = [
            max(0.0, (e.closed_at - e.first_action[kind]).total_seconds() / DAY)
            for e in recovered
            if kind != NO_ACTION and e.closed_at is not None
        ]
        closed = len(recovered) + churned
        out.append(
            ActionStats(
                action=kind,
                episodes=len(eps),
                recovered=len(recovered),
                churned=churned,
                still_open=len(eps) - closed,
                recovery_rate=round(len(recovered) / closed, 4) if closed else None,
                median_days_to_return=round(statistics.median(days), 3) if days else None,
            )
        )
    return out
