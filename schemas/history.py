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
import io
import itertools
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
    EARLIEST,
    LATEST,
    MEMBERSHIP_KINDS,
    RESERVED_MEMBER_IDS,
    AccessEvent,
    CancelReason,
    MemberEvent,
    MembershipEvent,
    pattern_message,
)
from schemas.ids import uuid5

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
    return uuid5(_NAMESPACE_BYTES, "\x1f".join((tenant_id, fmt, *parts)).encode())


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
    try:
        at.astimezone(UTC)
    except OverflowError:
        return RowError(
            "bad_timestamp", f"occurred_at {value[:64]!r} is out of range once converted to UTC"
        )
    return at


def _schema_error(exc: ValidationError) -> RowError:
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = [p for p in err["loc"] if p not in ACCESS_KINDS + MEMBERSHIP_KINDS]
        loc = ".".join(str(p) for p in path)
        message = err["msg"]
        if err["type"] == "string_pattern_mismatch" and path:
            message = pattern_message(path[-1]) or message
        parts.append(f"{loc or 'event'}: {message}")
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
    *,
    fast: bool,
) -> tuple[Format, Iterator[Row]]:
    lines = _Lines(text)
    reader = csv.reader(lines, strict=False)
    header: list[str] | None = None
    try:
        for raw in reader:
            if any(cell.strip() for cell in raw):
                header = [cell.strip().lower() for cell in raw]
                break
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from None
    if header is None:
        raise HistoryFormatError("the file is empty: a CSV export needs a header line")
    fmt = _header_format(header, default_site)
    if expect is not None and fmt != expect:
        raise HistoryFormatError(f"expected a {expect} export, the header says {fmt}")
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    if fast:
        return fmt, _fast_rows(lines, fmt, index, tenant_id, source, default_site)

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


# --- CSV: the fast path ----------------------------------------------------------------------
#
# The per-row cost of the path above is mostly pydantic (building the model), the UUID and the
# UTC form of the time: ten million rows spent minutes there. The fast path below accepts a
# row only when cheap checks prove the models would accept it unchanged (ids of printable
# ASCII without space or ``:``, lengths within bounds, a known kind, a time with an offset),
# builds the event without revalidating, and hands every other row to the path above, which
# then says exactly why it is refused (or accepts it). So the two paths cannot disagree on a
# refused row; tests/schemas/test_history_fast.py feeds both the same rows to show that they
# agree on the accepted ones, field by field.

_ACCESS_KINDS = frozenset(ACCESS_KINDS)
_MEMBERSHIP_KINDS = frozenset(MEMBERSHIP_KINDS)
_CANCEL_REASONS = frozenset(CANCEL_REASONS)
_ACCESS_SET = frozenset(
    ("event_id", "tenant_id", "member_id", "site_id", "kind", "occurred_at", "device_id", "source")
)
_MEMBERSHIP_SET = frozenset(
    ("event_id", "tenant_id", "member_id", "kind", "occurred_at", "reason", "note")
)
# The UUIDv5 variant nibble (RFC 4122 §4.1.1: 10xx) for each hex digit of the raw hash.
# Ids already proven valid, so a member's thousandth row skips the checks (and its events
# share one string); bounded.
_KNOWN_IDS_MAX = 1 << 16


def _fast_id(value: str) -> bool:
    """True only if ``value`` surely matches the ``Id`` types (1–128 chars, no whitespace, ``:``,
    ``/`` or control, not ``.``, ``..`` or a reserved member id).

    Printable ASCII other than space is whitespace, control or invisible in no regex flavour.
    Anything else (non-ASCII ids included) is left to the models, which decide.
    """
    return (
        0 < len(value) <= 128
        and value.isascii()
        and value.isprintable()
        and " " not in value
        and ":" not in value
        and "/" not in value
        and value != "."
        and value != ".."
        and value not in RESERVED_MEMBER_IDS
    )


def _fast_event_id(prefix: bytes, rest: str) -> str:
    """:func:`csv_event_id` with the namespace, tenant and format already encoded."""
    return uuid5(prefix, rest.encode())


def _utc_text(text: str, at: datetime) -> str:
    """``at`` in UTC in Python's ISO form, read off ``text`` when it already is that form.

    ``2024-03-01T17:30:00+00:00`` is its own UTC form, ``2024-03-01T17:30:00Z`` nearly; the
    separators are checked because ``fromisoformat`` accepts other shapes of the same length
    (``2024-W09-5T17:30:00+00:00``, a space for the ``T``); ``text`` parsed, so the other
    characters are the digits of a valid time.
    """
    n = len(text)
    if (
        ((n == 25 and text[19:] == "+00:00") or (n == 20 and text[19] == "Z"))
        and text[10] == "T"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    ):
        return text if n == 25 else text[:19] + "+00:00"
    return at.astimezone(UTC).isoformat()


def _fast_rows(
    lines: _Lines,
    fmt: Format,
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
) -> Iterator[Row]:
    """The rows of a CSV after its header, as ``_read_csv``'s own loop yields them, faster.

    A line without a quote, a stray CR/LF or an over-long field is split on commas, which is
    what ``csv.reader`` does with it; any other line starts a record read by ``csv.reader``
    itself (over that line and, for a quoted field spanning lines, the following ones).
    """
    access = fmt == "access"
    i_member = index["member_id"]
    i_at = index["occurred_at"]
    i_kind = index["kind" if access else "event"]
    i_site = index.get("site_id") if access else None
    i_device = index.get("device_id") if access else None
    i_reason = None if access else index.get("reason")
    i_note = None if access else index.get("note")
    needed = 1 + max(
        i for i in (i_member, i_at, i_kind, i_site, i_device, i_reason, i_note) if i is not None
    )
    kinds = _ACCESS_KINDS if access else _MEMBERSHIP_KINDS
    model: type[AccessEvent] | type[MembershipEvent] = AccessEvent if access else MembershipEvent
    fields_set = _ACCESS_SET if access else _MEMBERSHIP_SET
    prefix = _NAMESPACE_BYTES + f"{tenant_id}\x1f{fmt}\x1f".encode()
    site_default = default_site or ""
    known: dict[str, str] = {}
    parse = datetime.fromisoformat
    new = object.__new__
    put = object.__setattr__
    limit = csv.field_size_limit()
    text_lines = lines._it
    number = lines.count
    try:
        for line in text_lines:
            number += 1
            start = number
            # The line without its end: TextIOWrapper(newline="") ends a line at \n, \r or \r\n.
            if line[-1:] == "\n":
                body = line[:-2] if line[-2:-1] == "\r" else line[:-1]
            elif line[-1:] == "\r":
                body = line[:-1]
            else:
                body = line
            if '"' in body or "\r" in body or "\n" in body or len(body) > limit:
                reader = csv.reader(itertools.chain((line,), text_lines), strict=False)
                try:
                    raw = next(reader)
                except csv.Error as exc:
                    number = start + reader.line_num - 1
                    yield start, RowError("malformed_csv", str(exc))
                    continue
                number = start + reader.line_num - 1
            else:
                raw = body.split(",")
            if len(raw) >= needed:
                member = raw[i_member].strip()
                kind = raw[i_kind].strip()
                known_member = known.get(member)
                if access:
                    site = (raw[i_site].strip() if i_site is not None else "") or site_default
                    known_site = known.get(site)
                    device = (raw[i_device].strip() or None) if i_device is not None else None
                    extra_ok = (known_site is not None or _fast_id(site)) and (
                        device is None
                        or (len(device) <= 128 and device.isascii() and device.isprintable())
                    )
                else:
                    reason = (raw[i_reason].strip() or None) if i_reason is not None else None
                    if kind != "cancelled":
                        reason = None  # only a cancellation has a reason; a stray one is ignored
                    note = (raw[i_note].strip() or None) if i_note is not None else None
                    extra_ok = (reason is None or reason in _CANCEL_REASONS) and (
                        note is None
                        or (len(note) <= 2000 and note.isascii() and note.isprintable())
                    )
                if kind in kinds and extra_ok and (known_member is not None or _fast_id(member)):
                    text = raw[i_at].strip()
                    try:
                        at: datetime | None = parse(text)
                    except ValueError:
                        at = None
                    # fromisoformat gives no tzinfo or a fixed offset: a tzinfo means aware.
                    utc = None
                    # Out of the contract's range (or of datetime's, in UTC): the slow path
                    # below words the error.
                    if at is not None and at.tzinfo is not None and EARLIEST <= at < LATEST:
                        utc = _utc_text(text, at)
                    if at is not None and utc is not None:
                        # One string per id, shared by all its events, once proven valid.
                        if known_member is not None:
                            member = known_member
                        elif len(known) < _KNOWN_IDS_MAX:
                            known[member] = member
                        if access:
                            if known_site is not None:
                                site = known_site
                            elif len(known) < _KNOWN_IDS_MAX:
                                known[site] = site
                        event = new(model)
                        if access:
                            event_id = _fast_event_id(
                                prefix, f"{member}\x1f{site}\x1f{utc}\x1f{kind}"
                            )
                            values = {
                                "schema_version": 1,
                                "event_id": event_id,
                                "tenant_id": tenant_id,
                                "member_id": member,
                                "occurred_at": at,
                                "kind": kind,
                                "site_id": site,
                                "device_id": device,
                                "source": source,
                            }
                        else:
                            event_id = _fast_event_id(prefix, f"{member}\x1f{utc}\x1f{kind}")
                            values = {
                                "schema_version": 1,
                                "event_id": event_id,
                                "tenant_id": tenant_id,
                                "member_id": member,
                                "occurred_at": at,
                                "kind": kind,
                                "reason": reason,
                                "note": note,
                                "profile": None,  # a history file carries no profile
                            }
                        put(event, "__dict__", values)
                        put(event, "__pydantic_fields_set__", set(fields_set))
                        put(event, "__pydantic_extra__", None)
                        put(event, "__pydantic_private__", None)
                        yield start, event
                        continue
            # Not provably valid: blank, or the models decide (and name the reason).
            if not any(cell.strip() for cell in raw):
                continue  # blank line, or only commas and whitespace
            if access:
                result = _access_row(raw, index, tenant_id, source, default_site)
            else:
                result = _membership_row(raw, index, tenant_id)
            if isinstance(result, RowError) and number > start:
                result = RowError(
                    result.reason,
                    f"{result.message} (the record spans lines {start}-{number}: "
                    "an unbalanced quote?)",
                )
            yield start, result
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from None


def _same_event(a: Event | RowError, b: Event | RowError) -> bool:
    """Identical as far as any reader of the event can tell, pydantic's own slots included."""
    if isinstance(a, RowError) or isinstance(b, RowError):
        return a == b
    return (
        type(a) is type(b)
        and a == b
        and a.__dict__ == b.__dict__
        and [type(v) for v in a.__dict__.values()] == [type(v) for v in b.__dict__.values()]
        and a.model_fields_set == b.model_fields_set
        and a.__pydantic_extra__ == b.__pydantic_extra__
        and a.__pydantic_private__ == b.__pydantic_private__
        and a.model_dump_json() == b.model_dump_json()
    )


_PROBES = (
    "member_id,site_id,occurred_at,kind,device_id\nm1,s1,2024-03-01T18:30:00+01:00,gate_exit,d\n",
    "member_id,occurred_at,event,reason,note\nm1,2024-03-01T17:30:00Z,cancelled,price,n\n",
)


def _fast_construct_agrees() -> bool:
    """Whether building a model without validation still yields what validation does.

    The fast path writes pydantic's instance slots directly; should a pydantic release change
    them, this check (run once at import) turns the fast path off instead of building wrong
    events.
    """
    try:
        for probe in _PROBES:
            _, fast = _read_csv(io.StringIO(probe), "t", "import", None, None, fast=True)
            _, slow = _read_csv(io.StringIO(probe), "t", "import", None, None, fast=False)
            pairs = list(zip(fast, slow, strict=True))
            if not pairs or not all(
                la == lb and not isinstance(a, RowError) and _same_event(a, b)
                for (la, a), (lb, b) in pairs
            ):
                return False
    except Exception:  # any surprise means: do not use the fast path
        return False
    return True


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
    ``site_id`` (single-club exports often have none). ``reference=True`` builds every CSV
    row through the pydantic models, as the reader did before its fast path: the yardstick
    the fast path is tested and benchmarked against, same rows out, several times slower.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes] | IO[str],
        tenant_id: str,
        *,
        origin: str = "import",
        fmt: Format | None = None,
        default_site: str | None = None,
        reference: bool = False,
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
        try:
            first = next(text, None)
        except UnicodeDecodeError as exc:
            raise _not_utf8(exc) from None
        if first is not None and first.startswith(_BOM) and not _decodes(stream):
            first = first[1:]  # a text stream's BOM (a binary one's was decoded away)
        # C iterators only: the fast path reads straight from the file's TextIOWrapper.
        lines = itertools.chain((first,), text) if first is not None else iter(())
        if fmt is None and (
            name.lower().endswith(JSONL_SUFFIXES)
            or (first is not None and first.lstrip().startswith("{"))
        ):
            fmt = "jsonl"
        self.rows: Iterator[Row]
        if fmt == "jsonl":
            self.format: Format = "jsonl"
            self.rows = _read_jsonl(_utf8(lines), tenant_id, origin)
        else:
            # The fast path vouches for the tenant and origin once (else: the models, per row).
            fast = (
                _FAST_CONSTRUCT
                and not reference
                and _fast_id(tenant_id)
                and len(origin) <= 64
                and origin.isascii()
                and origin.isprintable()
            )
            self.format, self.rows = _read_csv(
                lines if fast else _utf8(lines), tenant_id, origin, default_site, fmt, fast=fast
            )

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
    reference: bool = False,
) -> Iterator[Row]:
    """Yield ``(line_number, event)`` or ``(line_number, RowError)`` for each non-blank row.

    Line numbers count physical lines from 1 (the header is line 1 of a CSV); a quoted field
    spanning lines is reported at the line where its record starts. ``origin`` becomes the
    access events' ``source``. See :class:`HistoryReader` for the other arguments.
    """
    with HistoryReader(
        source, tenant_id, origin=origin, fmt=fmt, default_site=default_site, reference=reference
    ) as reader:
        yield from reader


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


_BOM = codecs.BOM_UTF8.decode()


def _decodes(stream: IO[Any]) -> bool:
    """Whether the reader decodes ``stream`` itself (binary) or gets text from it."""
    return not (isinstance(stream, io.TextIOBase) or "b" not in getattr(stream, "mode", "b"))


def _text(stream: IO[Any]) -> Iterator[str]:
    """Lines of the stream, newlines kept for csv; a binary one decoded as UTF-8 (BOM dropped).

    Iterating may raise ``UnicodeDecodeError``: the readers turn it into a
    :class:`HistoryFormatError` (:func:`_utf8`, or in the fast path's own loop).
    """
    if not _decodes(stream):
        return iter(stream)
    return io.TextIOWrapper(
        io.BufferedReader(_NoClose(stream)), encoding="utf-8-sig", errors="strict", newline=""
    )


def _not_utf8(exc: UnicodeDecodeError) -> HistoryFormatError:
    return HistoryFormatError(f"the file is not UTF-8 text: {exc}")


def _utf8(lines: Iterator[str]) -> Iterator[str]:
    try:
        yield from lines
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from None


_FAST_CONSTRUCT = _fast_construct_agrees()
