"""The values several commands take, each checked while the command line is read, with a
message naming the option, not a traceback later: ``--time-zone [SITE=]ZONE`` (the zone a
history file's naive times are in), ISO 8601 times (``--coverage-start``, ``--until``,
``--start``, ``--as-of``: a naive one placed in the zone named, else UTC, never this
machine's zone, so a command gives the same answer wherever it runs), and numbers that
must be finite and within a range (a precision target, days, seconds)."""

from __future__ import annotations

import argparse
import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.history import Zones, local_time
from schemas.onboarding import HISTORY_LATENESS

TIME_ZONE_HELP = (
    "the IANA zone the files' times are in where a row's time has no UTC offset (an export "
    "of local times, e.g. Europe/Berlin); SITE=ZONE for one site's rows (repeat it for a "
    "chain across zones; the zone without a site serves the other sites and the membership "
    "rows). A time with an offset keeps it; a naive time with no zone named is refused"
)


def time_zone(text: str) -> tuple[str | None, ZoneInfo]:
    """One ``--time-zone``: ``ZONE`` or ``SITE=ZONE``, a zone of the tz database, refused at
    parse time otherwise. Not ``localtime`` (this machine's own zone: the guess the reader
    never makes), ``Factory`` (no place), nor the database's ``posix/`` and ``right/``
    copies (the latter count leap seconds, which no gate clock does)."""
    site, _, name = text.rpartition("=")
    if name in ("localtime", "Factory") or name.startswith(("right/", "posix/")):
        raise argparse.ArgumentTypeError(f"{name!r}: name the club's zone (like Europe/Berlin)")
    try:
        return site or None, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(
            f"unknown time zone {name!r} (an IANA name, like Europe/Berlin)"
        ) from exc


class _TimeZones(argparse.Action):
    """Each ``--time-zone`` added to the command's ``Zones`` (``args.zones``, None when none is
    given), built once while the command line is read; one zone per site at most, and one
    without a site."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        site, zone = values  # (``time_zone`` parsed it)
        known: Zones = getattr(namespace, self.dest) or Zones()
        if (site is None and known.default is not None) or site in known.sites:
            parser.error(
                f"--time-zone given twice {f'for site {site}' if site else 'without a site'}"
            )
        if site is None:
            setattr(namespace, self.dest, Zones(zone, known.sites))
        else:
            setattr(namespace, self.dest, Zones(known.default, {**known.sites, site: zone}))


def add_time_zone(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--time-zone",
        dest="zones",
        metavar="[SITE=]ZONE",
        type=time_zone,
        action=_TimeZones,
        help=TIME_ZONE_HELP,
    )


def add_lateness(parser: argparse.ArgumentParser) -> None:
    """``--lateness`` of the commands that replay history (replay, evaluate, calibrate): one
    default, the lateness the detectors catch an imported history up with, so each command
    gives what an import gives."""
    parser.add_argument(
        "--lateness",
        metavar="S",
        type=not_negative,
        default=HISTORY_LATENESS,
        help="seconds an event may come after a later one and still be applied in time "
        f"order (default {HISTORY_LATENESS:g}: a day, as an import is caught up)",
    )


def iso_time(text: str) -> datetime:
    """A time on the command line (``--coverage-start``, ``--until``): ISO 8601, a date or a
    time, refused at parse time otherwise; :func:`placed` gives a naive one its offset once
    the whole command line (its ``--time-zone``) is read."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or time (like 2025-03-01 or "
            "2025-03-01T06:00:00+01:00)"
        ) from exc


def placed(at: datetime | None, zones: Zones | None) -> datetime | None:
    """A command-line time with its offset: the one it names, else that of the
    ``--time-zone`` without a site (the zone the files' naive times and membership rows are
    read in: ``--coverage-start 2025-03-01`` beside ``--time-zone Europe/Berlin`` is the
    club's midnight), else UTC. Never this machine's zone: the same command gives the same
    answer wherever it runs."""
    if at is None or at.tzinfo is not None:
        return at
    zone = zones.default if zones is not None else None
    return local_time(at, zone) if zone is not None else at.replace(tzinfo=UTC)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a finite number")
    return value


def share(text: str) -> float:
    """A share in (0, 1]: a precision target of 80 % is 0.8 (80 would be met by nothing)."""
    value = _finite(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: a share between 0 and 1, like 0.8")
    return value


def positive(text: str) -> float:
    """A number above 0 (alerts a week, seconds a simulated day)."""
    value = _finite(text)
    if value <= 0.0:
        raise argparse.ArgumentTypeError(f"{text}: a number above 0")
    return value


def not_negative(text: str) -> float:
    """A number of 0 or more (seconds of lateness, days)."""
    value = _finite(text)
    if value < 0.0:
        raise argparse.ArgumentTypeError(f"{text}: a number of 0 or more")
    return value
