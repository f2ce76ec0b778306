"""``lapse evaluate``: replay history through the real detector, per policy, and score it.

Each policy runs over the same files with the same code as live; its alerts are scored
against ground truth (``--truth``, as ``lapse simulate`` writes) or, without it, against the
cancellations in the history. The fixed 60-day rule always runs alongside as the baseline.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from detector.config import ConfigError, build_policy
from detector.core import Detector, Policy, Status
from detector.core.visits import VisitRules
from offline.calibration.scoring import Outcome, Score, outcomes_from_history, read_truth, score
from offline.replay import NothingToLearn, ReplayReport, replay_files
from offline.workers import fork_map
from schemas.history import Zones

BASELINE = "fixed:60"


def parse_spec(spec: str) -> dict[str, object]:
    """``fixed:60``, ``cadence``, ``bgnbd``, or ``cadence:z=2,floor_days=7`` style specs, as
    the configuration file's policy object (``{"policy": "fixed", "absence_days": 60.0}``)."""
    name, _, rest = spec.partition(":")
    params: dict[str, object] = {"policy": name}

    def number(text: str, key: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{spec}: {key} must be a number, not {text.strip()!r}") from None

    if name == "fixed" and rest and "=" not in rest:
        params["absence_days"] = number(rest, "absence_days")
    elif rest:
        for item in rest.split(","):
            key, _, value = item.partition("=")
            key = key.strip()
            params[key] = number(value, key) if value.strip() not in ("", "null") else None
    return params


def parse_policy(spec: str) -> Policy:
    """A spec string (:func:`parse_spec`) as the policy it names."""
    return build_policy(parse_spec(spec), spec)


@dataclass(slots=True)
class Run:
    label: str
    score: Score


def evaluate(
    paths: Sequence[str],
    tenant_id: str,
    policies: Sequence[tuple[str, Policy]],
    *,
    truth: dict[str, Outcome] | None,
    lateness: float = 86400.0,
    horizon_days: float = 30.0,
    visits: VisitRules | None = None,
    in_memory: Collection[str] = (),
    workers: int = 1,
    zones: Zones | None = None,
) -> list[Run]:
    """Each policy replayed over the files (``in_memory``: those sorted in memory, as
    ``replay_files`` reads them) and scored on the whole history; ``workers`` policies at
    once, each worker reading the files itself (``offline.workers.fork_map``: the runs in
    the policies' order, the same with any number). ``zones``: the zones naive times are
    read in (``--time-zone``)."""

    def run(index: int) -> Run:
        label, policy = policies[index]
        detector = Detector(policy, visits=visits)
        report = ReplayReport()
        alerts = list(
            replay_files(
                list(paths),
                tenant_id,
                policy,
                lateness=lateness,
                visits=visits,
                report=report,
                detector=detector,
                in_memory=in_memory,
                zones=zones,
            )
        )
        states = list(detector.members.values())  # an iterator: read twice below
        times = [t for s in states for t in (s.first_visit, s.last_visit, s.joined_at) if t]
        if not times:
            first = "{}:{}: {}".format(*report.rejected[0]) if report.rejected else None
            raise NothingToLearn.in_files("score", len(report.rejected), first)
        start, end = min(times), max(times)
        last = {s.member_id: s.last_visit for s in states}
        outcomes = truth
        if outcomes is None:
            cancels = {
                s.member_id: s.status_at
                for s in states
                if s.status is Status.CANCELLED and s.status_at is not None
            }
            outcomes = outcomes_from_history(last, cancels)
        return Run(
            label,
            score(label, alerts, last, outcomes, start=start, end=end, horizon_days=horizon_days),
        )

    return fork_map(run, len(policies), workers)


def evaluate_specs(
    paths: Sequence[str],
    tenant_id: str,
    specs: Sequence[str],
    *,
    truth_path: str | None,
    lateness: float,
    horizon_days: float,
    in_memory: Collection[str] = (),
    workers: int = 1,
    zones: Zones | None = None,
) -> list[Run]:
    """``lapse evaluate``: the policies named by ``specs`` (``parse_policy``), the baseline
    first whether named or not, scored against ``truth_path`` or the files' cancellations."""
    labels = [BASELINE, *[s for s in specs if s != BASELINE]]
    policies = [(label, parse_policy(label)) for label in labels]
    truth = read_truth(truth_path) if truth_path else None
    return evaluate(
        paths,
        tenant_id,
        policies,
        truth=truth,
        lateness=lateness,
        horizon_days=horizon_days,
        in_memory=in_memory,
        workers=workers,
        zones=zones,
    )
