"""Rules side by side on clubs of different shapes: does calibration find the best rule on a
club's own history, whatever the club?

    .venv/bin/python bench/clubs_bench.py [--profiles city,studio] [--members 3000]
        [--months 18] [--seed 1] [--quick] [--policy SPEC]... [--fitter MODULE:FUNC]...
        [--param NAME=VALUE]... [--club DIR]... [--ceiling] [--markdown FILE] [--json]
        [--keep DIR] [--risk-tilt 0,1]

For each club profile of ``lapse simulate`` (``simulator.PROFILES``):

1. Simulate the club (``simulate_files``: ``--members``, ``--months`` × 30.44 days from
   2025-01-01, ``--seed``, the profile's parameters and sites) into a temporary directory.
2. Run ``lapse calibrate``'s API (``offline.calibrate.calibrate``, the full grid or
   ``--quick``'s small one) on the club's access and membership files, with ``truth.csv``
   for the held-out score only: it fits on the history before its split (60 % of the
   window) and scores its choice on the months after it.
3. Replay the whole history with each compared policy (``Replayer``, the replay calibrate
   uses) and score it with ``score_period`` (calibrate's scoring) on the **same held-out
   months** against the truth: the fixed 30/45/60-day rules, the cadence and BG/NBD
   policies with their defaults, every ``--policy`` spec, and every ``--fitter``'s policy.

Figures (``offline.calibration.scoring``): precision (at-risk alerts whose member did not
come back), recall (dropouts alerted after their true last visit and before cancelling),
recall with lead (the alert at least 14 days before cancelling), median days from the true
last visit to the alert, and episodes per 1,000 member-weeks (at-risk alerts, each opens
one episode, over the members active in the held-out months × its weeks). Alerts and
dropouts in the last 30 days are not scored (the history cannot tell yet).

Extra policies. ``--policy SPEC`` takes ``lapse evaluate``'s spec strings (``fixed:42``,
``cadence:z=2,floor_days=7``) or a JSON object of the configuration file
(``{"policy": "cadence", "z": 2}``), optionally named ``LABEL=SPEC``. ``--fitter
pkg.module:function`` names a function that receives a :class:`TrainingClub` (the club's
events, calibrate's split and report) and returns ``(label, spec)``: a fitted policy, which
must be fitted on events before ``split`` only (the bench scores after it).

Other clubs. ``--param NAME=VALUE`` overrides a ``SimParams`` field on every profile simulated
(``--profiles default --param gradual_share=0.9 --param 'decline_days=[28,56]'``): a club of
another shape without writing a profile for it.

Clubs of other generators. ``--club DIR`` (repeatable) scores a club whose ``access.csv``,
``membership.csv`` and ``truth.csv`` (``lapse simulate``'s truth columns) some other
generator wrote, steps 2 and 3 alone, named after its directory; with ``--club`` the
profiles are simulated only when ``--profiles`` names them. A generator written apart from
``simulator/`` tells whether calibrate's choices hold on clubs it was not built beside.

How far from the best. ``--ceiling`` adds a table: beside calibrate's choice, the setting of
the risk family (calibrate's thresholds) and of the hybrid family (its whole grid) that,
scored **with the truth** on the held-out months, catches the most leavers with 14 days' lead
at calibrate's precision target (``ceiling``). An upper bound no club can choose by: the gap
from calibrate's choice to it is what a better choice could win, the gap from it to a goal is
what no setting of these families reaches.

``--risk-tilt 0,1`` has calibrate try each tilt of the risk model's absence term with every
threshold (``Grid.risk_tilt``, ``detector.core.risk.tilted``; 0 alone by default).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offline.calibrate import calibrate, read_files  # noqa: E402
from offline.calibration import hybrid  # noqa: E402
from offline.calibration.fitting import SMALL_GRID, Grid  # noqa: E402
from offline.calibration.members import Histories, build_histories  # noqa: E402
from offline.calibration.misses import MISSED_GROUPS, score_with_misses, visits_and_signs  # noqa: E402
from offline.calibration.periods import score_period  # noqa: E402
from offline.calibration.replayer import Replayer, Spec, setting_label  # noqa: E402
from offline.calibration.report import Calibration  # noqa: E402
from offline.calibration.scoring import LEAD_DAYS, Outcome, Score, read_truth  # noqa: E402
from offline.evaluate import parse_spec  # noqa: E402
from schemas import Event  # noqa: E402
from schemas.units import DAY  # noqa: E402
from simulator import PROFILES, SimParams, simulate_profile  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)
MONTH_DAYS = 30.44
CLUB_FILES = ("access.csv", "membership.csv", "truth.csv")  # what ``--club DIR`` must hold
TENANT = "club"
# The rules every club is scored with: the fixed rules a club could write by hand, and the
# detector's policies as shipped (no calibration).
BASE_POLICIES: tuple[tuple[str, Spec], ...] = (
    ("fixed:30", {"policy": "fixed", "absence_days": 30.0}),
    ("fixed:45", {"policy": "fixed", "absence_days": 45.0}),
    ("fixed:60", {"policy": "fixed", "absence_days": 60.0}),
    ("cadence (default)", {"policy": "cadence"}),
    ("bgnbd (default)", {"policy": "bgnbd"}),
    ("risk (default)", {"policy": "risk"}),
    ("hybrid (default)", {"policy": "hybrid"}),
)


@dataclass(frozen=True, slots=True)
class TrainingClub:
    """What a ``--fitter`` gets: fit on events before ``split`` only."""

    profile: str
    tenant_id: str
    paths: tuple[str, ...]
    files: Sequence[Sequence[Event]]  # each file's events in file order, the whole history
    window_start: float  # calibrate's window (POSIX seconds)
    split: float  # training ends, held-out scoring starts
    end: float
    calibration: Calibration


Fitter = Callable[[TrainingClub], tuple[str, Spec]]


@dataclass(slots=True)
class Result:
    profile: str
    label: str
    score: Score
    kind: str  # "rule", "calibrate", "extra", "fitted"

    @property
    def missed(self) -> dict[str, int] | None:
        """Held-out leavers by group (``offline.calibration.misses``)."""
        return self.score.missed

    def as_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "label": self.label, "kind": self.kind,
                **self.score.as_dict(), "missed_leavers": self.missed}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Best:
    """The setting of one family that, scored with the truth on the held-out months, caught
    the most leavers with two weeks' lead at ``target`` precision or more (None: none did)."""

    family: str
    target: float
    label: str | None
    spec: Spec | None  # the detector's configuration of that setting
    score: Score | None
    settings: int  # how many settings of the family were scored


@dataclass(slots=True)
class ClubRun:
    profile: str
    events: int
    held_out_days: float
    chosen: str
    results: list[Result] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    # ``--ceiling``: the best each family could do on the held-out months, read with the truth
    ceiling: list[Best] = field(default_factory=list)


def parse_param(text: str) -> tuple[str, Any]:
    """``NAME=VALUE``: a :class:`SimParams` field and its value, read as JSON (a list becomes
    a tuple) or else as text (``timezone=Asia/Tokyo``)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or name not in {f.name for f in fields(SimParams)}:
        raise ValueError(f"{text!r}: expected NAME=VALUE, NAME a field of SimParams")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name, tuple(value) if isinstance(value, list) else value


def best_of(family: str, target: float, scored: Sequence[tuple[str, Spec, Score]]) -> Best:
    """The first of ``scored`` (label, spec, held-out score) that caught the most leavers
    with two weeks' lead at ``target`` precision or more, then the earliest (median delay)."""
    pool = [
        (label, spec, s)
        for label, spec, s in scored
        if s.precision is not None and s.precision >= target and s.caught_early
    ]
    if not pool:
        return Best(family, target, None, None, None, len(scored))
    label, spec, s = min(pool, key=lambda x: (-x[2].caught_early, x[2].median_delay or 0.0))
    return Best(family, target, label, spec, s, len(scored))


def ceiling(
    c: Calibration,
    histories: Histories,
    replayer: Replayer,
    truth: dict[str, Outcome],
    target: float | None = None,
    hybrid_grid: hybrid.HybridGrid | None = None,
) -> list[Best]:
    """What the risk and hybrid families could reach on the held-out months, each setting
    scored **with the truth** and the best kept (``best_of``, at ``target`` precision, by
    default calibrate's target): an upper bound on what any choice from the club's own
    history could get, not a choice a club can make. How far calibrate's choice falls short
    of it is what a better choice could win; how far the bound falls short of a goal, no
    choice among these settings can.

    ``histories``: the whole history's members (``build_histories``), for the hybrid
    family's recording. The risk family: calibrate's own thresholds (each with its
    coefficients refitted on all the training months, scored held out by calibrate
    itself). The hybrid family: every setting of ``hybrid_grid`` (the grid calibrate
    searched; default ``HybridGrid()``), evaluated offline from one recorded replay of the
    whole history (``offline.calibration.hybrid``: the evaluation calibrate's search runs on
    its training months, which the tests pin to the detector's own alerts)."""
    fit = c.fit
    goal = fit.objective.precision if target is None else target
    risk = [
        (t.label, t.spec, t.test) for t in fit.trials if t.family == "risk" and t.test is not None
    ]
    gap = fit.cohort_gap_days
    absences = hybrid.record(histories, replayer, fit.end + DAY, gap)
    scored: list[tuple[str, Spec, Score]] = []
    for spec in (hybrid_grid or hybrid.HybridGrid()).candidates():
        config = {**hybrid.settings(spec), "cohort_gap_days": gap}
        label = setting_label(config)
        alerts = hybrid.alerts_of(spec, absences)
        s = score_period(label, alerts, absences.detector, truth, fit.split, fit.end)
        scored.append((label, config, s))
    return [best_of("risk", goal, risk), best_of("hybrid", goal, scored)]


def parse_policy_arg(text: str) -> tuple[str, Spec]:
    """``[LABEL=]SPEC``: an evaluate-style spec string or a JSON object."""
    label = ""
    body = text
    if not text.lstrip().startswith("{") and "=" in text.split(":", 1)[0]:
        label, _, body = text.partition("=")
    if body.lstrip().startswith("{"):
        spec: Spec = json.loads(body)
        return (label or json.dumps(spec, sort_keys=True)), spec
    return (label or body), dict(parse_spec(body))


def load_fitter(name: str) -> Fitter:
    module, _, func = name.partition(":")
    fitter: Fitter = getattr(importlib.import_module(module), func)
    return fitter


def run_club(
    profile: str,
    *,
    members: int,
    days: int,
    seed: int,
    grid: Grid,
    extra: Sequence[tuple[str, Spec]] = (),
    fitters: Sequence[Fitter] = (),
    directory: Path,
    say: Callable[[str], None] = lambda _text: None,
    params: Mapping[str, Any] | None = None,
    with_ceiling: bool = False,
    workers: int = 1,
) -> ClubRun:
    """Simulate one club (the profile, ``params`` overriding its :class:`SimParams`), then
    ``score_club`` it."""
    out = directory / profile
    t0 = time.perf_counter()
    summary = simulate_profile(
        str(out), profile, members=members, days=days, seed=seed, start=START, tenant_id=TENANT,
        **(params or {}),
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    say(f"{profile}: simulated {summary.events:,} events in {seconds:.1f} s; calibrating")
    return score_club(profile, out, grid=grid, extra=extra, fitters=fitters, say=say,
                      with_ceiling=with_ceiling, simulated_seconds=seconds,
                      workers=workers)  # fmt: skip


def score_club(
    name: str,
    out: Path,
    *,
    grid: Grid,
    extra: Sequence[tuple[str, Spec]] = (),
    fitters: Sequence[Fitter] = (),
    say: Callable[[str], None] = lambda _text: None,
    with_ceiling: bool = False,
    simulated_seconds: float | None = None,
    workers: int = 1,
) -> ClubRun:
    """Calibrate on the club in ``out`` (``access.csv``, ``membership.csv``; ``truth.csv``
    for scoring only), score every policy on calibrate's held-out months; with
    ``with_ceiling``, also what each family could reach there (``ceiling``). The club may
    come from ``lapse simulate`` or from any generator writing its files and truth.
    ``workers``: calibrate's (the same choice and figures with any number)."""
    paths = (str(out / "access.csv"), str(out / "membership.csv"))
    truth_path = str(out / "truth.csv")
    t1 = time.perf_counter()
    c = calibrate(paths, TENANT, truth_path=truth_path, grid=grid, workers=workers)
    t2 = time.perf_counter()
    fit = c.fit
    say(f"{name}: calibrate chose {c.chosen.label} ({fit.replays} replays, {t2 - t1:.0f} s)")
    files = read_files(paths, TENANT).files
    replayer = Replayer(files, TENANT)
    truth = read_truth(truth_path)
    histories = build_histories(e for f in files for e in f)
    visits, signs = visits_and_signs(histories)
    run = ClubRun(
        profile=name,
        events=sum(len(f) for f in files),
        held_out_days=(fit.end - fit.split) / 86_400.0,
        chosen=c.chosen.label,
    )

    def held_out(label: str, spec: Spec, kind: str) -> None:
        alerts, detector = replayer.run(spec)
        s = score_with_misses(label, alerts, detector, truth, visits, signs, fit.split, fit.end)
        run.results.append(Result(name, label, s, kind))

    for label, spec in BASE_POLICIES:
        held_out(label, spec, "rule")
    for label, spec in extra:
        held_out(label, spec, "extra")
    club = TrainingClub(name, TENANT, paths, files, c.window.start, fit.split, fit.end, c)
    for fitter in fitters:
        label, spec = fitter(club)
        held_out(label, spec, "fitted")
    chosen = c.chosen.test
    assert chosen is not None  # calibrate scores its choice on the held-out months
    run.results.append(Result(name, f"calibrate → {c.chosen.label}", chosen, "calibrate"))
    t3 = time.perf_counter()
    if simulated_seconds is not None:
        run.seconds["simulate"] = simulated_seconds
    run.seconds |= {"calibrate": t2 - t1, "score": t3 - t2}
    say(f"{name}: scored {len(run.results)} policies in {t3 - t2:.0f} s")
    if with_ceiling:
        run.ceiling = ceiling(c, histories, replayer, truth, hybrid_grid=grid.hybrid)
        run.seconds["ceiling"] = time.perf_counter() - t3
        say(f"{name}: ceiling in {run.seconds['ceiling']:.0f} s")
    return run


def _f(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


COLUMNS = (
    "precision",
    "recall",
    f"recall (≥ {LEAD_DAYS:g} d before cancelling)",
    "median days after last visit",
    "episodes / 1,000 member-weeks",
    "alerts",
    f"leavers caught ≥ {LEAD_DAYS:g} d / scored",
)


def _figures(s: Score) -> str:
    """A compact cell: precision / recall with lead / median days / episodes per 1,000 mw."""
    return (f"{_f(s.precision)} / {_f(s.recall_early)} / {_f(s.median_delay, 0)} / "
            f"{_f(s.alerts_per_1000_week, 1)}")  # fmt: skip


def _cells(s: Score) -> list[str]:
    return [
        _f(s.precision),
        _f(s.recall),
        _f(s.recall_early),
        _f(s.median_delay, 0),
        _f(s.alerts_per_1000_week, 1),
        f"{s.alerts:,}",
        f"{s.caught_early:,} / {s.dropouts:,}",
    ]


def markdown(runs: Sequence[ClubRun], how: str) -> str:
    """One table, grouped by profile; then a compact one with a column per profile."""
    lines = [
        "| profile | policy | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for run in runs:
        for r in run.results:
            lines.append(f"| {run.profile} | `{r.label}` | " + " | ".join(_cells(r.score)) + " |")
    labels: list[str] = []
    for run in runs:
        for r in run.results:
            key = "calibrate's choice" if r.kind == "calibrate" else r.label
            if key not in labels:
                labels.append(key)
    lines += [
        "",
        "Side by side: precision / recall with ≥ 14 days' lead / median days after the last "
        "visit / episodes per 1,000 member-weeks.",
        "",
        "| policy | " + " | ".join(run.profile for run in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for key in labels:
        cells = []
        for run in runs:
            found = [
                r
                for r in run.results
                if (r.kind == "calibrate" and key == "calibrate's choice") or r.label == key
            ]
            if not found:
                cells.append("")
                continue
            cells.append(_figures(found[0].score))
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "Calibrate's choices: " + "; ".join(f"{r.profile}: `{r.chosen}`" for r in runs)]
    text = how + "\n\n" + "\n".join(lines) + "\n\n" + missed_markdown(runs)
    if any(run.ceiling for run in runs):
        text += "\n" + ceiling_markdown(runs)
    return text


def ceiling_markdown(runs: Sequence[ClubRun]) -> str:
    """The third table (``--ceiling``): calibrate's choice beside the best of each family
    read with the truth."""
    families = [b.family for b in next(run.ceiling for run in runs if run.ceiling)]
    lines = [
        "What each family could reach on the held-out months, read with the truth (an upper "
        "bound, not a choice a club can make: each setting scored against who really left, "
        "the one catching the most leavers with 14 days' lead at calibrate's precision target "
        "or more kept): precision / recall with ≥ 14 days' lead / median days after the last "
        "visit / episodes per 1,000 member-weeks.",
        "",
        "| profile | target | calibrate's choice | "
        + " | ".join(f"best {f} setting" for f in families) + " |",
        "|---|---:|---|" + "---|" * len(families),
    ]  # fmt: skip
    for run in runs:
        if not run.ceiling:
            continue
        chosen = next(r.score for r in run.results if r.kind == "calibrate")
        cells = [
            "none reaches it" if b.score is None else f"{_figures(b.score)} (`{b.label}`)"
            for b in run.ceiling
        ]
        lines.append(f"| {run.profile} | {run.ceiling[0].target:.2f} | {_figures(chosen)} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def chosen_missed(run: ClubRun) -> dict[str, Any] | None:
    """Calibrate's choice's held-out leavers by group: counts, shares and the total."""
    found = [r for r in run.results if r.kind == "calibrate" and r.missed is not None]
    if not found:
        return None
    counts = found[0].missed or {}
    total = sum(counts.values())
    shares = {k: (n / total if total else None) for k, n in counts.items()}
    return {"profile": run.profile, "policy": run.chosen, "leavers": total,
            "counts": counts, "shares": shares}  # fmt: skip


def missed_markdown(runs: Sequence[ClubRun]) -> str:
    """The second table: calibrate's choice's held-out leavers by why they were missed."""
    lines = [
        "Held-out leavers calibrate's choice missed, and why: each leaver scored on the "
        "held-out months (the recall's denominator) in the first group that fits "
        "(`missed_leavers` in `offline/calibration/misses.py` defines them); count (share).",
        "",
        "| profile | calibrate's choice | leavers | "
        + " | ".join(title for _, title in MISSED_GROUPS)
        + " |",
        "|---|---|---:|" + "---:|" * len(MISSED_GROUPS),
    ]
    for run in runs:
        m = chosen_missed(run)
        if m is None:
            continue
        cells = [f"{m['counts'][k]:,} ({_f(m['shares'][k], 2)})" for k, _ in MISSED_GROUPS]
        lines.append(f"| {run.profile} | `{run.chosen}` | {m['leavers']:,} | "
                     + " | ".join(cells) + " |")  # fmt: skip
    return "\n".join(lines) + "\n"


def describe(args: argparse.Namespace, days: int, profiles: Sequence[str]) -> str:
    clubs = "".join(f" --club {d}" for d in args.club)
    simulated = (
        f"each profile simulated ({args.members:,} members, {days} days from {START.date()}, "
        f"seed {args.seed}"
        + (f"; its parameters overridden by {', '.join(args.param)}" if args.param else "")
        + ")"
    )
    given = "each `--club` directory's files as its generator wrote them"
    which = ", ".join(([simulated] if profiles else []) + ([given] if args.club else []))
    simulating = f" --members {args.members} --months {args.months:g} --seed {args.seed}"
    return (
        f"Measured with `bench/clubs_bench.py{simulating if profiles else ''}"
        f"{' --quick' if args.quick else ''}"
        + "".join(f" --param {p}" for p in args.param)
        + (f" --profiles {args.profiles}" if args.club and profiles else "")
        + clubs
        + f"{' --ceiling' if args.ceiling else ''}"
        + (f" --risk-tilt {args.risk_tilt}" if args.risk_tilt else "")
        + (f" --workers {args.workers}" if args.workers > 1 else "")
        + f"`: {which}; "
        "`lapse calibrate` run on its access and membership files (fit before its split, 60 % "
        "of the window), and every policy replayed over the whole history and scored against "
        "`truth.csv` on calibrate's held-out months only (the last 30 days unscored)."
    )


def main(argv: Sequence[str] | None = None) -> list[ClubRun]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--profiles",
        help="comma-separated names (default: every profile, or none with --club)",
    )
    parser.add_argument(
        "--club",
        action="append",
        default=[],
        help="DIR: a club of another generator (access.csv, membership.csv, truth.csv), repeatable",
    )
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--months", type=float, default=18.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="calibrate's small grid")
    parser.add_argument(
        "--workers", type=int, default=1, help="calibrate's replays at once (forked processes)"
    )
    parser.add_argument("--policy", action="append", default=[], help="[LABEL=]SPEC, repeatable")
    parser.add_argument("--fitter", action="append", default=[], help="MODULE:FUNC, repeatable")
    parser.add_argument("--markdown", help="write the tables here (Markdown)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON, last")
    parser.add_argument("--keep", help="simulate into this directory and keep the files")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        help="NAME=VALUE: a SimParams field overridden on every profile, repeatable",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="also score every risk threshold and hybrid setting with the truth",
    )
    parser.add_argument(
        "--risk-tilt",
        help="comma-separated tilts of the risk model's absence term for calibrate to try "
        "with every threshold (Grid.risk_tilt; default: 0 alone)",
    )
    args = parser.parse_args(argv)
    try:
        params = dict(parse_param(p) for p in args.param)
    except ValueError as e:
        parser.error(str(e))
    if args.profiles is None:  # every profile, or none when other clubs are given
        args.profiles = "" if args.club else ",".join(PROFILES)
    names = [n.strip() for n in args.profiles.split(",") if n.strip()]
    clubs = [Path(d) for d in args.club]
    absent = [str(d) for d in clubs for f in CLUB_FILES if not (d / f).is_file()]
    if absent:
        parser.error(f"--club needs {', '.join(CLUB_FILES)} in each directory: {absent}")
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        parser.error(f"unknown profile(s) {unknown}; known: {', '.join(PROFILES)}")
    days = round(args.months * MONTH_DAYS)
    extra = [parse_policy_arg(p) for p in args.policy]
    fitters = [load_fitter(f) for f in args.fitter]
    grid = SMALL_GRID if args.quick else Grid()
    if args.risk_tilt:
        try:
            tilts = tuple(float(x) for x in args.risk_tilt.split(","))
        except ValueError:
            parser.error(f"--risk-tilt: numbers separated by commas, not {args.risk_tilt!r}")
        if any(not t >= 0 for t in tilts):
            parser.error(f"--risk-tilt: a tilt is 0 or more, not {args.risk_tilt!r}")
        grid = replace(grid, risk_tilt=tilts)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    runs: list[ClubRun] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clubs-bench-") as tmp:
        directory = Path(args.keep) if args.keep else Path(tmp)
        for name in names:
            runs.append(
                run_club(
                    name,
                    members=args.members,
                    days=days,
                    seed=args.seed,
                    grid=grid,
                    extra=extra,
                    fitters=fitters,
                    directory=directory,
                    say=say,
                    params=params,
                    with_ceiling=args.ceiling,
                    workers=args.workers,
                )
            )
        for club_dir in clubs:
            runs.append(
                score_club(
                    club_dir.resolve().name,
                    club_dir,
                    grid=grid,
                    extra=extra,
                    fitters=fitters,
                    say=say,
                    with_ceiling=args.ceiling,
                    workers=args.workers,
                )
            )
    how = describe(args, days, names)
    table = markdown(runs, how)
    print(table)
    for run in runs:
        print(
            f"{run.profile}: {run.events:,} events, held-out {run.held_out_days:.0f} days; "
            + ", ".join(f"{k} {v:.0f} s" for k, v in run.seconds.items())
        )
    print(f"total {time.perf_counter() - started:.0f} s")
    if args.markdown:
        Path(args.markdown).write_text(table, encoding="utf-8")
    if args.json:
        ceilings = [{"profile": run.profile, "family": b.family, "target": b.target,
                     "label": b.label, "settings": b.settings,
                     **(b.score.as_dict() if b.score else {})}
                    for run in runs for b in run.ceiling]  # fmt: skip
        print(json.dumps({"clubs": [r.as_dict() for run in runs for r in run.results],
                          "missed": [chosen_missed(run) for run in runs],
                          "ceiling": ceilings}))  # fmt: skip
    return runs


if __name__ == "__main__":
    main()
