"""A setting of the detector as calibration tries it, its name in the report, and the replay
that runs it over the club's events.

A setting (``Spec``) is the detector's policy configuration as a dict (``detector.config.
build_policy`` reads it); its early warnings are one of ``WARNING_VARIANTS``. ``Replayer``
holds the files read once and replays any setting over them, or over the part before a time,
in forked workers when asked: every family's search, the risk model's examples and the
held-out scores go through it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from detector.config import build_policy
from detector.core import Detector, Policy
from detector.core.replay import replay
from detector.core.visits import VisitRules
from offline.calibration.scoring import Score
from offline.workers import fork_map
from schemas import Alert, Event

Spec = dict[str, Any]


# Early warnings as the detector defines them, and the two variants tried against them:
# none at all, and only the membership signs (failed payments, denied entries), which on
# simulated clubs come almost only before cancellations, unlike a falling visit rate.
WARNINGS_DEFAULT: Spec | None = {}
WARNINGS_NONE: Spec | None = None
WARNINGS_PAYMENTS: Spec = {"min_usual_visits": 1e9, "duration_ratio": 0.0}
WARNING_VARIANTS: dict[str, Spec | None] = {
    "all": WARNINGS_DEFAULT,
    "none": WARNINGS_NONE,
    "payments": WARNINGS_PAYMENTS,
}


def setting_label(spec: Spec) -> str:
    """A setting's name in the report: the parameters the grid chose, not what a fit set
    (the risk policy's lookback comes with its coefficients, which the refit on all the
    training months replaces: only the hybrid grid chooses one)."""
    kind = spec["policy"]
    if kind == "fixed":
        base = f"fixed:{spec['absence_days']:g}"
        return base + (f",warnings={variant_name(spec['warnings'])}" if "warnings" in spec else "")
    names = (
        "z",
        "k",
        "floor_days",
        "cap_days",
        "longest_factor",
        "decline_ratio",
        "decline_days",
        "payment_days",
        *(("payment_lookback_days",) if kind == "hybrid" else ()),
    )
    keys = [k for k in (*names, "p_alive", "threshold", "tilt") if k in spec]
    parts = [f"{k}={spec[k]:g}" for k in keys]
    if kind == "bgnbd":
        fb = spec.get("fallback", {})
        parts += [f"floor_days={fb.get('floor_days', 0):g}"]
    if "warnings" in spec:
        parts.append(f"warnings={variant_name(spec['warnings'])}")
    return f"{kind}:{','.join(parts)}"


def variant_name(warnings: Spec | None) -> str:
    for name, value in WARNING_VARIANTS.items():
        if value == warnings:
            return name
    return "custom"


class Replayer:
    """The events read once; each call replays them (or those before a time) in file order.

    The files are merged by time once per cut (``until``) and the merged list kept: a club's
    grid replays the same events scores of times, and the merge was a fifth of each replay
    (0.8 of 4 s for 912,000 events). Merged per cut, not filtered from one merge: rows
    within the lateness are not in order, and a merge of the cut files can order them
    differently from the whole files' merge."""

    def __init__(
        self,
        files: Sequence[Sequence[Event]],
        tenant_id: str,
        *,
        lateness: float = 86_400.0,
        visits: VisitRules | None = None,
        coverage_start: float | None = None,
        workers: int = 1,
    ) -> None:
        self.coverage_start = coverage_start  # given: ``Detector.cover`` on each replay
        self.workers = workers
        self.files = files
        self.tenant_id = tenant_id
        self.lateness = lateness
        self.visits = visits
        self.count = 0
        self._merged: dict[float | None, list[Event]] = {}

    def run(self, spec: Spec, until: float | None = None) -> tuple[list[Alert], Detector]:
        return self.run_policy(build_policy(spec, setting_label(spec)), until)

    def scored(self, jobs: Sequence[Job], scorer: JobScorer) -> list[Score]:
        """Each job (label, spec, until) replayed and scored by ``scorer(label, alerts,
        detector)``, the scores in the jobs' order: with ``workers`` above 1, in that many
        forked processes at once (a replay is a pure function of the events and the spec,
        so the scores are the same either way: ``tests/offline/calibration/
        test_calibrate.py`` holds two workers to one). ``offline.workers.fork_map``: the children
        read the events the parent holds."""
        for _, _, until in jobs:  # merged once, before any fork: the workers share it
            self._merge(until)

        def job(index: int) -> Score:
            label, spec, until = jobs[index]
            return scorer(label, *self._replay(build_policy(spec, setting_label(spec)), until))

        self.count += len(jobs)
        return fork_map(job, len(jobs), self.workers)

    def run_policy(
        self, policy: Policy, until: float | None = None
    ) -> tuple[list[Alert], Detector]:
        self.count += 1
        return self._replay(policy, until)

    def _replay(self, policy: Policy, until: float | None) -> tuple[list[Alert], Detector]:
        merged = self._merge(until)
        detector = Detector(policy, visits=self.visits)
        if self.coverage_start is not None:
            detector.cover(self.tenant_id, self.coverage_start)
        alerts = list(
            replay(merged, policy, self.lateness, until=until, flush=True, detector=detector)
        )
        return alerts, detector

    def _merge(self, until: float | None) -> list[Event]:
        if until not in self._merged:
            files: Sequence[Sequence[Event]] = self.files
            if until is not None:
                files = [[e for e in f if e.occurred_at.timestamp() < until] for f in files]
            self._merged[until] = list(heapq.merge(*files, key=lambda e: e.occurred_at))
        return self._merged[until]


Job = tuple[str, Spec, float | None]  # a label, a setting, the replay's end (None: all)
JobScorer = Callable[[str, list[Alert], Detector], Score]
