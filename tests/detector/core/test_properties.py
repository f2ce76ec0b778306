"""Invariants of the core, under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core import BgNbdPolicy, CadencePolicy, FixedPolicy
from detector.core.hybrid import HybridPolicy
from detector.core.replay import replay
from detector.core.risk import RiskPolicy
from schemas.units import DAY
from tests.detector.core.events import at, visit

POLICIES = [
    FixedPolicy(absence_days=7),
    CadencePolicy(floor_days=4, new_member_cap_days=8),
    BgNbdPolicy(fallback=CadencePolicy(floor_days=4, cap_days=30)),
    RiskPolicy(floor_days=4, cap_days=30),
    HybridPolicy(floor_days=6, cap_days=30, decline_days=3, payment_days=2),
]
by_name = pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
LATENESS = 2 * DAY

# Scans of a few members over ~two months, on half-day steps: mostly entries, some exits
# (visit durations) and denied entries (early warnings).
KINDS = st.sampled_from(["gate_entry"] * 6 + ["gate_exit", "entry_denied"])
visits = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=120), KINDS),
    min_size=1,
    max_size=40,
).map(
    lambda vs: sorted(
        (visit(m, half / 2, kind=k, n=i) for i, (m, half, k) in enumerate(vs)),
        key=lambda e: e.occurred_at,
    )
)


def ids(alerts):
    return sorted((a.alert_id, a.type) for a in alerts)


@by_name
@given(visits, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_reordering_within_the_lateness_bound_changes_no_alert(policy, events, rnd) -> None:
    end = at(200)
    expected = ids(replay(events, policy, LATENESS, until=end))
    # Shuffle only among events less than the lateness apart: each event may be delivered
    # at most LATENESS after a later one.
    jittered = sorted(
        events, key=lambda e: e.occurred_at.timestamp() + rnd.uniform(0, LATENESS * 0.99)
    )
    assert ids(replay(jittered, policy, LATENESS, until=end)) == expected


@by_name
@given(visits, st.data())
@settings(max_examples=200, deadline=None)
def test_duplicates_change_nothing(policy, events, data) -> None:
    end = at(200)
    expected = [
        (a.alert_id, a.type, a.raised_at) for a in replay(events, policy, LATENESS, until=end)
    ]
    dup_idx = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=10))
    doubled = list(events)
    for i in sorted(dup_idx, reverse=True):
        doubled.insert(i + 1, events[i])
    got = [(a.alert_id, a.type, a.raised_at) for a in replay(doubled, policy, LATENESS, until=end)]
    assert got == expected


@by_name
@given(visits)
@settings(max_examples=100, deadline=None)
def test_every_episode_opens_once_and_closes_at_most_once(policy, events) -> None:
    alerts = list(replay(events, policy, LATENESS, until=at(200)))
    assert len({a.alert_id for a in alerts}) == len(alerts)
    by_episode: dict[str, list[str]] = {}
    for a in alerts:
        by_episode.setdefault(a.episode_id, []).append(a.type)
    for seq in by_episode.values():
        assert seq[0] == "at_risk"
        assert seq.count("recovered") + seq.count("churned") <= 1
