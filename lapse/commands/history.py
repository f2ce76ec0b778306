"""The commands over a club's history files: ``lapse replay``, ``evaluate`` and ``calibrate``
(the offline tools) and ``lapse import`` (into the events topic), with what each prints.

Formats: docs/history-csv.md. Replay and calibrate write their findings to standard output
or files and their progress and summaries to standard error, so their output can be piped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lapse.commands.arguments import (
    add_lateness,
    add_time_zone,
    iso_time,
    not_negative,
    placed,
    positive,
    share,
)
from offline.workers import available_cpus
from plumbing.settings import POLICY_NAMES, Settings

if TYPE_CHECKING:
    from ingest.importer import ImportSummary
    from offline.calibration.report import Calibration
    from offline.evaluate import Run
    from offline.replay import ReplayReport

COVERAGE_HELP = (
    "ISO date from which the files' gate data is complete (default: the first access event "
    "in the files); no absence is counted before it. Without an offset, read in the "
    "--time-zone without a site, else in UTC"
)


# --- lapse replay ----------------------------------------------------------------------------


def add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = sub.add_parser(
        "replay",
        help="run the detector over history files; alerts out as JSON Lines",
        description="Formats: docs/history-csv.md (access CSV, membership CSV, JSON Lines).",
    )
    rep.set_defaults(run=run_replay)
    rep.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    rep.add_argument("--policy", choices=POLICY_NAMES, help="default policy")
    rep.add_argument("--config", help="detector configuration file (per-tenant policies)")
    add_lateness(rep)
    rep.add_argument(
        "--until",
        type=iso_time,
        help="ISO 8601 time to run the clock to after the last event (without an offset: as "
        "--coverage-start)",
    )
    rep.add_argument("--output", "-o", help="alerts file (default: standard output)")
    rep.add_argument("--coverage-start", metavar="DATE", type=iso_time, help=COVERAGE_HELP)
    add_time_zone(rep)
    rep.add_argument("files", nargs="+", metavar="FILE")


def out_of_order(command: str, args: argparse.Namespace) -> set[str]:
    """The files not in time order (``history.order``), each said on stderr with its
    figures: the command reads them into memory and sorts them. Read once before any alert
    is written."""
    from history.order import find_disorder, in_time_order

    disorder = find_disorder(args.files, args.tenant, args.lateness, args.zones)
    for order in disorder:
        sys.stderr.write(f"lapse {command}: {in_time_order(order)}\n")
    return {order.path for order in disorder}


async def run_replay(settings: Settings, args: argparse.Namespace) -> None:
    await asyncio.to_thread(_replay_files, settings, args)


def _replay_files(settings: Settings, args: argparse.Namespace) -> None:
    from detector.config import policies
    from detector.core.visits import VisitRules
    from lapse.progress import watch_reads
    from offline.replay import ReplayReport, replay_files, write_alerts
    from plumbing.runtime import tune_gc

    update: dict[str, object] = {}
    if args.policy:
        update["policy"] = args.policy
    if args.config:
        update["detector_config"] = args.config
    settings = settings.model_copy(update=update)
    in_memory = out_of_order("replay", args)
    report = ReplayReport()
    tune_gc()  # a long run that allocates per event, as the services
    alerts = replay_files(
        args.files,
        args.tenant,
        policies(settings),
        lateness=args.lateness,
        until=placed(args.until, args.zones),
        visits=VisitRules(window_seconds=settings.visit_window_seconds),
        report=report,
        coverage_start=placed(args.coverage_start, args.zones),
        in_memory=in_memory,
        zones=args.zones,
    )
    with watch_reads("replay", args.files):
        if args.output:
            with open(args.output, "w") as out:
                write_alerts(alerts, out)
        else:
            write_alerts(alerts, sys.stdout)
    print_report(report)


def print_report(report: ReplayReport, err: IO[str] | None = None, show: int = 20) -> None:
    """The replay's rate, alerts by type and the first ``show`` rejected rows (stderr)."""
    err = err or sys.stderr
    rate = report.events / report.seconds if report.seconds else 0.0
    print(
        f"replayed {report.events} events in {report.seconds:.1f}s ({rate:,.0f} events/s); "
        f"alerts: {dict(report.alerts) or 'none'}; rejected rows: {len(report.rejected)}",
        file=err,
    )
    for path, line, reason in report.rejected[:show]:
        print(f"  {path}:{line}: {reason}", file=err)
    if len(report.rejected) > show:
        print(f"  … and {len(report.rejected) - show} more", file=err)


# --- lapse evaluate --------------------------------------------------------------------------


def truth_file(text: str) -> str:
    """``--truth``: a file that exists, checked before the history is read (the truth is read
    last, after minutes of replays)."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def policy_spec(text: str) -> str:
    """An ``evaluate --policy`` spec, refused at parse time when it names no policy or a
    parameter it does not take or cannot be (before the files are read)."""
    from detector.config import ConfigError
    from offline.evaluate import parse_policy

    try:
        parse_policy(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="replay history per policy and score the alerts (precision, recall, delay, lead)",
    )
    ev.set_defaults(run=run_evaluate)
    ev.add_argument("--tenant", required=True)
    ev.add_argument(
        "--policy",
        action="append",
        type=policy_spec,
        help="policy to score (repeatable): fixed:60, hybrid, risk, cadence, bgnbd,"
        " cadence:z=2,floor_days=7 (default: hybrid, risk, cadence, bgnbd);"
        " the fixed 60-day rule always runs as the baseline",
    )
    ev.add_argument(
        "--truth", type=truth_file, help="ground truth CSV (lapse simulate writes truth.csv)"
    )
    ev.add_argument("--json", help="write the scores here as JSON")
    add_lateness(ev)
    ev.add_argument(
        "--workers",
        type=int,
        default=available_cpus(),
        help="policies replayed at once, in forked processes, each reading the files "
        "(default: the CPUs this process may use); the same scores with any number",
    )
    ev.add_argument(
        "--horizon-days",
        type=not_negative,
        default=30.0,
        help="alerts and dropouts this close to the end are not scored",
    )
    add_time_zone(ev)
    ev.add_argument("files", nargs="+", metavar="FILE")


async def run_evaluate(_settings: Settings, args: argparse.Namespace) -> None:
    await asyncio.to_thread(_evaluate, args)


def _evaluate(args: argparse.Namespace) -> None:
    from offline.evaluate import evaluate_specs

    runs = evaluate_specs(
        args.files,
        args.tenant,
        args.policy or ["hybrid", "risk", "cadence", "bgnbd"],
        truth_path=args.truth,
        lateness=args.lateness,
        horizon_days=args.horizon_days,
        in_memory=out_of_order("evaluate", args),
        workers=max(1, args.workers),
        zones=args.zones,
    )
    print_table(runs)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.score.as_dict() for r in runs], f, indent=2)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_table(runs: list[Run], out: IO[str] | None = None) -> None:
    """One line of scores per policy, the baseline's median delay over each one's."""
    from offline.evaluate import BASELINE

    out = out or sys.stdout
    base = next((r for r in runs if r.label == BASELINE), None)
    header = (
        f"{'policy':<28} {'alerts/1k/wk':>12} {'precision':>9} {'recall':>7} "
        f"{'delay d':>8} {'p90 d':>6} {'lead d':>7} {'earlier':>8}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for run in runs:
        s = run.score
        faster = None
        if base and base.score.median_delay and s.median_delay:
            faster = base.score.median_delay / s.median_delay
        print(
            f"{run.label:<28} {s.alerts_per_1000_week:>12.1f} {_fmt(s.precision):>9} "
            f"{_fmt(s.recall):>7} {_fmt(s.median_delay, 1):>8} {_fmt(s.p90_delay, 0):>6} "
            f"{_fmt(s.median_lead, 1):>7} {(_fmt(faster, 1) + '×') if faster else '—':>8}",
            file=out,
        )
    if runs:
        s = runs[0].score
        print(
            f"\n{s.members:,} members, {s.dropouts:,} dropouts scored; precision: share of "
            "at-risk alerts whose member did not come back; recall: dropouts alerted after "
            "their last visit and before cancelling; delay: days from the true last visit "
            "to the alert (median); lead: days from the alert to the cancellation; earlier: "
            f"the {BASELINE} rule's median delay over this one's.",
            file=out,
        )


# --- lapse calibrate -------------------------------------------------------------------------


def out_dir(text: str) -> str:
    """``calibrate --out``: a directory, or a path where one can be made, checked before the
    history is read (the outputs are written last, after minutes of replays)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: not a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: not writable")
    return text


def add_calibrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cal = sub.add_parser(
        "calibrate",
        help="fit and prove a monitoring rule on the club's own history; config and report",
        description="Method and figures: docs/calibration.md.",
    )
    cal.set_defaults(run=run_calibrate)
    cal.add_argument("--tenant", required=True)
    cal.add_argument(
        "--truth",
        type=truth_file,
        help="ground truth CSV (lapse simulate): scores held-out data",
    )
    cal.add_argument(
        "--out",
        type=out_dir,
        default=".",
        help="directory for detector.json and report.html (made if missing)",
    )
    cal.add_argument("--store", action="store_true", help="save the report (LAPSE_DATABASE_URL)")
    cal.add_argument("--quick", action="store_true", help="a small grid (demos and tests)")
    add_lateness(cal)
    cal.add_argument(
        "--precision",
        type=share,
        default=0.8,
        help="the club's objective: at least this share of alerts right (default 0.8)",
    )
    cal.add_argument(
        "--alerts-per-week",
        type=positive,
        help="the club's objective instead: at most this many alerts a week (the desk's time)",
    )
    cal.add_argument(
        "--workers",
        type=int,
        default=available_cpus(),
        help="replays run at once, in forked processes (default: the CPUs this process may "
        "use; 1: in this process); the same result with any number, each worker holding up "
        "to a copy of the history's events",
    )
    cal.add_argument("--quiet", action="store_true", help="no progress on stderr")
    cal.add_argument("--coverage-start", metavar="DATE", type=iso_time, help=COVERAGE_HELP)
    add_time_zone(cal)
    cal.add_argument("files", nargs="+", metavar="FILE")


async def run_calibrate(settings: Settings, args: argparse.Namespace) -> None:
    from lapse.progress import watch_reads
    from offline.calibrate import calibrate, store, write_outputs
    from offline.calibration.fitting import SMALL_GRID, Grid
    from offline.calibration.objective import Objective

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    # The bar follows the reading of the files; the fitting's stages are printed above it.
    with watch_reads("calibrate: reading", [] if args.quiet else args.files):
        result = await asyncio.to_thread(
            calibrate,
            args.files,
            args.tenant,
            truth_path=args.truth,
            grid=SMALL_GRID if args.quick else Grid(),
            lateness=args.lateness,
            progress=say,
            objective=Objective(args.precision, args.alerts_per_week),
            coverage_start=placed(args.coverage_start, args.zones),
            workers=max(1, args.workers),
            zones=args.zones,
        )
    out = Path(args.out)
    page = write_outputs(result, out)
    print_calibration(result, out)
    if args.store:
        row = await store(settings.database_url, result, page)
        print(f"stored as calibration report {row}", file=sys.stderr)


def print_calibration(c: Calibration, out: Path) -> None:
    """The chosen rule and its figures (stdout), what was done and written (stderr)."""
    from offline.calibration.report import summary

    print(summary(c))
    print(c.traits.verdict)
    print(
        f"chosen {c.chosen.label}; {c.fit.replays} replays in {c.fit.seconds:.0f} s, "
        f"{c.seconds:.0f} s in all; wrote {out / 'detector.json'}, {out / 'report.html'}",
        file=sys.stderr,
    )


# --- lapse sort ------------------------------------------------------------------------------


def add_sort(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    srt = sub.add_parser(
        "sort",
        help="write a history file's rows in time order (an export sorted by member or site)",
        description="Sorts by each row's instant (offsets read), oldest first; rows the reader "
        "rejects go last; the file is held in memory. docs/history-csv.md: Rows in time order.",
    )
    srt.set_defaults(run=run_sort)
    srt.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    srt.add_argument("--format", choices=["access", "membership", "jsonl"], help="skip detection")
    srt.add_argument("--output", "-o", required=True, help="the sorted file (not the input)")
    add_time_zone(srt)
    srt.add_argument("file", metavar="FILE")


async def run_sort(_settings: Settings, args: argparse.Namespace) -> None:
    await asyncio.to_thread(_sort, args)


def _sort(args: argparse.Namespace) -> None:
    from history.order import sort_history

    if Path(args.output).resolve() == Path(args.file).resolve():
        sys.exit("lapse sort: write the sorted rows to another file (-o), not over the input")
    done = sort_history(args.file, args.output, args.tenant, fmt=args.format, zones=args.zones)
    print(f"{args.output}: {done.rows:,} rows in time order ({done.moved:,} moved); "
          f"{done.untimed:,} rows the reader rejects at the end", file=sys.stderr)  # fmt: skip


# --- lapse import ----------------------------------------------------------------------------


def add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser(
        "import",
        help="load exported history (CSV or JSON Lines) into the events topic, resumably",
        description="Formats: docs/history-csv.md. The files are one run, their rows merged "
        "by time (a club's access and membership exports together; README: Onboarding a "
        "club). Re-running the same command resumes after the last line the broker "
        "acknowledged.",
    )
    imp.set_defaults(run=run_import)
    imp.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    imp.add_argument("--site", help="site_id for access rows without one")
    imp.add_argument("--format", choices=["access", "membership", "jsonl"], help="skip detection")
    imp.add_argument("--batch", type=int, default=5000, help="events per acknowledged batch")
    imp.add_argument("--rejects", metavar="FILE", help="append every rejected row to this CSV")
    imp.add_argument("--show-rejects", type=int, default=20, help="rejected rows to print")
    imp.add_argument("--restart", action="store_true", help="start over instead of resuming")
    imp.add_argument("--coverage-start", metavar="DATE", type=iso_time, help=COVERAGE_HELP)
    add_time_zone(imp)
    imp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    imp.add_argument("files", nargs="+", metavar="FILE")


async def run_import(settings: Settings, args: argparse.Namespace) -> None:
    """Exit status 0 when every row was accepted, 1 when some were rejected, 2 when the import
    stopped (re-running resumes)."""
    status = await _import(settings, args)
    if status:
        sys.exit(status)


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from ingest.importer import ImportFailed, import_history
    from lapse.progress import ImportProgress

    try:
        start = placed(args.coverage_start, args.zones)
        outcome = await import_history(
            settings,
            args.tenant,
            [Path(name) for name in args.files],
            default_site=args.site,
            fmt=args.format,
            batch_size=args.batch,
            keep_rejected=args.show_rejects,
            rejects_path=args.rejects,
            progress=None if args.quiet else ImportProgress(),
            coverage_start=start.timestamp() if start else None,
            restart=args.restart,
            zones=args.zones,
        )
    except (ImportFailed, KafkaError, OSError, ValueError) as exc:
        sys.stderr.write(f"lapse import: {exc}\n")
        return 2
    status = 0
    for summary in outcome.summaries:
        print_import_summary(summary, sys.stdout)
        if summary.rejected:
            status = 1
    if outcome.caught_up_to is not None:
        until = outcome.caught_up_to.isoformat()
        sys.stdout.write(
            f"caught up to {until}: the detectors raise what "
            f"`lapse replay --until {until}` raises for these files; only the episodes "
            "still open are sent (once, origin history)\n"
        )
    return status


def print_import_summary(s: ImportSummary, out: IO[str]) -> None:
    """One file's totals: accepted, rejected by reason, the first rejected rows."""
    if s.already_done:
        out.write(
            f"{s.path}: already imported ({s.accepted:,} accepted, {s.rejected:,} rejected); "
            "--restart imports it again\n"
        )
        return
    resumed = f" (resumed after line {s.resumed_after:,})" if s.resumed_after else ""
    out.write(f"{s.path} [{s.format}]{resumed}: {s.accepted:,} accepted, {s.rejected:,} rejected\n")
    for reason, count in sorted(s.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        out.write(f"  {reason}: {count:,}\n")
    for r in s.first_rejected:
        out.write(f"  line {r.line}: {r.reason}: {r.message}\n")
    shown = len(s.first_rejected)
    if s.rejected > shown:
        out.write(f"  ... and {s.rejected - shown:,} more (--rejects FILE lists them all)\n")
