"""History files: the public contract read by `lapse replay`, `import`, `calibrate`, `evaluate`.

The names, values and ids of ``docs/history-csv.md`` as data, so that the reader (the
``history`` package), the simulator that writes such files and the tests all hold one copy:

- access CSV: ``member_id,site_id,occurred_at,kind`` (+ optional ``device_id``);
- membership CSV: ``member_id,occurred_at,event[,reason]`` (+ optional ``note``);
- JSON Lines (``.jsonl``/``.ndjson``): one ``AccessEvent`` or ``MembershipEvent`` per line.

Strict where a silent guess would change the meaning of the data: every row names its kind,
and ``occurred_at`` carries a UTC offset, because a naive time read in the wrong zone shifts
every visit by hours; a CSV of naive local times is read only in a zone the caller names
(``--time-zone``), never one guessed (:func:`local_time`). A refused row is a
:class:`RowError` with a reason from a bounded vocabulary, never an exception; only a file
that cannot be read at all is a :class:`HistoryFormatError`. CSV rows get a deterministic
``event_id`` (:func:`csv_event_id`), so importing the same export twice yields the same ids
and deduplication absorbs the repeat.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone, tzinfo
from typing import Literal, get_args

from schemas.events import CancelReason, Event
from schemas.ids import uuid5

Format = Literal["access", "membership", "jsonl"]
FORMATS: tuple[str, ...] = get_args(Format)
CANCEL_REASONS: tuple[str, ...] = get_args(CancelReason)

ACCESS_COLUMNS = ("member_id", "site_id", "occurred_at", "kind")
MEMBERSHIP_COLUMNS = ("member_id", "occurred_at", "event")
JSONL_SUFFIXES = (".jsonl", ".ndjson")

# Namespace of the UUIDv5 ids given to CSV rows. Part of the public contract: changing it
# would give every re-imported row a new id, and dedup would no longer absorb re-imports.
HISTORY_NAMESPACE = uuid.UUID("6f1c2b9e-4d0a-5e8f-9a57-3c1d2e0b7a64")
NAMESPACE_BYTES = HISTORY_NAMESPACE.bytes

# The reasons a row is refused: a short, bounded vocabulary (summaries group by it).
ROW_ERROR_REASONS = (
    "malformed_csv",  # the CSV reader could not split the record
    "missing_value",  # a required column is absent from the row or empty
    "bad_timestamp",  # occurred_at is not ISO 8601
    "naive_timestamp",  # occurred_at has no UTC offset
    "unknown_kind",  # kind (access) or event (membership) is not one of the known ones
    "unknown_reason",  # reason is not one of the cancel reasons
    "invalid_value",  # a value breaks the event schema (id too long, whitespace, ...)
    "bad_json",  # a JSON Lines line is not a JSON object
    "tenant_mismatch",  # a JSON Lines event names another tenant than the caller's
)


class HistoryFormatError(ValueError):
    """The file as a whole cannot be read (no header, required columns missing, ...)."""


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was refused: ``reason`` is one of :data:`ROW_ERROR_REASONS`."""

    reason: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


# A row as read: its line number (the header is line 1 of a CSV) and its event or error.
Row = tuple[int, Event | RowError]


def csv_event_id(tenant_id: str, fmt: Format, *parts: str) -> str:
    """UUIDv5 of the tenant, the file kind and the row's identifying content.

    Access rows: ``member_id, site_id, occurred_at (UTC, ISO 8601), kind``; membership rows:
    ``member_id, occurred_at (UTC), event``. Times are normalised to UTC first
    (:func:`utc_iso`), so the same instant written with another offset is the same event.
    ``device_id``, ``reason`` and ``note`` are not part of the id: a corrected reason
    re-imported is the same cancellation.
    """
    return uuid5(NAMESPACE_BYTES, "\x1f".join((tenant_id, fmt, *parts)).encode())


def utc_iso(at: datetime) -> str:
    """The form of ``occurred_at`` that enters an event id: UTC, Python's ISO form."""
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Zones:
    """The zones a CSV's naive times are read in (``--time-zone``): an access row's in its
    site's zone when one is named for it, else (and a membership row, which names no site)
    in the default; None where neither is named (such a row stays a ``naive_timestamp``
    error). A chain whose sites lie in several zones names each: read in one zone, the
    others' visits would shift by hours without a word."""

    default: tzinfo | None = None
    sites: Mapping[str, tzinfo] = field(default_factory=dict)

    def of(self, site: str | None) -> tzinfo | None:
        if site is not None and (zone := self.sites.get(site)) is not None:
            return zone
        return self.default


def local_time(at: datetime, zone: tzinfo) -> datetime:
    """A naive wall-clock time read in ``zone``, with the fixed offset the zone had then: the
    same datetime as the row written with that offset, so the same event id.

    Around a daylight-saving change a wall time can be ambiguous or missing. An hour that
    happens twice (clocks go back) is read as its first occurrence; a time in the hour that
    never happens (clocks go forward) keeps the offset before the change (02:30 on the
    morning Berlin goes to summer time is read as 02:30+01:00, i.e. 03:30+02:00: a device
    that had not switched yet). Python's rule for ``fold=0``; pinned by
    ``tests/history/test_reader.py``.
    """
    offset = at.replace(tzinfo=zone).utcoffset()
    if offset is None:  # (a tzinfo that gives no offset: nothing to read the time in)
        return at
    return at.replace(tzinfo=timezone(offset))


def parse_occurred_at(text: str, zone: tzinfo | None = None) -> datetime | RowError:
    """ISO 8601 with an offset (``Z`` or ``±hh:mm``). A naive time is refused unless the
    caller names the zone the export was written in (``zone``: :func:`local_time`); a time
    with an offset keeps it, zone or not."""
    value = text.strip()
    if not value:
        return RowError("missing_value", "occurred_at is empty")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return RowError(
            "bad_timestamp",
            f"occurred_at {value[:64]!r} is not ISO 8601 (e.g. 2024-03-01T18:30:00+01:00)",
        )
    if at.tzinfo is None and zone is not None:
        at = local_time(at, zone)
    if at.tzinfo is None or at.utcoffset() is None:
        return RowError(
            "naive_timestamp",
            f"occurred_at {value[:64]!r} has no UTC offset; write it with one "
            "(e.g. 2024-03-01T18:30:00+01:00 or ...Z), or name the zone the export's times "
            "are in (--time-zone Europe/Berlin): the reader never guesses a time zone",
        )
    try:
        at.astimezone(UTC)
    except OverflowError:
        return RowError(
            "bad_timestamp", f"occurred_at {value[:64]!r} is out of range once converted to UTC"
        )
    return at


def header_format(columns: list[str], default_site: str | None) -> Format:
    """The CSV format a header (lower-cased names) declares, or why it declares none.

    ``kind`` without ``event`` is an access export, ``event`` without ``kind`` a membership
    export; either must hold its required columns (``site_id`` may be absent when the caller
    gives ``default_site``). Raises :class:`HistoryFormatError` otherwise.
    """
    names = set(columns)
    if "event" in names and "kind" not in names:
        missing = [c for c in MEMBERSHIP_COLUMNS if c not in names]
        fmt: Format = "membership"
    elif "kind" in names and "event" not in names:
        required = [c for c in ACCESS_COLUMNS if not (c == "site_id" and default_site)]
        missing = [c for c in required if c not in names]
        fmt = "access"
    else:
        raise HistoryFormatError(
            "the header must name either `kind` (access export: "
            f"{','.join(ACCESS_COLUMNS)}) or `event` (membership export: "
            f"{','.join(MEMBERSHIP_COLUMNS)}[,reason]); got {','.join(columns)[:200]!r}"
        )
    if missing:
        raise HistoryFormatError(f"the {fmt} header lacks column(s) {', '.join(missing)}")
    return fmt
