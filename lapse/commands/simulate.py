"""``lapse simulate``: a simulated club's history and ground truth written as the files a club
would export (docs/simulator.md), and the summary of what was written."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from lapse.commands.arguments import iso_time, placed, time_zone
from plumbing.settings import Settings
from schemas.history import Zones

if TYPE_CHECKING:
    from simulator import Summary


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulator import PROFILES  # the names only; cheap (no I/O, stdlib + schemas)

    sim = sub.add_parser(
        "simulate",
        help="write a simulated club's history (access, membership) and its ground truth",
        description="Assumptions and their sources: docs/simulator.md.",
    )
    sim.set_defaults(run=run_simulate)
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
    sim.add_argument(
        "--start",
        type=iso_time,
        default="2025-01-01T00:00:00+00:00",
        help="ISO 8601 start (without an offset: in --timezone, else UTC)",
    )
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


# The options of ``lapse simulate`` that set a ``SimParams`` field of the same name.
PARAM_OPTIONS = (
    "gap_mean_days",
    "early_hazard",
    "membership_years_before",
    "timezone",
    "contact_effect",
    "holdout",
    "contact_after_days",
)


def param_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The ``SimParams`` fields the options given replace in the profile's parameters."""
    return {k: getattr(args, k) for k in PARAM_OPTIONS if getattr(args, k) is not None}


def _zone(name: str) -> str:
    """The club's zone: checked as ``--time-zone`` is (``history.time_zone``): an IANA name,
    not this machine's ``localtime`` (the same arguments write the same bytes anywhere)."""
    site, zone = time_zone(name)
    if site is not None:
        raise argparse.ArgumentTypeError(f"{name!r}: one zone for the club, like Europe/Berlin")
    return zone.key


def _start(args: argparse.Namespace) -> datetime:
    """``--start`` with its offset: the one it names, else the club's zone's, else UTC."""
    zones = Zones(ZoneInfo(args.timezone)) if args.timezone else None
    start = placed(args.start, zones)
    assert start is not None  # (it has a default)
    return start


async def run_simulate(_settings: Settings, args: argparse.Namespace) -> None:
    from dataclasses import replace

    from lapse.progress import progress_bar
    from simulator import PROFILES, read_contacts, simulate_files

    profile = PROFILES[args.profile or "default"]
    params = replace(profile.params, **param_overrides(args))
    contacts = read_contacts(args.contacts) if args.contacts else None
    with progress_bar("simulate (members)", args.members) as update:
        summary = await asyncio.to_thread(
            simulate_files,
            args.out,
            members=args.members,
            days=args.days,
            seed=args.seed,
            start=_start(args),
            sites=args.sites if args.sites is not None else profile.sites,
            params=params,
            tenant_id=args.tenant,
            profile=args.profile,
            progress=update,
            contacts=contacts,
        )
    print_summary(summary, args.out)


def print_summary(summary: Summary, out_dir: str, out: IO[str] | None = None) -> None:
    """What was written: members, events, dropouts, late rows, the files."""
    out = out or sys.stdout
    gap = summary.mean_gap_days
    rate = summary.events / summary.seconds if summary.seconds else 0.0
    print(
        f"simulated {summary.members:,} members: {summary.events:,} events "
        f"({summary.access_rows:,} access, {summary.membership_rows:,} membership) "
        f"in {summary.seconds:.1f}s ({rate:,.0f} events/s)\n"
        f"dropouts {summary.dropouts:,}, cancellations {summary.cancellations:,}, "
        f"returned {summary.returned:,}; mean last visit to cancellation "
        + (f"{gap:.1f} days" if gap is not None else "n/a")
        + f"\nlate rows {summary.late_rows:,}, very late rows {summary.very_late_rows:,}\n"
        + (
            f"former members (joined and left before the gate log, membership rows only) "
            f"{summary.former:,}\n"
            if summary.former
            else ""
        )
        + f"wrote {out_dir}/access.csv, membership.csv, truth.csv, simulation.json",
        file=out,
    )
