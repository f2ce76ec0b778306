"""The ``lapse`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import signal
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from plumbing import logs
from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from records.api_keys import SCOPES, create_key, keys_of, revoke_key
from records.migrate import upgrade
from schemas.onboarding import HISTORY_LATENESS as DEFAULT_LATENESS

if TYPE_CHECKING:
    from records.sealing import Sealer

COVERAGE_HELP = (
    "ISO date from which the files' gate data is complete (default: the first access event "
    "in the files); no absence is counted before it"
)


async def _upgrade_and_reseal(settings: Settings, sealer: Sealer) -> int:
    """Migrate, then the data step: secrets stored in clear (or under an old key) sealed
    with the current key. How many secrets were sealed."""
    from records.sealing import reseal_all

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        return await reseal_all(session_factory(engine), sealer)
    finally:
        await engine.dispose()


async def _migrate(settings: Settings, _args: argparse.Namespace) -> None:
    from records.sealing import Sealer

    sealer = Sealer.from_settings(settings)  # a malformed key stops here, before any change
    sealed = await _upgrade_and_reseal(settings, sealer)
    print("database at the latest revision")
    if sealed:
        print(f"{sealed} stored secret(s) (webhooks, Kisi) encrypted with LAPSE_SECRET_KEY")


async def _secrets(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse secrets new-key|reseal`` (docs/webhooks.md: encryption at rest, rotation)."""
    from records.sealing import Sealer, new_key

    if args.action == "new-key":
        print(new_key())
        return
    sealer = Sealer.from_settings(settings)
    if not sealer.enabled:
        sys.exit("LAPSE_SECRET_KEY is not set: nothing to encrypt with")
    sealed = await _upgrade_and_reseal(settings, sealer)
    print(f"{sealed} stored secret(s) (webhooks, Kisi) re-encrypted with LAPSE_SECRET_KEY")


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if args.action == "create":
                scopes = tuple(args.scope or SCOPES)
                try:
                    plain, row = await create_key(
                        session, args.tenant, scopes=scopes, site_id=args.site, name=args.name
                    )
                except ValueError as exc:
                    sys.exit(str(exc))
                await session.commit()
                print(f"key id {row.id} for tenant {row.tenant_id}, scopes {' '.join(scopes)}")
                print(f"{plain}\n(shown once: store it now)")
            elif args.action == "list":
                for r in await keys_of(session, args.tenant):
                    state = "revoked" if r.revoked_at else "active"
                    print(f"{r.id}  {r.prefix}…  {state:8} {' '.join(r.scopes)}  {r.name}")
            else:
                found = await revoke_key(session, args.tenant, args.key_id, datetime.now(UTC))
                await session.commit()
                if not found:
                    sys.exit(f"no key {args.key_id} for tenant {args.tenant}")
                print(f"revoked {args.key_id}")
    finally:
        await engine.dispose()


def _read_password(from_stdin: bool) -> str:
    """The new password: the first line of stdin, or typed twice at a hidden prompt."""
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password (not shown): ")
    if getpass.getpass("Again: ") != first:
        sys.exit("the two passwords differ")
    return first


async def _staff(settings: Settings, args: argparse.Namespace) -> None:
    """Staff page accounts of a tenant; the password is never echoed, printed or logged."""
    from api.page import accounts
    from records.tables import StaffAccount

    password = _read_password(args.password_stdin) if args.action == "add" else ""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            now = datetime.now(UTC)
            if args.action == "add":
                try:
                    row = await accounts.add_account(
                        session,
                        args.tenant,
                        args.login,
                        password,
                        role=accounts.Role(args.role),
                        display_name=args.name,
                        now=now,
                    )
                except ValueError as exc:
                    sys.exit(str(exc))
                await session.commit()
                print(f"account {row.login} ({row.role}) for tenant {row.tenant_id}")
            elif args.action == "list":
                rows = await session.scalars(
                    select(StaffAccount)
                    .where(StaffAccount.tenant_id == args.tenant)
                    .order_by(StaffAccount.login)
                )
                for r in rows:
                    locked = r.locked_until is not None and r.locked_until > now
                    state = "disabled" if r.disabled else "locked" if locked else "active"
                    print(f"{r.login}  {r.role:10} {state:8} {r.display_name}")
            elif not await accounts.disable_account(session, args.tenant, args.login, now):
                sys.exit(f"no account {args.login} for tenant {args.tenant}")
            else:
                print(f"disabled {args.login} and ended its sessions")
    finally:
        await engine.dispose()


async def _broker(_settings: Settings, args: argparse.Namespace) -> None:
    """The embedded broker in the foreground, until SIGINT or SIGTERM (which stop it too)."""
    from plumbing.broker import LocalBroker

    stop = _until_signalled()
    with LocalBroker(args.port) as broker:
        print(
            f"local broker (memory only) on {broker.bootstrap}; Ctrl-C stops it\n"
            f"  export LAPSE_KAFKA_BOOTSTRAP={broker.bootstrap}",
            flush=True,
        )
        await stop.wait()


def _until_signalled() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so services stop cleanly and checkpoint."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _detector(settings: Settings, _args: argparse.Namespace) -> None:
    from detector.service import serve
    from plumbing.runtime import kafka_ready

    async with kafka_ready(settings) as ready:
        await serve(ready, _until_signalled())


async def _serve_app(settings: Settings, which: str) -> None:
    from plumbing.runtime import http_server, kafka_ready

    async with kafka_ready(settings) as ready:
        if which == "ingest":
            from ingest.app import create_app as ingest_app

            server = http_server(ingest_app(ready), ready.host, ready.ingest_port)
        else:
            from api.app import create_app as api_app

            server = http_server(api_app(ready), ready.host, ready.api_port)
        task = asyncio.create_task(server.serve())
        await _until_signalled().wait()
        server.should_exit = True
        await task


async def _ingest(settings: Settings, _args: argparse.Namespace) -> None:
    await _serve_app(settings, "ingest")


async def _api(settings: Settings, _args: argparse.Namespace) -> None:
    await _serve_app(settings, "api")


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    from lapse.demo import run_demo

    await run_demo(settings, days=args.days, day_seconds=args.day_seconds, linger=args.linger)


async def _import(settings: Settings, args: argparse.Namespace) -> None:
    from ingest.importer import run_import

    status = await run_import(settings, args)
    if status:
        sys.exit(status)


async def _mqtt_bridge(settings: Settings, _args: argparse.Namespace) -> None:
    from ingest.mqtt import run_bridge

    await run_bridge(settings, _until_signalled())


async def _replay(settings: Settings, args: argparse.Namespace) -> None:
    await asyncio.to_thread(_replay_files, settings, args)


def _replay_files(settings: Settings, args: argparse.Namespace) -> None:
    from detector.config import policies
    from detector.core.visits import VisitRules
    from offline.replay import ReplayReport, print_report, replay_files, write_alerts
    from plumbing.runtime import tune_gc

    update: dict[str, object] = {}
    if args.policy:
        update["policy"] = args.policy
    if args.config:
        update["detector_config"] = args.config
    settings = settings.model_copy(update=update)
    from lapse.progress import watch_reads

    report = ReplayReport()
    tune_gc()  # a long run that allocates per event, as the services
    alerts = replay_files(
        args.files,
        args.tenant,
        policies(settings),
        lateness=args.lateness,
        until=datetime.fromisoformat(args.until) if args.until else None,
        visits=VisitRules(window_seconds=settings.visit_window_seconds),
        report=report,
        coverage_start=_coverage_start(args.coverage_start),
    )
    with watch_reads("replay", args.files):
        if args.output:
            with open(args.output, "w") as out:
                write_alerts(alerts, out)
        else:
            write_alerts(alerts, sys.stdout)
    print_report(report)


def _coverage_start(text: str | None) -> datetime | None:
    """``--coverage-start``: an ISO 8601 date or time (UTC when it names no offset)."""
    if not text:
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


async def _kisi(settings: Settings, args: argparse.Namespace) -> None:
    from ingest.kisi import run_kisi_command

    try:
        require = None if args.require_mapping is None else args.require_mapping == "on"
        text = await run_kisi_command(
            settings, args.action, args.tenant, args.place or [], args.integration, require
        )
    except ValueError as exc:
        sys.exit(f"lapse kisi: {exc}")
    print(text)


def _zone(name: str) -> str:
    """An IANA zone name the simulator can use, refused at parse time otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"unknown time zone {name!r}") from e
    return name


async def _simulate(_settings: Settings, args: argparse.Namespace) -> None:
    from dataclasses import replace

    from lapse.progress import progress_bar
    from simulator import PROFILES, print_summary, read_contacts, simulate_files

    profile = PROFILES[args.profile or "default"]
    params = profile.params
    if args.gap_mean_days is not None:
        params = replace(params, gap_mean_days=args.gap_mean_days)
    if args.early_hazard is not None:
        params = replace(params, early_hazard=args.early_hazard)
    if args.membership_years_before is not None:
        params = replace(params, membership_years_before=args.membership_years_before)
    if args.timezone is not None:
        params = replace(params, timezone=args.timezone)
    if args.contact_effect is not None:
        params = replace(params, contact_effect=args.contact_effect)
    if args.holdout is not None:
        params = replace(params, holdout=args.holdout)
    if args.contact_after_days is not None:
        params = replace(params, contact_after_days=args.contact_after_days)
    contacts = read_contacts(args.contacts) if args.contacts else None
    with progress_bar("simulate (members)", args.members) as update:
        summary = await asyncio.to_thread(
            simulate_files,
            args.out,
            members=args.members,
            days=args.days,
            seed=args.seed,
            start=datetime.fromisoformat(args.start),
            sites=args.sites if args.sites is not None else profile.sites,
            params=params,
            tenant_id=args.tenant,
            profile=args.profile,
            progress=update,
            contacts=contacts,
        )
    print_summary(summary, args.out)


async def _uplift(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse uplift``: whether reaching out brings members back (docs/uplift.md)."""
    from api.uplift import read_uplift, text_report

    as_of = datetime.fromisoformat(args.as_of) if args.as_of else datetime.now(UTC)
    if as_of.tzinfo is None:
        sys.exit("--as-of needs a UTC offset, e.g. 2026-01-01T00:00:00+00:00")
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            read = await read_uplift(
                session, args.tenant, as_of=as_of, site_id=args.site, settle_days=args.settle_days
            )
    finally:
        await engine.dispose()
    print(text_report(read))


async def _evaluate(_settings: Settings, args: argparse.Namespace) -> None:
    from offline.evaluate import run_cli

    await asyncio.to_thread(
        run_cli,
        args.files,
        args.tenant,
        args.policy or ["risk", "cadence", "bgnbd"],
        truth_path=args.truth,
        json_path=args.json,
        lateness=args.lateness,
        horizon_days=args.horizon_days,
    )


async def _calibrate(settings: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path

    from lapse.progress import watch_reads
    from offline.calibrate import calibrate, print_summary, store, write_outputs
    from offline.calibration.fitting import SMALL_GRID, Grid, Objective

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
            coverage_start=_coverage_start(args.coverage_start),
        )
    out = Path(args.out)
    page = write_outputs(result, out)
    print_summary(result, out)
    if args.store:
        row = await store(settings.database_url, result, page)
        print(f"stored as calibration report {row}", file=sys.stderr)


async def _map_ids(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse members map-ids``: a CSV of (member_id, external_id) into the member directory
    (docs/integrations/kisi.md); the whole file or nothing."""
    from pathlib import Path

    from records.directory import MappingFileError, import_mappings, read_mappings

    try:
        rows = read_mappings(Path(args.file))
    except (MappingFileError, OSError, UnicodeDecodeError, csv.Error) as exc:
        sys.exit(f"lapse members map-ids: {exc}")
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            try:
                changed = await import_mappings(session, args.tenant, args.system, rows)
            except MappingFileError as exc:
                await session.rollback()
                sys.exit(f"lapse members map-ids: {exc}")
            await session.commit()
        print(
            f"{len(rows)} {args.system} id(s) of tenant {args.tenant} in the file, "
            f"{changed} new or changed; ingest applies them within 30 s"
        )
    finally:
        await engine.dispose()


async def _import_profiles(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse members import-profiles``: a CSV of member profiles (records/profiles.py); the
    whole file or nothing, errors by line and field, never a value (personal data)."""
    from pathlib import Path

    from records.profiles import ProfileFileError, import_profiles, read_profiles

    try:
        rows = read_profiles(Path(args.file))
    except (ProfileFileError, OSError, UnicodeDecodeError, csv.Error) as exc:
        sys.exit(f"lapse members import-profiles: {exc}")
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            count = await import_profiles(session, args.tenant, rows)
            await session.commit()
        print(f"{count} profile(s) of tenant {args.tenant} set")
    finally:
        await engine.dispose()


async def _members(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse members forget``: erase one member of one tenant (docs/after-they-leave.md)."""
    from records.erasure import erase

    if args.action == "map-ids":
        await _map_ids(settings, args)
        return
    if args.action == "import-profiles":
        await _import_profiles(settings, args)
        return
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            pepper = settings.forget_pepper.get_secret_value()
            counts = await erase(session, args.tenant, args.member, pepper)
            if counts is None:
                await session.rollback()
                sys.exit(f"no member {args.member} of tenant {args.tenant}: nothing erased")
            await session.commit()
        rows = ", ".join(f"{t} {n}" for t, n in counts.items() if n)
        print(f"erased member {args.member} of {args.tenant} ({rows}); tombstone kept")
    finally:
        await engine.dispose()


def _share(text: str) -> float:
    """A share as 0.1 or 10%: more than 0, at most 0.5 (schemas/holdout.py)."""
    from schemas.holdout import check_share

    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        return check_share(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _who(text: str) -> str:
    if not 0 < len(text) <= 36:
        raise argparse.ArgumentTypeError("1 to 36 characters")
    return text


async def _holdout(settings: Settings, args: argparse.Namespace) -> None:
    """``lapse holdout set|stop|show``: the tenant's control group (docs/webhooks.md)."""
    from records import holdout

    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            if args.action == "set":
                change = await holdout.set_share(
                    session, args.tenant, args.share, by=args.by, reason=args.reason
                )
            elif args.action == "stop":
                change = await holdout.stop(session, args.tenant, by=args.by, reason=args.reason)
            await session.commit()
            if args.action != "show" and not change.changed:
                print("unchanged: " + ("that share is in force" if args.action == "set" else "off"))
            rows = await holdout.period_rows(session, args.tenant)
        now = next((r for r in rows if r.end is None), None)
        print(
            f"holdout of {args.tenant}: "
            + (
                f"{now.share:.1%} of new episodes since {now.start:%Y-%m-%d %H:%M} UTC"
                if now
                else "off"
            )
        )
        for r in reversed(rows):
            end = f"{r.end:%Y-%m-%d %H:%M}" if r.end else "in force"
            print(
                f"  {r.start:%Y-%m-%d %H:%M} to {end:16}  {r.share:6.1%}  set by {r.set_by}"
                + (f"  ({r.reason})" if r.reason else "")
            )
    finally:
        await engine.dispose()


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lapse", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="bring the database to the latest schema").set_defaults(
        run=_migrate
    )
    keys = sub.add_parser("keys", help="API keys of a tenant")
    keys.set_defaults(run=_keys)
    kact = keys.add_subparsers(dest="action", required=True)
    kc = kact.add_parser("create")
    kc.add_argument("--tenant", required=True)
    kc.add_argument("--site")
    kc.add_argument("--name", default="")
    kc.add_argument("--scope", action="append", choices=SCOPES)
    kl = kact.add_parser("list")
    kl.add_argument("--tenant", required=True)
    kr = kact.add_parser("revoke")
    kr.add_argument("--tenant", required=True)
    kr.add_argument("key_id")
    staff = sub.add_parser("staff", help="staff page accounts of a tenant (people, roles)")
    staff.set_defaults(run=_staff)
    sact = staff.add_subparsers(dest="action", required=True)
    sa = sact.add_parser("add", help="add an account; the password is prompted for")
    sa.add_argument("--tenant", required=True)
    sa.add_argument("--login", required=True, help="an email or a user name")
    sa.add_argument("--name", default="", help="the name shown on the page")
    sa.add_argument("--role", choices=["front_desk", "manager", "admin"], default="front_desk")
    sa.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    sl = sact.add_parser("list")
    sl.add_argument("--tenant", required=True)
    sd = sact.add_parser("disable", help="disable an account and end its sessions")
    sd.add_argument("--tenant", required=True)
    sd.add_argument("login")
    brk = sub.add_parser("broker", help="run the embedded local broker (memory only)")
    brk.set_defaults(run=_broker)
    brk.add_argument("--port", type=int, help="loopback port (default: a free one)")
    sec = sub.add_parser("secrets", help="the key webhook and Kisi secrets are encrypted with")
    sec.set_defaults(run=_secrets)
    sec.add_argument(
        "action",
        choices=["new-key", "reseal"],
        help="new-key: print a fresh LAPSE_SECRET_KEY; reseal: re-encrypt every stored "
        "secret with LAPSE_SECRET_KEY (after a rotation, or once a key is set)",
    )
    sub.add_parser("detector", help="run a detector instance").set_defaults(run=_detector)
    sub.add_parser("ingest", help="run the ingest HTTP service").set_defaults(run=_ingest)
    sub.add_parser("api", help="run the api (alerts, webhooks, delivery)").set_defaults(run=_api)
    demo = sub.add_parser("demo", help="everything in one process on a simulated club")
    demo.set_defaults(run=_demo)
    demo.add_argument("--days", type=int, default=120, help="simulated days to stream")
    demo.add_argument("--day-seconds", type=float, default=0.35, help="real seconds per day")
    demo.add_argument(
        "--linger",
        type=float,
        default=None,
        help="seconds to keep serving after the stream (default: until Ctrl-C)",
    )
    rep = sub.add_parser(
        "replay",
        help="run the detector over history files; alerts out as JSON Lines",
        description="Formats: docs/history-csv.md (access CSV, membership CSV, JSON Lines).",
    )
    rep.set_defaults(run=_replay)
    rep.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    rep.add_argument(
        "--policy", choices=["fixed", "cadence", "bgnbd", "risk", "hybrid"], help="default policy"
    )
    rep.add_argument("--config", help="detector configuration file (per-tenant policies)")
    rep.add_argument(
        "--lateness", type=float, default=DEFAULT_LATENESS, help="seconds of disorder tolerated"
    )
    rep.add_argument("--until", help="ISO 8601 time to run the clock to after the last event")
    rep.add_argument("--output", "-o", help="alerts file (default: standard output)")
    rep.add_argument("--coverage-start", metavar="DATE", help=COVERAGE_HELP)
    rep.add_argument("files", nargs="+", metavar="FILE")
    ev = sub.add_parser(
        "evaluate",
        help="replay history per policy and score the alerts (precision, recall, delay, lead)",
    )
    ev.set_defaults(run=_evaluate)
    ev.add_argument("--tenant", required=True)
    ev.add_argument(
        "--policy",
        action="append",
        help="policy to score (repeatable): fixed:60, cadence, bgnbd, cadence:z=2,floor_days=7;"
        " the fixed 60-day rule always runs as the baseline",
    )
    ev.add_argument("--truth", help="ground truth CSV (lapse simulate writes truth.csv)")
    ev.add_argument("--json", help="write the scores here as JSON")
    ev.add_argument("--lateness", type=float, default=DEFAULT_LATENESS)
    ev.add_argument(
        "--horizon-days",
        type=float,
        default=30.0,
        help="alerts and dropouts this close to the end are not scored",
    )
    ev.add_argument("files", nargs="+", metavar="FILE")
    cal = sub.add_parser(
        "calibrate",
        help="fit and prove a monitoring rule on the club's own history; config and report",
        description="Method and figures: docs/calibration.md.",
    )
    cal.set_defaults(run=_calibrate)
    cal.add_argument("--tenant", required=True)
    cal.add_argument("--truth", help="ground truth CSV (lapse simulate): scores held-out data")
    cal.add_argument("--out", default=".", help="directory for detector.json and report.html")
    cal.add_argument("--store", action="store_true", help="save the report (LAPSE_DATABASE_URL)")
    cal.add_argument("--quick", action="store_true", help="a small grid (demos and tests)")
    cal.add_argument("--lateness", type=float, default=DEFAULT_LATENESS)
    cal.add_argument(
        "--precision",
        type=float,
        default=0.8,
        help="the club's objective: at least this share of alerts right (default 0.8)",
    )
    cal.add_argument(
        "--alerts-per-week",
        type=float,
        help="the club's objective instead: at most this many alerts a week (the desk's time)",
    )
    cal.add_argument("--quiet", action="store_true", help="no progress on stderr")
    cal.add_argument("--coverage-start", metavar="DATE", help=COVERAGE_HELP)
    cal.add_argument("files", nargs="+", metavar="FILE")
    imp = sub.add_parser(
        "import",
        help="load exported history (CSV or JSON Lines) into the events topic, resumably",
        description="Formats: docs/history-csv.md. The files are one run, their rows merged "
        "by time (a club's access and membership exports together; README: Onboarding a "
        "club). Re-running the same command resumes after the last line the broker "
        "acknowledged.",
    )
    imp.set_defaults(run=_import)
    imp.add_argument("--tenant", required=True, help="the tenant the rows belong to")
    imp.add_argument("--site", help="site_id for access rows without one")
    imp.add_argument("--format", choices=["access", "membership", "jsonl"], help="skip detection")
    imp.add_argument("--batch", type=int, default=5000, help="events per acknowledged batch")
    imp.add_argument("--rejects", metavar="FILE", help="append every rejected row to this CSV")
    imp.add_argument("--show-rejects", type=int, default=20, help="rejected rows to print")
    imp.add_argument("--restart", action="store_true", help="start over instead of resuming")
    imp.add_argument("--coverage-start", metavar="DATE", help=COVERAGE_HELP)
    imp.add_argument("--quiet", action="store_true", help="no progress on stderr")
    imp.add_argument("files", nargs="+", metavar="FILE")
    mem = sub.add_parser(
        "members",
        help="members of a tenant: the directory (ids, profiles) and the right to be forgotten",
    )
    mem.set_defaults(run=_members)
    mact = mem.add_subparsers(dest="action", required=True)
    forget = mact.add_parser("forget", help="erase one member everywhere Lapse can (a tombstone)")
    forget.add_argument("--tenant", required=True)
    forget.add_argument("--member", required=True)
    mapids = mact.add_parser(
        "map-ids",
        help="map members to their ids in another system (Kisi) from a CSV with the columns "
        "member_id,external_id; the whole file or nothing",
    )
    mapids.add_argument("--tenant", required=True)
    mapids.add_argument("--system", default="kisi", help="default: kisi")
    mapids.add_argument("file", metavar="FILE")
    profiles = mact.add_parser(
        "import-profiles",
        help="set member profiles from a CSV with the column member_id and any of "
        "display_name,phone,email,plan,photo_url,crm_id; each row replaces the member's "
        "profile; the whole file or nothing",
    )
    profiles.add_argument("--tenant", required=True)
    profiles.add_argument("file", metavar="FILE")
    kisi = sub.add_parser("kisi", help="Kisi webhook integrations of a tenant")
    kisi.set_defaults(run=_kisi)
    kisi.add_argument("action", choices=["add", "map", "list"])
    kisi.add_argument("--tenant", required=True)
    kisi.add_argument(
        "--place", action="append", metavar="PLACE_ID=SITE_ID", help="for add and map"
    )
    kisi.add_argument("--integration", metavar="ID", help="for map: the integration to change")
    kisi.add_argument(
        "--require-mapping",
        choices=["on", "off"],
        help="for add and map: on, a Kisi user the member directory does not map to a member "
        "is acknowledged and counted (unmapped_user), not taken as a member id (default off)",
    )
    from simulator import PROFILES  # the names only; cheap (no I/O, stdlib + schemas)

    sim = sub.add_parser(
        "simulate",
        help="write a simulated club's history (access, membership) and its ground truth",
        description="Assumptions and their sources: docs/simulator.md.",
    )
    sim.set_defaults(run=_simulate)
    sim.add_argument("--members", type=int, required=True, help="members in the files")
    sim.add_argument("--days", type=int, required=True, help="days of history")
    sim.add_argument("--seed", type=int, default=1, help="same seed, same files")
    sim.add_argument("--tenant", required=True, help="recorded in simulation.json")
    sim.add_argument("--out", required=True, help="directory for the files")
    sim.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="a club shape (docs/simulator.md); default: the reference club",
    )
    sim.add_argument(
        "--sites", type=int, help="clubs (sites) of the chain (default: 1 or the profile's)"
    )
    sim.add_argument("--start", default="2025-01-01T00:00:00+00:00", help="ISO 8601 start")
    sim.add_argument("--gap-mean-days", type=float, help="mean last visit to cancellation")
    sim.add_argument("--early-hazard", type=float, help="hazard multiplier, first 6 months")
    sim.add_argument(
        "--membership-years-before",
        type=float,
        help="membership records (joined rows) going back this many years before the gate log",
    )
    sim.add_argument(
        "--timezone",
        type=_zone,
        help="the club's IANA time zone, e.g. Europe/Berlin (times written with offsets)",
    )
    sim.add_argument(
        "--contact-effect",
        type=float,
        help="chance that a call or message brings back a member who stopped coming "
        "(times the reason's and severity's factors; default 0: no effect)",
    )
    sim.add_argument(
        "--holdout",
        type=float,
        help="share of stopped members the stand-in staff never contact (the control group, "
        "drawn as schemas/holdout.py draws episodes; default 0)",
    )
    sim.add_argument(
        "--contact-after-days",
        type=float,
        help="stand-in staff reach a member this many days after their last visit (21)",
    )
    sim.add_argument(
        "--contacts",
        metavar="CSV",
        help="member_id,contacted_at[,severity]: whom staff reached and when (e.g. the "
        "contact-arm episodes of a replay), instead of the stand-in",
    )
    up = sub.add_parser(
        "uplift",
        help="whether reaching out brings members back: contacted against the control group",
        description="The report of /v1/uplift in plain words and a table (docs/uplift.md).",
    )
    up.set_defaults(run=_uplift)
    up.add_argument("--tenant", required=True)
    up.add_argument("--site", help="one site only")
    up.add_argument("--as-of", help="ISO 8601 moment of the report (default: now)")
    up.add_argument(
        "--settle-days",
        type=float,
        default=60.0,
        help="an episode is settled this many days after it opened (default 60)",
    )
    sub.add_parser(
        "mqtt-bridge", help="bridge MQTT (LAPSE_MQTT_*) to the events topic"
    ).set_defaults(run=_mqtt_bridge)
    hold = sub.add_parser(
        "holdout",
        help="the tenant's control group: a share of new episodes held back from contact",
    )
    hold.set_defaults(run=_holdout)
    hact = hold.add_subparsers(dest="action", required=True)
    hs = hact.add_parser("set", help="hold back a share of the episodes opened from now on")
    hs.add_argument("--share", required=True, type=_share, help="0.1 or 10%%; at most 0.5")
    hst = hact.add_parser("stop", help="contact every episode opened from now on")
    hsh = hact.add_parser("show", help="the share in force and every period")
    for h in (hs, hst, hsh):
        h.add_argument("--tenant", required=True)
    for h in (hs, hst):
        h.add_argument("--reason", help="why, kept with the period")
        h.add_argument(
            "--by", default="cli", type=_who, help="who (kept with the period; default cli)"
        )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format == "json")
    run: Command = args.run
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings, args))


if __name__ == "__main__":
    main()
