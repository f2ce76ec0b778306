"""Step 3 of the method: fit each policy on the earlier part of the window, score it later.

The split is by time: everything before ``split`` is the training history (replayed alone,
so nothing after the split leaks into the fit, not even whether an alerted member came
back); the policies chosen there are then replayed over the whole history and scored only
on what happens after the split (held-out).

Every family chooses its setting on the same months, out of sample: the training months are
split again in time (the same share); what a family fits from data (the risk model's
coefficients, BG/NBD's population, the cohort's usual gap and spread of the cadence rule) is
fitted on the earlier part, every setting of every family (the fixed rules too) is scored on
the later part only ("the selection months"), and the chosen settings' fitted figures are
refitted on all the training months. So a fitted family is not judged on months it learnt
from while the fixed rules are, nor the other way round. The held-out months are used for
nothing but the final score.

Objective: the highest recall (leavers alerted after their last visit, before they cancel)
among the grid points at least as precise as the fixed 60-day rule on the same training
data, by their precision and by their precision less one standard error, each against the
rule's own (``at_least_as_precise``); recall is compared to two decimals and ties go to the
shortest median delay. The grid is searched in stages (fixed days; cadence
z and floor, then cap, then early-warning variants; BG/NBD's p_alive over the chosen cadence
as fallback, then warning variants) to keep it to a few dozen replays.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from detector.core import Detector
from detector.core.risk import RiskPolicy
from offline.calibration import risk as risk_model
from offline.calibration.bgnbd import BgNbdFit, fit_bgnbd, summary_from_visits
from offline.calibration.hybrid import HybridGrid
from offline.calibration.members import Histories
from offline.calibration.misses import score_with_misses, visits_and_signs
from offline.calibration.objective import (
    MIN_CAUGHT,
    Objective,
    at_least_as_precise,
    precision_margin,
    score_key,
)
from offline.calibration.periods import (
    TRAIN_SHARE,
    PeriodScorer,
    score_period,
    scored_leavers,
    seen_from,
)
from offline.calibration.replayer import (
    WARNING_VARIANTS,
    WARNINGS_NONE,
    WARNINGS_PAYMENTS,
    Replayer,
    Spec,
    setting_label,
    variant_name,
)
from offline.calibration.scoring import Outcome, Score
from schemas import Alert
from schemas.units import DAY

# When no precision level was reached: the most leavers of the settings that caught
# MIN_CAUGHT, or, none having, the most precise (``_choose``).
LastResort = Literal["most_leavers", "most_precise"]
BASELINE: Spec = {"policy": "fixed", "absence_days": 60.0}
WARMUP_DAYS = 28.0  # a replay starting from nothing knows no rhythm yet: not scored


@dataclass(frozen=True, slots=True)
class Grid:
    fixed_days: tuple[float, ...] = (28, 35, 42, 49, 60, 75, 90)
    cadence_z: tuple[float, ...] = (2.0, 3.5)
    cadence_floor_days: tuple[float, ...] = (21, 28, 35, 42)
    cadence_cap_days: tuple[float, ...] = (60, 90, 120)
    p_alive: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35)
    # The fitted risk policy's thresholds: the modelled probability that the member will not
    # come back, per day of an absence (most absences end in a return, so these are low).
    # Finer from 0.7 up: precision rises steeply with the threshold there, where the
    # precision targets clubs set are reached (docs/calibration.md, section 3).
    risk_threshold: tuple[float, ...] = (
        0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9
    )  # fmt: skip
    risk_floor_days: tuple[float, ...] = (14.0, 28.0)
    # Early warnings of the risk family: the payment signs (which also feed its payment
    # term), or none (a club whose members who stay often fail a payment: each failure would
    # be a false alarm); swept at the lowest floor, the first only at the others.
    risk_warnings: tuple[str, ...] = ("payments", "none")
    # Tilts of the risk model's absence term (``detector.core.risk.tilted``), each with every
    # threshold; 0 alerts where the fitted probability says. Only 0 by default: a tilt of 1-1.5
    # raised the best recall at 0.8 on two chains generated apart (not on two 24-month ones),
    # but neither their selection months nor their earliest training months chose it
    # reliably, and on four profiles it moved three choices both ways (docs/calibration-figures.md,
    # "Tilting the absence term"); ``clubs_bench.py --risk-tilt``.
    risk_tilt: tuple[float, ...] = (0.0,)
    # The hybrid policy's search space (None: not tried); offline/calibration/hybrid.py.
    hybrid: HybridGrid | None = field(default_factory=lambda: HybridGrid())


SMALL_GRID = Grid(
    (42, 60, 75),
    (3.5,),
    (35,),
    (90,),
    (0.2,),
    (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9),
    (14.0,),
)
# The fixed rules every report shows on the held-out months, beside what was chosen.
REFERENCE_DAYS = (30.0, 45.0, 60.0)


@dataclass(slots=True)
class Trial:
    label: str
    family: str
    spec: Spec
    train: Score
    test: Score | None = None
    eligible: bool = False
    frontier: bool = False


@dataclass(slots=True)
class Fit:
    split: float
    train_start: float
    test_start: float
    end: float
    trials: list[Trial]
    chosen: Trial
    baseline: Trial
    best_per_family: dict[str, Trial]
    bgnbd: BgNbdFit | None
    bgnbd_note: str
    cohort_gap_days: float
    cohort_spread: float
    # per family: the early-warning variant chosen, and whether any warnings beat none
    warnings_choice: dict[str, str] = field(default_factory=dict)
    warnings_help: dict[str, bool] = field(default_factory=dict)
    objective: Objective = field(default_factory=Objective)
    objective_met: bool = False
    # When no setting met a precision target: the lower level the choice was made at (None:
    # the objective was met, or no level above the 60-day rule's was reached either).
    fallback_precision: float | None = None
    # ... and when none was reached either, the rule that chose
    last_resort: LastResort | None = None
    risk_note: str = ""
    risk_leavers: int = 0
    # Every family's settings are scored on [risk_select_start, split): after the months their
    # fitted figures were fitted on (the name is kept for the report's JSON).
    risk_select_start: float = 0.0
    # Leavers the scores can count (their last visit early enough to be judged): in the
    # selection months and in the held-out months.
    select_leavers: int = 0
    held_out_leavers: int = 0
    risk_importance: list[tuple[str, float]] = field(default_factory=list)
    hybrid_note: str = ""
    references: dict[str, Trial] = field(default_factory=dict)
    replays: int = 0
    seconds: float = 0.0

    @property
    def too_short(self) -> bool:
        """The selection months hold fewer leavers whose outcome can be judged than a setting
        must catch to be chosen: no setting can show itself better than another there."""
        return self.select_leavers < MIN_CAUGHT


def cohort_defaults(h: Histories, until: float) -> tuple[float, float]:
    """The training members' median usual gap and median spread (log-gap deviation)."""
    gaps: list[float] = []
    spreads: list[float] = []
    for m in h.members.values():
        v = [t for t in m.visits if t < until]
        if len(v) < 4:
            continue
        logs = [math.log(max((b - a) / DAY, 0.25)) for a, b in itertools.pairwise(v)]
        mu = statistics.median(logs)
        gaps.append(math.exp(mu))
        spreads.append(statistics.mean(abs(x - mu) for x in logs))
    if not gaps:
        return 7.0, 0.9
    return round(statistics.median(gaps), 2), round(statistics.median(spreads), 2)


def fit_population(h: Histories, until: float) -> BgNbdFit | None:
    first, last, count = [], [], []
    for m in h.members.values():
        v = [t for t in m.visits if t < until]
        if v:
            first.append(v[0])
            last.append(v[-1])
            count.append(len(v))
    if len(count) < 50:
        return None
    rows = summary_from_visits(first, last, count, until)
    return fit_bgnbd(rows.frequency, rows.recency, rows.T)


def _pareto(trials: list[Trial]) -> None:
    for t in trials:
        p, r = t.train.precision or 0.0, t.train.recall or 0.0
        t.frontier = not any(
            (o.train.precision or 0.0) >= p
            and (o.train.recall or 0.0) >= r
            and ((o.train.precision or 0.0) > p or (o.train.recall or 0.0) > r)
            for o in trials
        )


def _key(t: Trial) -> tuple[float, float]:
    return score_key(t.train)


def _margin(t: Trial) -> float:
    return precision_margin(t.train)


@dataclass(slots=True)
class _Search:
    """The settings one fit has tried, in the order they were replayed (ties go to the
    first): each replayed on the training months and scored on the selection months
    [inner, split) only, eligible when at least as precise as the 60-day rule, by its
    estimate and less one standard error (``at_least_as_precise``), and catching someone."""

    replayer: Replayer
    inner: float
    split: float
    progress: Callable[[str], None] | None
    # members whose absence began before the gate log: from when their alerts count
    seen_from: Mapping[str, float] = field(default_factory=dict)
    trials: list[Trial] = field(default_factory=list)
    # The 60-day rule's score on the selection months, which every setting is held to
    # (``at_least_as_precise``): None until it is scored (it is the first trial).
    baseline: Score | None = None
    # per family: the early-warning variant chosen, and whether any warnings beat none
    warnings_choice: dict[str, str] = field(default_factory=dict)
    warnings_help: dict[str, bool] = field(default_factory=dict)

    @property
    def baseline_precision(self) -> float:
        """The 60-day rule's precision on the selection months (0 before it is scored)."""
        return (self.baseline.precision or 0.0) if self.baseline is not None else 0.0

    def say(self, line: str) -> None:
        if self.progress:
            self.progress(line)

    def trial(self, family: str, spec: Spec) -> Trial:
        return self.trials_of(family, [spec])[0]

    def trials_of(self, family: str, specs: Sequence[Spec]) -> list[Trial]:
        """Each setting replayed through the training months (at once, with the replayer's
        workers) and scored on the selection months, recorded in the order given."""
        inner, split, seen = self.inner, self.split, self.seen_from

        def scorer(label: str, alerts: list[Alert], det: Detector) -> Score:
            return score_period(label, alerts, det, None, inner, split, seen_from=seen)

        jobs = [(setting_label(spec), spec, split) for spec in specs]
        done: list[Trial] = []
        for (label, spec, _), s in zip(jobs, self.replayer.scored(jobs, scorer), strict=True):
            t = Trial(label, family, spec, s)
            t.eligible = at_least_as_precise(s, self.baseline)
            self.trials.append(t)
            self.say(
                f"  {label:<48} precision {_f(s.precision)} recall {_f(s.recall)} "
                f"delay {_f(s.median_delay, 1)} d"
            )
            done.append(t)
        return done

    def best(self, family: str) -> Trial | None:
        """The family's eligible setting first in the objective's order, if any."""
        pool = [t for t in self.trials if t.family == family and t.eligible]
        return min(pool, key=_key) if pool else None

    def top(self, family: str) -> Trial:
        """The family's best; failing that, its first in the objective's order."""
        return self.best(family) or min((t for t in self.trials if t.family == family), key=_key)

    def try_warnings(self, family: str, top: Trial) -> Trial:
        """Each early-warning variant on the family's best so far; the best one stays."""
        tried = {
            variant_name(top.spec.get("warnings", WARNINGS_NONE if family == "fixed" else {})): top
        }
        names = [name for name in WARNING_VARIANTS if name not in tried]
        specs = [{**top.spec, "warnings": WARNING_VARIANTS[name]} for name in names]
        tried.update(zip(names, self.trials_of(family, specs), strict=True))
        pool = [t for t in tried.values() if t.eligible] or list(tried.values())
        winner = min(pool, key=_key)
        self.warnings_choice[family] = variant_name(winner.spec.get("warnings"))
        none = tried["none"]
        self.warnings_help[family] = winner is not none and (
            not none.eligible or _key(winner) < _key(none)
        )
        return winner


def fit_policies(
    h: Histories,
    replayer: Replayer,
    window_start: float,
    *,
    truth: dict[str, Outcome] | None = None,
    grid: Grid = Grid(),
    train_share: float = TRAIN_SHARE,
    progress: Callable[[str], None] | None = None,
    objective: Objective | None = None,
) -> Fit:
    """Fit on [window start, inner), choose on [inner, split), refit on [window start,
    split), then score the choices on [split, end].

    The families are searched in this order (each stage below), and the order matters: ties
    go to the setting tried first, and the 60-day rule, tried first, sets the precision
    every other setting must reach."""
    started = time.perf_counter()
    end = h.end
    split = window_start + train_share * (end - window_start)
    train_start = window_start + (WARMUP_DAYS * DAY if window_start <= h.start else 0.0)
    # Where the selection months start: every family's settings are scored from here.
    inner = train_start + train_share * (split - train_start)
    gap, spread = cohort_defaults(h, split)
    # The cohort figures the settings are chosen with: from before the selection months.
    gap_early, spread_early = cohort_defaults(h, inner)
    search = _Search(replayer, inner, split, progress, seen_from(h))
    baseline = _search_fixed(search, grid)
    cohort = {"cohort_gap_days": gap_early, "cohort_spread": spread_early}
    cadence = _search_cadence(search, grid, cohort)
    population, bgnbd_note = _search_bgnbd(search, grid, h, cadence)
    risk_leavers, importance, risk_note = _search_risk(
        search, grid, h, train_start, (gap_early, gap)
    )
    goal = objective or Objective()
    hybrid_note = _search_hybrid(search, h, grid, goal, gap_early, train_start)
    if hybrid_note:
        search.say(f"  {hybrid_note}")
    # The other fitted figures refitted on all the training months too (each setting keeps
    # its out-of-sample score): the cohort's usual gap and spread, BG/NBD's population.
    refit = _refit_population(h, split, population)
    if refit is not None:
        bgnbd_note += (
            f"; refitted on all the training months ({refit.n:,.0f} members): "
            f"r={refit.r:.3g}, alpha={refit.alpha:.3g} days, a={refit.a:.3g}, b={refit.b:.3g}"
        )
    _refit_specs(search.trials, gap, spread, refit)
    refs = _references(search)
    _pareto(search.trials)
    choice = _choose(search, goal)
    chosen, families = choice.chosen, choice.families
    # Held out: replay the whole history, score after the split (every risk threshold too:
    # the report draws its curve beside the fixed rules').
    curve = [t for t in search.trials if t.family in ("risk", "hybrid")]
    to_test = [baseline, chosen, *families.values(), *refs.values(), *curve]
    _score_held_out(replayer, to_test, truth, h, split, end)
    return Fit(
        split=split,
        train_start=train_start,
        test_start=split,
        end=end,
        trials=search.trials,
        chosen=chosen,
        baseline=baseline,
        best_per_family=families,
        bgnbd=refit if refit is not None else population,
        bgnbd_note=bgnbd_note,
        cohort_gap_days=gap,
        cohort_spread=spread,
        warnings_choice=search.warnings_choice,
        warnings_help=search.warnings_help,
        objective=goal,
        objective_met=choice.met,
        fallback_precision=choice.level,
        last_resort=choice.last_resort,
        risk_note=risk_note,
        risk_leavers=risk_leavers,
        risk_select_start=inner,
        select_leavers=scored_leavers(h, inner, split),
        held_out_leavers=scored_leavers(h, split, end),
        risk_importance=importance,
        hybrid_note=hybrid_note,
        references=refs,
        replays=replayer.count,
        seconds=time.perf_counter() - started,
    )


def _search_fixed(search: _Search, grid: Grid) -> Trial:
    """The 60-day rule first (it sets the precision every setting must reach), then each
    fixed number of days, then the early-warning variants on the best. Returns the 60-day
    rule's trial."""
    baseline = search.trial("fixed", dict(BASELINE))
    search.baseline = baseline.train
    baseline.eligible = True
    others = [float(d) for d in grid.fixed_days if float(d) != BASELINE["absence_days"]]
    search.trials_of("fixed", [{"policy": "fixed", "absence_days": d} for d in others])
    search.try_warnings("fixed", search.best("fixed") or baseline)
    return baseline


def _search_cadence(search: _Search, grid: Grid, cohort: Spec) -> Trial:
    """Cadence: z and floor at the middle cap (with the warnings that are precise on
    simulated clubs), then the cap, then each early-warning variant. ``cohort``: the
    cohort's usual gap and spread from before the selection months. Returns the best."""
    cap0 = grid.cadence_cap_days[len(grid.cadence_cap_days) // 2]
    search.trials_of("cadence", [
        {"policy": "cadence", "z": z, "floor_days": float(floor), "cap_days": float(cap0),
         **cohort, "warnings": WARNINGS_PAYMENTS}
        for z in grid.cadence_z for floor in grid.cadence_floor_days
    ])  # fmt: skip
    top = search.top("cadence")
    search.trials_of("cadence", [{**top.spec, "cap_days": float(cap)}
                                 for cap in grid.cadence_cap_days
                                 if cap != cap0 and cap > top.spec["floor_days"]])  # fmt: skip
    return search.try_warnings("cadence", search.best("cadence") or top)


def _search_bgnbd(
    search: _Search, grid: Grid, h: Histories, cadence: Trial
) -> tuple[BgNbdFit | None, str]:
    """BG/NBD's population fitted on the visits before the selection months (refitted on
    all the training months later), each p_alive over the chosen ``cadence`` as fallback,
    then the early-warning variants. Returns the population (None: not fitted) and the note
    the report prints."""
    if not grid.p_alive:
        return None, "BG/NBD not tried (no p_alive in the grid)"
    population = fit_population(h, search.inner)
    if population is None:
        return None, "too few members with visits to fit BG/NBD; the cadence policy stands in"
    if not population.converged:
        return population, (
            f"BG/NBD did not converge ({population.message}); the cadence policy stands in"
        )
    fallback = {k: v for k, v in cadence.spec.items() if k not in ("policy", "warnings")}
    params = {"r": population.r, "alpha": population.alpha, "a": population.a,
              "b": population.b}  # fmt: skip
    search.trials_of("bgnbd", [{"policy": "bgnbd", **params, "p_alive": p,
                                "p_escalate": round(p / 2, 3), "fallback": fallback,
                                "warnings": WARNINGS_PAYMENTS}
                               for p in grid.p_alive])  # fmt: skip
    search.try_warnings("bgnbd", search.top("bgnbd"))
    return population, (
        f"BG/NBD fitted on {population.n:,.0f} members: r={population.r:.3g}, "
        f"alpha={population.alpha:.3g} days, a={population.a:.3g}, b={population.b:.3g}"
    )


def _search_risk(
    search: _Search, grid: Grid, h: Histories, train_start: float, gaps: tuple[float, float]
) -> tuple[int, list[tuple[str, float]], str]:
    """The fitted risk policy. Its threshold is chosen out of sample: coefficients fitted on
    the earlier part of the training months (before ``inner``), each threshold scored on
    the later part only (which that fit never saw), then the coefficients refitted on all
    the training months for the chosen threshold. The held-out months stay untouched.

    ``gaps``: the cohort's usual gap before the selection months, and before the split.
    Returns the leavers the refit learnt from, the terms' importance and the report's note."""
    gap_early, gap = gaps
    early, _early_data, early_note = _fit_risk(
        h, search.replayer, train_start, search.inner, "the earlier training months", gap_early
    )
    search.say(f"  {early_note}; thresholds chosen on the later training months")
    search.trials_of("risk", [
        {**early, "threshold": float(p), "floor_days": float(floor),
         "warnings": WARNING_VARIANTS[variant], **({"tilt": tilt} if tilt else {})}
        for tilt in grid.risk_tilt
        for k, floor in enumerate(grid.risk_floor_days)
        for variant in (grid.risk_warnings if k == 0 else grid.risk_warnings[:1])
        for p in grid.risk_threshold
    ])  # fmt: skip
    # Refitted on all the training months; every threshold keeps its out-of-sample score.
    coefficients, data, refit_note = _fit_risk(
        h, search.replayer, train_start, search.split, "all the training months", gap
    )
    importance = risk_model.importance(coefficients, data) if "w_payment" in coefficients else []
    note = (
        f"{early_note}, and each threshold scored on the later training months (from "
        f"{_day(search.inner)}), which that fit never saw; then {refit_note}"
    )
    search.say(f"  {refit_note}")
    for t in search.trials:
        if t.family == "risk":
            t.spec = {
                **coefficients,
                **{
                    k: t.spec[k]
                    for k in ("threshold", "floor_days", "warnings", "tilt")
                    if k in t.spec
                },
            }
    return data.leavers, importance, note


def _fit_risk(
    h: Histories, replayer: Replayer, train_start: float, until: float, months: str, gap: float
) -> tuple[Spec, risk_model.RiskData, str]:
    """Coefficients from the absences of [train start, until), with a note in words; the
    reasoned defaults when too few absences ended with the member gone or the fit failed."""
    prior = RiskPolicy(cohort_gap_days=gap)
    data = risk_model.collect(h, replayer, until, train_start, gap)
    needed = risk_model.EVENTS_PER_PARAMETER * risk_model.parameters()
    failed = ""
    if data.leavers >= risk_model.MIN_LEAVERS:
        try:
            spec = risk_model.fit(data, prior)
        except risk_model.FitError as e:
            failed = str(e)
        else:
            return spec, data, _risk_fitted_note(data, months, needed, spec)
    note = (
        f"{failed}: the reasoned default coefficients were used for {months}"
        if failed
        else f"only {data.leavers} absences in {months} ended with the member gone; at "
        f"least {risk_model.MIN_LEAVERS} are needed to fit anything ({needed} to fit all terms "
        "freely): the reasoned default coefficients were used"
    )
    return {"policy": "risk", "cohort_gap_days": gap}, data, note


def _risk_fitted_note(data: risk_model.RiskData, months: str, needed: int, spec: Spec) -> str:
    """What a risk fit learnt from, in words (``needed``: leavers to fit every term freely)."""
    note = (
        f"risk model fitted on {data.absences:,} absences of {data.members:,} "
        f"members in {months}, {data.leavers:,} of them ending with the member gone"
    )
    if data.leavers < needed:
        note += (
            f" (fewer than the {needed} a model of {risk_model.parameters()} "
            "terms learns from freely: it stays close to the reasoned defaults)"
        )
    if spec.get("payment_lookback_days"):
        note += (
            f"; a failed payment or a refused entry in the {spec['payment_lookback_days']:g}"
            " days before an absence weighs in the risk too"
        )
    return note


def _refit_population(h: Histories, split: float, population: BgNbdFit | None) -> BgNbdFit | None:
    """BG/NBD's population refitted on all the training months: None when it was not fitted
    before the selection months or the refit does not converge."""
    if population is None:
        return None
    refit = fit_population(h, split)
    return refit if refit is not None and refit.converged else None


def _refit_specs(trials: list[Trial], gap: float, spread: float, refit: BgNbdFit | None) -> None:
    """Each setting given the figures refitted on all the training months (the cohort's usual
    gap and spread, BG/NBD's population when ``refit``); it keeps its out-of-sample score."""
    for t in trials:
        if t.family == "cadence":
            t.spec = {**t.spec, "cohort_gap_days": gap, "cohort_spread": spread}
        elif t.family == "bgnbd":
            fb = {**t.spec["fallback"], "cohort_gap_days": gap, "cohort_spread": spread}
            t.spec = {**t.spec, "fallback": fb}
            if refit is not None:
                t.spec.update(r=refit.r, alpha=refit.alpha, a=refit.a, b=refit.b)
        elif t.family == "hybrid":
            t.spec = {**t.spec, "cohort_gap_days": gap}


def _references(search: _Search) -> dict[str, Trial]:
    """The fixed rules every report shows, by label: the trial already run, else a new one."""
    refs: dict[str, Trial] = {}
    for days in REFERENCE_DAYS:
        spec = {"policy": "fixed", "absence_days": days}
        found = next((t for t in search.trials if t.spec == spec), None)
        refs[setting_label(spec)] = found or search.trial("fixed", spec)
    return refs


# When no setting meets a precision target, it is lowered in these steps until one does.
FALLBACK_STEP = 0.1


def fallback_levels(goal: Objective, floor: float) -> list[float]:
    """The precision levels tried, highest first, when no setting meets ``goal``: the target
    less one step, two steps, ... while above ``floor`` (the 60-day rule's precision on the
    selection months, which every eligible setting reaches). None for an alert budget."""
    if goal.alerts_per_week is not None:
        return []
    levels: list[float] = []
    level = round(goal.precision - FALLBACK_STEP, 6)
    while level > floor and level > 0.0:
        levels.append(level)
        level = round(level - FALLBACK_STEP, 6)
    return levels


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: Trial
    families: dict[str, Trial]  # each family's best, the same way
    met: bool  # whether any setting met the objective
    level: float | None  # the precision level the choice was made at when none did
    # When no level was reached either, the rule that chose (None: not needed).
    last_resort: LastResort | None = None


def _choose(search: _Search, goal: Objective) -> Choice:
    """The first in the objective's order among those meeting ``goal``; else, the club having
    asked for precision, the highest precision some eligible setting reaches (the target
    lowered in steps of ``FALLBACK_STEP``) and the first in the objective's order there. A
    club that asked for 80 % and can have 60 % gets the most leavers at 60 %, not the most
    leavers at any precision above the 60-day rule's.

    Else (no level above the 60-day rule's precision is reached, or none is left between it
    and the target) the last resort, among the eligible (at least as precise as the 60-day
    rule): the first in the objective's order of those that caught ``MIN_CAUGHT`` leavers;
    when none did (a small club: 11 leavers to judge in a year of 900 members), the most
    precise less one standard error: which setting caught one leaver more is then noise,
    and the club asked for precision first."""
    meeting = [t for t in search.trials if goal.met(t.train)]
    eligible = [t for t in search.trials if t.eligible]
    pool, level = meeting, None
    last_resort: LastResort | None = None
    if not meeting:
        for step in fallback_levels(goal, search.baseline_precision):
            pool = [t for t in eligible if Objective(precision=step).met(t.train)]
            if pool:
                level = step
                break
    if not pool:
        pool = [t for t in eligible if t.train.caught >= MIN_CAUGHT]
        last_resort = "most_leavers" if pool else "most_precise"
    # (max: the first of equals, in the order tried)
    chosen = min(pool, key=_key) if pool else max(eligible, key=_margin)
    families: dict[str, Trial] = {}
    for family in ("fixed", "cadence", "bgnbd", "risk", "hybrid"):
        best = [t for t in meeting if t.family == family]
        b = min(best, key=_key) if best else search.best(family)
        if b is not None:
            families[family] = b
    return Choice(chosen, families, bool(meeting), level, last_resort)


def _score_held_out(
    replayer: Replayer,
    trials: list[Trial],
    truth: dict[str, Outcome] | None,
    h: Histories,
    start: float,
    end: float,
) -> None:
    """Each trial (once, in order) replayed over the whole history, scored on [start, end],
    with its leavers there counted by why it caught or missed them (``Score.missed``)."""
    visits, signs = visits_and_signs(h)

    def scorer(label: str, alerts: list[Alert], det: Detector) -> Score:
        return score_with_misses(label, alerts, det, truth, visits, signs, start, end)

    once = list({id(t): t for t in trials}.values())
    scores = replayer.scored([(t.label, t.spec, None) for t in once], scorer)
    for t, s in zip(once, scores, strict=True):
        t.test = s


def _search_hybrid(
    search: _Search, h: Histories, grid: Grid, goal: Objective, gap: float, train_start: float
) -> str:
    """The hybrid family: its grid searched offline on [train start, inner) from one
    recorded replay of the training months (offline/calibration/hybrid.py), then the
    setting chosen for each precision target replayed for real and scored on the selection
    months [inner, split) only, like every family's settings (the search's scores leave out
    the same members' alerts, ``search.seen_from``). ``gap``: the cohort's usual gap from
    before the selection months. Returns the note the report prints."""
    if grid.hybrid is None:
        return ""
    from offline.calibration import hybrid

    split, inner = search.split, search.inner
    started = time.perf_counter()
    ab = hybrid.record(h, search.replayer, split, gap)
    scorer = PeriodScorer(ab.detector, seen_from=search.seen_from)
    found = hybrid.search(
        ab,
        grid.hybrid,
        goal,
        scorer,
        train_start,
        inner,
        search.baseline_precision,
        workers=search.replayer.workers,
    )
    tried: list[Spec] = []
    for spec in found.chosen.values():
        if spec not in tried:
            tried.append(spec)
    search.trials_of("hybrid", [{**hybrid.settings(spec), "cohort_gap_days": gap}
                                for spec in tried])  # fmt: skip
    own = found.chosen.get(goal.precision if goal.alerts_per_week is None else -1.0)
    words = "" if own is None else f"; for {goal.words()}: {hybrid.describe(own)}"
    return (
        f"{found.note} (to {_day(inner)}), in {time.perf_counter() - started:.0f} s{words}; "
        f"the {len(tried)} distinct settings chosen (one per precision target reached of "
        f"{', '.join(f'{p:.0%}' for p in grid.hybrid.targets)}, the 60-day rule's and the "
        "club's) scored on the later training months, which the search never saw"
    )


def _day(t: float) -> str:
    return f"{datetime.fromtimestamp(t, UTC):%Y-%m-%d}"


def _f(value: float | None, digits: int = 2) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def config_spec(spec: Spec) -> Spec:
    """The spec as the detector's configuration file holds it (plain JSON numbers)."""
    out: Spec = {}
    for k, v in spec.items():
        if isinstance(v, dict):
            out[k] = config_spec(v)
        elif isinstance(v, (float, np.floating)):
            out[k] = float(round(float(v), 6))
        else:
            out[k] = v
    return out
