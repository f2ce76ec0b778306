"""Searching the hybrid policy's parameters on the club's own history (``lapse calibrate``).

The hybrid policy (``detector.core.hybrid``) alerts at the earliest of three days counted
from the start of an absence; each depends on the parameters and on a few figures of the
member fixed for that absence (their usual gap, the ``decline`` term, when a payment warning
opened). So the training months are replayed **once**, with a recorder that raises no
absence alert of its own and notes those figures for every absence, and each candidate of
the grid is then evaluated offline: its alert day per absence is computed from the recorded
figures (numpy, all absences at once), an alert is raised if that day comes before the
absence ended (a visit, a freeze, a cancellation), and the alerts are scored by calibration's
own scoring (``periods.score_period``'s ``score``). A thousand candidates cost seconds, not
a thousand replays.

What the recorder's replay raises is what every candidate with the payment warnings on
raises too (a failed payment or a denied entry opens a low at-risk alert at once), except in
an absence where the candidate's own deadline came first: there the deadline's alert is the
at-risk one and the warning opens nothing. Candidates without warnings raise only their
deadlines' alerts: the engine notes a failed payment or a denied entry whatever the
warnings (``trouble_at``), so their payment rule raises the at-risk alert itself.

Selection is out of sample, the way the risk policy's threshold is chosen: candidates are
ranked on the earlier training months only; the few chosen (one per precision target, the
club's own among them) are then replayed for real and scored on the later training months,
which the search never saw, and only those scores compete with the other families.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from detector.core.cadence import usual_gap_of
from detector.core.hybrid import HybridPolicy, longest_return_days
from detector.core.policy import Warnings
from detector.core.risk import PAYMENT_WARNINGS, features
from offline.calibration.members import Histories
from offline.calibration.objective import Objective, precision_margin, score_key
from offline.calibration.replayer import WARNING_VARIANTS, Replayer, Spec
from offline.calibration.risk import PAYMENT_LOOKBACK_DAYS
from offline.calibration.scoring import Score
from offline.calibration.signs import absence_signs
from offline.workers import fork_map
from schemas import Alert
from schemas.units import DAY

if TYPE_CHECKING:
    from detector.core import Detector
    from detector.core.store import MemberStore

DEFAULT = HybridPolicy()
Array = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class HybridGrid:
    """The search space, by reasoning about clubs in general (not about any one club).

    - floor: a stayer's holiday lasts one to six weeks: from three weeks (clubs whose members
      rarely travel) to two months (clubs whose members take long breaks and come back);
    - k: the personal deadline in usual gaps, from two (metronome-regular members) to eight
      (members whose gaps vary a lot); the cap keeps rare visitors' deadlines in reach;
    - longest return: whether the deadline waits for the longest absence the member came
      back from (a member's own longest holiday) or not;
    - decline: off, or the six weeks before the absence below 30 %, 50 % or 70 % of the
      usual count (Poisson noise in a six-week count of a weekly member is about 40 %: a
      ratio much above 0.7 would flag ordinary weeks), alerted after two to four weeks away;
    - warnings: the payment signs at once (each failure alerts the day it comes) or only
      through the payment rule (a club where members who stay often fail a payment);
    - payment days (that rule, without warnings): a failure during the absence alerts
      after one week away (clubs where a failure nearly always means leaving), two, or
      four (clubs where members who stay fail payments and come back);
    - payment lookback: whether a failure in the six weeks before the absence counts too
      (a card that failed while the member still came a few times; six weeks: a monthly
      collection and its retries) or only one during it.
    """

    floor_days: tuple[float, ...] = (21.0, 28.0, 35.0, 42.0, 49.0, 60.0)
    k: tuple[float, ...] = (2.0, 3.0, 4.0, 6.0, 8.0)
    cap_days: tuple[float, ...] = (60.0, 90.0)
    # Never before the longest absence the member came back from (1), or regardless (0).
    longest_factor: tuple[float, ...] = (0.0, 1.0)
    decline_ratio: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)
    decline_days: tuple[float, ...] = (14.0, 21.0, 28.0)
    warnings: tuple[str, ...] = ("payments", "none")
    payment_days: tuple[float, ...] = (7.0, 14.0, 28.0)
    payment_lookback_days: tuple[float, ...] = (0.0, PAYMENT_LOOKBACK_DAYS)
    # The precision targets whose best candidates are replayed for real (the club's own
    # objective is always added): the points of the curve the report shows.
    targets: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

    def candidates(self) -> list[Spec]:
        out: list[Spec] = []
        seen: set[tuple[float, ...]] = set()
        for floor, k, cap, lf, ratio, days, warn, paid, back in itertools.product(
            self.floor_days,
            self.k,
            self.cap_days,
            self.longest_factor,
            self.decline_ratio,
            self.decline_days,
            self.warnings,
            self.payment_days,
            self.payment_lookback_days,
        ):
            if cap < floor:
                continue
            if ratio == 0.0:
                days = self.decline_days[0]  # idle: one candidate, not one per day
            elif days >= floor:
                continue  # never earlier than the personal deadline: the same as off
            if warn == "payments" and not back:
                # The failure's own alert comes first: the rule's day only moves the medium
                # alert, which no score reads: one candidate, at the policy's default. (With
                # the lookback, a sign before the absence raises no warning during it: the
                # rule's day is then the at-risk alert, so each day is a candidate.)
                paid = DEFAULT.payment_days
            key = (floor, k, cap, lf, ratio, days, float(warn == "payments"), paid, back)
            if key in seen:
                continue
            seen.add(key)
            out.append(
                {
                    "policy": "hybrid",
                    "floor_days": floor,
                    "k": k,
                    "cap_days": cap,
                    "longest_factor": lf,
                    "decline_ratio": ratio,
                    "decline_days": days,
                    "payment_days": paid,
                    "warnings": warn,
                }
                # (only when on: a setting without it reads as it always has)
                | ({"payment_lookback_days": back} if back else {})
            )
        return out


class RecordingHybrid:
    """A policy that raises no absence alert (its deadline is never) and records, per
    (slot, anchor), the figures the hybrid policy reads at the latest event of that
    absence (the latest sign before the absence among them, for the payment lookback); it
    raises the payment warnings (the "payments" variant's), so its alerts are theirs."""

    def __init__(self, cohort_gap_days: float) -> None:
        self.name = "hybrid"
        self.cohort_gap_days = cohort_gap_days
        self.probe = HybridPolicy(cohort_gap_days=cohort_gap_days, warnings=PAYMENT_WARNINGS)
        self.seen: dict[tuple[int, float], tuple[float, float, float, float, float, bool]] = {}

    @property
    def warnings(self) -> Warnings | None:
        return self.probe.warnings

    def deadline(self, m: MemberStore, slot: int) -> float | None:
        a = m.anchor[slot]
        if a == a:
            usual = usual_gap_of(m.gap_n[slot], m.gap_mu[slot], self.cohort_gap_days)
            decline = features(m, slot, self.cohort_gap_days)[1]
            # The engine counts no absence of a member never seen at a gate before their
            # site has gate data (``Detector._reschedule``).
            blind = m.last_visit[slot] != m.last_visit[slot] and (
                m.coverage_of(slot) != m.coverage_of(slot)
            )
            known = self.seen.get((slot, a))
            paid, before = absence_signs(m, slot, None if known is None else known[2:4])
            longest = longest_return_days(m, slot)
            self.seen[(slot, a)] = (usual, decline, paid, before, longest, blind)
        return None

    def escalation(self, m: MemberStore, slot: int) -> float | None:
        return None

    def reason(self, m: MemberStore, slot: int, now: float) -> tuple[str, dict[str, float]]:
        return self.probe.reason(m, slot, now)

    def usual_gap_days(self, m: MemberStore, slot: int) -> float:
        return self.probe.usual_gap_days(m, slot)


@dataclass(slots=True)
class Absences:
    """Every recorded absence of the training months, as columns (one row per absence)."""

    member: list[str]
    anchor: Array
    end: Array  # when it ended: a visit, a freeze, a cancellation, or the split
    usual: Array
    decline: Array
    paid: Array  # when a payment warning opened during it (inf: none)
    before: Array  # the latest failed payment or denied entry before it (-inf: none)
    longest: Array  # the longest absence the member had come back from (0: none)
    warning_alerts: list[Alert]  # the recorder's (payment warnings), in order
    detector: Detector  # the recorder's, for the members' final figures


def _end(visits: list[float], cancels: list[float], frozen: Iterable[tuple[float, float | None]],
         a: float, split: float) -> float:  # fmt: skip
    k = bisect.bisect_right(visits, a + 60.0)  # the next visit after the anchor's
    end = visits[k] if k < len(visits) and visits[k] < split else split
    for c in cancels:
        if a < c < end:
            end = c
    for start, _stop in frozen:
        if a < start < end:
            end = start
    return end


def record(h: Histories, replayer: Replayer, split: float, cohort_gap_days: float) -> Absences:
    """One replay of [history start, split) with the recorder; the absences as columns."""
    recorder = RecordingHybrid(cohort_gap_days)
    alerts, det = replayer.run_policy(recorder, until=split)
    store = det.store
    member: list[str] = []
    rows: list[tuple[float, float, float, float, float, float, float]] = []
    for (slot, a), (usual, decline, paid, before, longest, blind) in recorder.seen.items():
        mid = store.ids[slot]
        if blind or mid is None or mid not in h.members:
            continue
        hist = h.members[mid]
        end = _end(hist.visits, hist.cancellations, hist.frozen, a, split)
        if end <= a:
            continue
        member.append(mid)
        rows.append((a, end, usual, decline, paid, before, longest))
    cols = np.array(rows, dtype=np.float64).reshape(-1, 7)
    return Absences(
        member,
        cols[:, 0],
        cols[:, 1],
        cols[:, 2],
        cols[:, 3],
        cols[:, 4],
        cols[:, 5],
        cols[:, 6],
        [a for a in alerts if a.type == "at_risk"],
        det,
    )


@dataclass(frozen=True, slots=True)
class _Raised:
    """An at-risk alert as scoring reads it (type, member, when): the offline candidates'
    alerts are never sent anywhere, so the full ``Alert`` is not built."""

    member_id: str
    raised_at: datetime
    type: str = "at_risk"


def alert_days(spec: Spec, ab: Absences) -> Array:
    """The candidate's deadline per absence (POSIX seconds), from the recorded figures: the
    same arithmetic as ``HybridPolicy.deadline``, the payment rule included (with the
    warnings on, the failure's own alert comes first and the rule only moves the medium one;
    without them, the rule's day is the at-risk alert)."""
    p = DEFAULT  # what a spec leaves out, the policy's default
    floor = spec.get("floor_days", p.floor_days)
    k, cap = spec.get("k", p.k), spec.get("cap_days", p.cap_days)
    days = np.maximum(k * ab.usual, floor)
    lf = spec.get("longest_factor", p.longest_factor)
    if lf > 0.0:
        days = np.maximum(days, lf * ab.longest)
    days = np.minimum(days, cap)
    ratio = spec.get("decline_ratio", p.decline_ratio)
    if ratio > 0.0:
        dd = spec.get("decline_days", p.decline_days)
        declined = (ab.decline <= math.log(ratio)) & (dd < days)
        days = np.where(declined, dd, days)
    at = ab.anchor + days * DAY
    back = spec.get("payment_lookback_days", p.payment_lookback_days)
    # The sign the rule reads: one in the lookback before the absence counts from the anchor
    # on (earlier than any during it), else the first during it.
    sign = np.where(ab.before >= ab.anchor - back * DAY, ab.before, ab.paid) if back else ab.paid
    paid = np.maximum(sign, ab.anchor + spec.get("payment_days", p.payment_days) * DAY)
    out: Array = np.where(sign < at, np.minimum(at, paid), at)
    return out


def alerts_of(spec: Spec, ab: Absences) -> list[Alert]:
    """The at-risk alerts a candidate raises in the training months (see the module doc)."""
    at = alert_days(spec, ab)
    payments = spec["warnings"] == "payments"
    fires = at < ab.end
    if payments:
        fires &= at < ab.paid
    out: list[Any] = [
        _Raised(ab.member[i], datetime.fromtimestamp(float(at[i]), UTC))
        for i in np.flatnonzero(fires)
    ]
    if payments:
        # The warnings the recorder raised, but those of absences where the deadline came
        # first (there the warning opened nothing: an episode was open).
        pre_empted = {
            (ab.member[i], float(ab.paid[i])) for i in np.flatnonzero(fires & (ab.paid < ab.end))
        }
        out += [
            a for a in ab.warning_alerts if (a.member_id, a.raised_at.timestamp()) not in pre_empted
        ]
    return cast(list[Alert], out)


def settings(spec: Spec) -> Spec:
    """A candidate as the detector's configuration holds it (warnings as an object)."""
    return {**spec, "warnings": WARNING_VARIANTS[spec["warnings"]]}


@dataclass(slots=True)
class Search:
    chosen: dict[float, Spec]  # precision target -> the candidate chosen for it
    scores: dict[int, Score]  # candidate index -> its score on the earlier months
    candidates: list[Spec]
    absences: int
    note: str


def search(
    ab: Absences,
    grid: HybridGrid,
    objective: Objective,
    score: Any,
    start: float,
    end: float,
    baseline_precision: float = 0.0,
    workers: int = 1,
) -> Search:
    """Rank every candidate on [start, end) (the earlier training months) and pick, for the
    club's objective, for each of the grid's precision targets and for the baseline's
    precision (the fixed 60-day rule's on the training months: calibrate's fallback when no
    setting meets the objective), the best that meets it: the most leavers caught (two
    decimals), then the earliest. A grid target none meets is skipped; for the club's own
    objective and the baseline's, the most precise by its lower bound stands in.
    ``score(label, alerts, start, end)`` scores alerts; the candidates are scored in
    ``workers`` forked processes (``offline.workers.fork_map``), in the same order either way."""
    cands = grid.candidates()

    def candidate(i: int) -> Score:
        s: Score = score(f"hybrid#{i}", alerts_of(cands[i], ab), start, end)
        return s

    # Thousands of small items: sent to the workers in chunks of a hundred.
    scores = dict(enumerate(fork_map(candidate, len(cands), workers, chunk=100)))
    goals = {objective.precision if objective.alerts_per_week is None else -1.0: objective}
    for p in (*grid.targets, round(baseline_precision, 3)):
        goals.setdefault(p, Objective(precision=p))
    chosen: dict[float, Spec] = {}
    own = next(iter(goals))
    for target, goal in goals.items():
        meeting = [i for i, s in scores.items() if goal.met(s)]
        if meeting:
            best = min(meeting, key=lambda i: (score_key(scores[i]), i))
        elif target in (own, round(baseline_precision, 3)):
            best = max(scores, key=lambda i: (precision_margin(scores[i]), -i))
        else:
            continue  # a target no setting reaches adds no point to the curve
        chosen[target] = cands[best]
    note = (
        f"{len(cands):,} hybrid settings evaluated offline on {len(ab.anchor):,} absences "
        f"recorded in one replay, ranked on the earlier training months"
    )
    return Search(chosen, scores, cands, len(ab.anchor), note)


def describe(spec: Spec) -> str:
    """A setting in words ("members ..." reads on): for the report and the notes."""
    text = (
        f"away for max({spec['floor_days']:g} days, {spec['k']:g} × their usual gap), "
        f"at most {spec['cap_days']:g} days"
    )
    if spec.get("longest_factor"):
        text += " (never before the longest absence they came back from)"
    ratio = spec.get("decline_ratio", 0.0)
    if ratio:
        text += (
            f", or {spec['decline_days']:g} days for those who came less than {ratio:.0%} "
            "of their usual count in the six weeks before"
        )
    back = spec.get("payment_lookback_days", DEFAULT.payment_lookback_days)
    if spec.get("warnings") == "payments":  # (the search's form; the report words its own)
        text += ", and members with a failed payment or a refused entry at once"
        if back:
            text += (
                f" (and after {spec.get('payment_days', DEFAULT.payment_days):g} days away "
                f"when one came in the {back:g} days before the absence)"
            )
    elif spec.get("warnings") in (None, "none"):  # the rule's day is their alert
        text += (
            f", or {spec.get('payment_days', DEFAULT.payment_days):g} days for those with a "
            "failed payment or a refused entry during the absence"
        )
        if back:
            text += f" or in the {back:g} days before it"
    return text
