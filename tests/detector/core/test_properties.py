"""Invariants of the core, under hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from detector.core import FixedPolicy
from detector.core.replay import replay
from tests.detector.core.events import DAY, at, visit

POLICY = FixedPolicy(absence_days=7)
LATENESS = 2 * DAY

# Visits of a few members over ~two months, on half-day steps.
visits = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=120)),
    min_size=1,
    max_size=40,
).map(
    lambda vs: sorted(
        (visit(m, half / 2, n=i) for i, (m, half) in enumerate(vs)), key=lambda e: e.occurred_at
    )
)


def ids(alerts):
    return sorted((a.alert_id, a.type) for a in alerts)


@given(visits, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_reordering_within_the_lateness_bound_changes_no_alert(events, rnd) -> None:
    end = at(200)
    expected = ids(replay(events, POLICY, LATENESS, until=end))
    # Shuffle only among events less than the lateness apart: each event may be delivered
    # at most LATENESS after a later one.
    jittered = sorted(
        events, key=lambda e: e.occurred_at.timestamp() + rnd.uniform(0, LATENESS * 0.99)
    )
    assert ids(replay(jittered, POLICY, LATENESS, until=end)) == expected


@given(visits, st.data())
@settings(max_examples=200, deadline=None)
def test_duplicates_change_nothing(events, data) -> None:
    end = at(200)
    expected = [
        (a.alert_id, a.type, a.raised_at) for a in replay(events, POLICY, LATENESS, until=end)
    ]
    dup_idx = data.draw(st.lists(st.integers(0, len(events) - 1), max_size=10))
    doubled = list(events)
    for i in sorted(dup_idx, reverse=True):
        doubled.insert(i + 1, events[i])
    got = [(a.alert_id, a.type, a.raised_at) for a in replay(doubled, POLICY, LATENESS, until=end)]
    assert got == expected


@given(visits)
@settings(max_examples=100, deadline=None)
def test_every_episode_opens_once_and_closes_at_most_once(events) -> None:
    alerts = list(replay(events, POLICY, LATENESS, until=at(200)))
    assert len({a.alert_id for a in alerts}) == len(alerts)
    by_episode: dict[str, list[str]] = {}
    for a in alerts:
        by_episode.setdefault(a.episode_id, []).append(a.type)
    for seq in by_episode.values():
        assert seq[0] == "at_risk"
        assert seq.count("recovered") + seq.count("churned") <= 1
