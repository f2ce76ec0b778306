"""History files: the public contract read by `lapse replay`, `import`, `calibrate`, `evaluate`.

Clubs export what their systems hold, so the reader is lenient where it costs nothing (a
byte-order mark, CRLF, quoted fields, blank lines, extra columns, column order, header case)
and strict where a silent guess would change the meaning of the data: every row must name its
kind, and ``occurred_at`` must carry a UTC offset, because a naive time read in the wrong
zone shifts every visit by hours (and twice a year by a DST hour). Anything wrong with a row
is a :class:`RowError` with the row's line number, never an exception: one bad line in a
ten-million-line export must not stop the other 9,999,999. Only a file that cannot be read
at all (no header, unknown columns, not UTF-8) raises :class:`HistoryFormatError`.

Three formats, detected from the extension and the header (``docs/history-csv.md``):

- access CSV: ``member_id,site_id,occurred_at,kind`` (+ optional ``device_id``);
- membership CSV: ``member_id,occurred_at,event[,reason]`` (+ optional ``note``);
- JSON Lines (``.jsonl``/``.ndjson``): one ``AccessEvent`` or ``MembershipEvent`` per line.

The tenant comes from the caller, never from the file. CSV rows get a deterministic
``event_id`` (:func:`csv_event_id`), so importing the same export twice yields the same ids
and the downstream deduplication by ``event_id`` makes the second import harmless.

Reading streams: one line at a time, constant memory whatever the file size.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from schemas.events import (
    ACCESS_KINDS,
    MEMBERSHIP_KINDS,
    AccessEvent,
    CancelReason,
    MemberEvent,
    MembershipEvent,
)

Event = AccessEvent | MembershipEvent
Format = Literal["access", "membership", "jsonl"]
FORMATS: tuple[str, ...] = get_args(Format)
CANCEL_REASONS: tuple[str, ...] = get_args(CancelReason)

_event: TypeAdapter[Event] = TypeAdapter(MemberEvent)

ACCESS_COLUMNS = ("member_id", "site_id", "occurred_at", "kind")
MEMBERSHIP_COLUMNS = ("member_id", "occurred_at", "event")
JSONL_SUFFIXES = (".jsonl", ".ndjson")

# Namespace of the UUIDv5 ids given to CSV rows. Part of the public contract: changing it
# would give every re-imported row a new id, and dedup would no longer absorb re-imports.
HISTORY_NAMESPACE = uuid.UUID("6f1c2b9e-4d0a-5e8f-9a57-3c1d2e0b7a64")
_NAMESPACE_BYTES = HISTORY_NAMESPACE.bytes

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


Row = tuple[int, Event | RowError]


# --- event ids -------------------------------------------------------------------------------


def csv_event_id(tenant_id: str, fmt: Format, *parts: str) -> str:
    """UUIDv5 of the tenant, the file kind and the row's identifying content.

    Access rows: ``member_id, site_id, occurred_at (UTC, ISO 8601), kind``; membership rows:
    ``member_id, occurred_at (UTC), event``. Times are normalised to UTC first, so the same
    instant written with another offset is the same event. ``device_id``, ``reason`` and
    ``note`` are not part of the id: a corrected reason re-imported is the same cancellation.
    """
    name = "\x1f".join((tenant_id, fmt, *parts)).encode()
    # uuid.uuid5 computed inline (RFC 4122 §4.3): the same value, a third of the time.
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _utc_iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# --- values ----------------------------------------------------------------------------------


def parse_occurred_at(text: str) -> datetime | RowError:
    """ISO 8601 with an offset (``Z`` or ``±hh:mm``); a naive time is refused, not guessed."""
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
    if at.tzinfo is None or at.utcoffset() is None:
        return RowError(
            "naive_timestamp",
            f"occurred_at {value[:64]!r} has no UTC offset; write it with one "
            "(e.g. 2024-03-01T18:30:00+01:00 or ...Z): the reader never guesses a time zone",
        )
    return at


def _schema_error(exc: ValidationError) -> RowError:
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in ACCESS_KINDS + MEMBERSHIP_KINDS)
        parts.append(f"{loc or 'event'}: {err['msg']}")
    return RowError("invalid_value", "; ".join(parts)[:500])


# --- CSV -------------------------------------------------------------------------------------


def _header_format(columns: list[str], default_site: str | None) -> Format:
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


class _Lines:
    """Physical lines with their count, fed to the csv reader (which may take several)."""

    def __init__(self, text: Iterable[str]) -> None:
        self._it = iter(text)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.count += 1
        return line


def _value(row: list[str], index: dict[str, int], column: str) -> str:
    i = index.get(column)
    return row[i].strip() if i is not None and i < len(row) else ""


def _access_row(
    row: list[str], index: dict[str, int], tenant_id: str, source: str, default_site: str | None
) -> Event | RowError:
    member = _value(row, index, "member_id")
    site = _value(row, index, "site_id") or (default_site or "")
    kind = _value(row, index, "kind")
    for column, value in (("member_id", member), ("site_id", site), ("kind", kind)):
        if not value:
            return RowError("missing_value", f"{column} is empty or missing")
    if kind not in ACCESS_KINDS:
        return RowError(
            "unknown_kind", f"kind {kind[:64]!r} is not one of {', '.join(ACCESS_KINDS)}"
        )
    at = parse_occurred_at(_value(row, index, "occurred_at"))
    if isinstance(at, RowError):
        return at
    device = _value(row, index, "device_id") or None
    try:
        return AccessEvent(
            event_id=csv_event_id(tenant_id, "access", member, site, _utc_iso(at), kind),
            tenant_id=tenant_id,
            member_id=member,
            site_id=site,
            kind=kind,
            occurred_at=at,
            device_id=device,
            source=source,
        )
    except ValidationError as exc:
        return _schema_error(exc)


def _membership_row(row: list[str], index: dict[str, int], tenant_id: str) -> Event | RowError:
    member = _value(row, index, "member_id")
    kind = _value(row, index, "event")
    for column, value in (("member_id", member), ("event", kind)):
        if not value:
            return RowError("missing_value", f"{column} is empty or missing")
    if kind not in MEMBERSHIP_KINDS:
        return RowError(
            "unknown_kind", f"event {kind[:64]!r} is not one of {', '.join(MEMBERSHIP_KINDS)}"
        )
    at = parse_occurred_at(_value(row, index, "occurred_at"))
    if isinstance(at, RowError):
        return at
    reason: str | None = _value(row, index, "reason") or None
    if kind != "cancelled":
        reason = None  # only a cancellation has a reason; a stray one is not an error
    elif reason is not None and reason not in CANCEL_REASONS:
        return RowError(
            "unknown_reason", f"reason {reason[:64]!r} is not one of {', '.join(CANCEL_REASONS)}"
        )
    note = _value(row, index, "note") or None
    try:
        return MembershipEvent(
            event_id=csv_event_id(tenant_id, "membership", member, _utc_iso(at), kind),
            tenant_id=tenant_id,
            member_id=member,
            kind=kind,
            occurred_at=at,
            reason=reason,
            note=note,
        )
    except ValidationError as exc:
        return _schema_error(exc)


def _read_csv(
    text: Iterable[str],
    tenant_id: str,
    source: str,
    default_site: str | None,
    expect: Format | None,
) -> tuple[Format, Iterator[Row]]:
    lines = _Lines(text)
    reader = csv.reader(lines, strict=False)
    header: list[str] | None = None
    for raw in reader:
        if any(cell.strip() for cell in raw):
            header = [cell.strip().lower() for cell in raw]
            break
    if header is None:
        raise HistoryFormatError("the file is empty: a CSV export needs a header line")
    fmt = _header_format(header, default_site)
    if expect is not None and fmt != expect:
        raise HistoryFormatError(f"expected a {expect} export, the header says {fmt}")
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)

    def rows() -> Iterator[Row]:
        while True:
            start = lines.count + 1
            try:
                raw = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, RowError("malformed_csv", str(exc))
                continue
            if not any(cell.strip() for cell in raw):
                continue  # blank line
            if fmt == "access":
                result = _access_row(raw, index, tenant_id, source, default_site)
            else:
                result = _membership_row(raw, index, tenant_id)
            if isinstance(result, RowError) and lines.count > start:
                result = RowError(
                    result.reason,
                    f"{result.message} (the record spans lines {start}-{lines.count}: "
                    "an unbalanced quote?)",
                )
            yield start, result

    return fmt, rows()


# --- JSON Lines ------------------------------------------------------------------------------


def _jsonl_row(line: str, tenant_id: str, source: str) -> Event | RowError:
    try:
        raw: Any = json.loads(line)
    except ValueError as exc:
        return RowError("bad_json", f"not JSON: {exc}")
    if not isinstance(raw, dict):
        return RowError("bad_json", "each line must be one JSON object (an event)")
    raw.setdefault("tenant_id", tenant_id)
    if raw["tenant_id"] != tenant_id:
        return RowError(
            "tenant_mismatch",
            f"tenant_id {str(raw['tenant_id'])[:64]!r} is not the tenant given ({tenant_id})",
        )
    if raw.get("kind") in ACCESS_KINDS and raw.get("source") is None:
        raw["source"] = source
    try:
        return _event.validate_python(raw)
    except ValidationError as exc:
        return _schema_error(exc)


def _read_jsonl(text: Iterable[str], tenant_id: str, source: str) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if line.strip():
            yield number, _jsonl_row(line, tenant_id, source)


# --- entry points ----------------------------------------------------------------------------


class HistoryReader:
    """An open history file: its detected ``format`` and its rows, read once, streaming.

    ``source`` may be a path or an open file (binary or text). Binary input is decoded as
    UTF-8 with an optional byte-order mark; a file that is not UTF-8 raises
    :class:`HistoryFormatError` where the bad bytes are met. ``fmt`` forces the format; by
    default ``.jsonl``/``.ndjson`` (or a first line starting with ``{``) is JSON Lines and a
    CSV is told apart by its header. ``default_site`` fills an access row's empty or absent
    ``site_id`` (single-club exports often have none).
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes] | IO[str],
        tenant_id: str,
        *,
        origin: str = "import",
        fmt: Format | None = None,
        default_site: str | None = None,
    ) -> None:
        self._owned: IO[Any] | None = None
        if isinstance(source, (str, os.PathLike)):
            name = os.fspath(source)
            self._owned = open(name, "rb")  # noqa: SIM115  # closed by close()/__exit__
            stream: IO[Any] = self._owned
        else:
            name = str(getattr(source, "name", ""))
            stream = source
        text = _text(stream)
        first = _peek_first_line(text)
        lines = _chain(first, text)
        if fmt is None and (
            name.lower().endswith(JSONL_SUFFIXES)
            or (first is not None and first.lstrip().startswith("{"))
        ):
            fmt = "jsonl"
        self.rows: Iterator[Row]
        if fmt == "jsonl":
            self.format: Format = "jsonl"
            self.rows = _read_jsonl(lines, tenant_id, origin)
        else:
            self.format, self.rows = _read_csv(lines, tenant_id, origin, default_site, fmt)

    def __iter__(self) -> Iterator[Row]:
        return self.rows

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_history(
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    tenant_id: str,
    *,
    origin: str = "import",
    fmt: Format | None = None,
    default_site: str | None = None,
) -> Iterator[Row]:
    """Yield ``(line_number, event)`` or ``(line_number, RowError)`` for each non-blank row.

    Line numbers count physical lines from 1 (the header is line 1 of a CSV); a quoted field
    spanning lines is reported at the line where its record starts. ``origin`` becomes the
    access events' ``source``. See :class:`HistoryReader` for the other arguments.
    """
    with HistoryReader(
        source, tenant_id, origin=origin, fmt=fmt, default_site=default_site
    ) as reader:
        yield from reader


class _Utf8Lines:
    """Lines of a binary stream decoded as UTF-8 (BOM dropped), newlines kept for csv."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(
            io.BufferedReader(_NoClose(stream)), encoding="utf-8-sig", errors="strict", newline=""
        )

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._text
        except UnicodeDecodeError as exc:
            raise HistoryFormatError(f"the file is not UTF-8 text: {exc}") from None


class _NoClose(io.RawIOBase):
    """Lets a TextIOWrapper read a caller's stream without closing it when collected."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _text(stream: IO[Any]) -> Iterator[str]:
    if isinstance(stream, io.TextIOBase) or "b" not in getattr(stream, "mode", "b"):
        return _strip_bom(iter(stream))
    return iter(_Utf8Lines(stream))


def _strip_bom(lines: Iterator[str]) -> Iterator[str]:
    first = True
    for line in lines:
        if first:
            first = False
            if line.startswith(codecs.BOM_UTF8.decode()):
                line = line[1:]
        yield line


def _peek_first_line(lines: Iterator[str]) -> str | None:
    return next(lines, None)


def _chain(first: str | None, rest: Iterator[str]) -> Iterator[str]:
    if first is not None:
        yield first
        yield from rest
