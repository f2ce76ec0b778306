"""The CSV reader's fast path: the rows of :mod:`history.reference`, built without pydantic.

Reference: :func:`history.reference.reference_rows`. Pinned to it by
``tests/history/test_fast.py``, which feeds both the same bytes (hostile ones included, by
hypothesis) and requires the same rows out, field by field; ``bench/detector_bench.py replay``
times the two side by side.

The reference's per-row cost is mostly pydantic (building the model), the UUID and the UTC
form of the time: ten million rows spent minutes there. This path accepts a row only when
cheap checks prove the models would accept it unchanged (ids of printable ASCII without space,
``:`` or ``/``, lengths within bounds, a known kind, a time with an offset and in range),
builds the event without revalidating, and hands every other row to
:func:`history.reference.csv_row`, which then says exactly why it is refused (or accepts
it). So the two paths cannot disagree on a refused row.

Building a model without validation writes pydantic's instance slots directly;
:func:`history.reader.fast_path_agrees` checks once, at the first file read, that this still
yields what validation does, and turns the path off if not.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any

from history.reference import Lines, blank, csv_row, not_utf8
from schemas import Event
from schemas.events import (
    ACCESS_KINDS,
    EARLIEST,
    LATEST,
    MEMBERSHIP_KINDS,
    RESERVED_MEMBER_IDS,
    AccessEvent,
    MembershipEvent,
)
from schemas.history import (
    CANCEL_REASONS,
    NAMESPACE_BYTES,
    Format,
    Row,
    RowError,
    Zones,
    local_time,
)
from schemas.ids import uuid5

_ACCESS_KINDS = frozenset(ACCESS_KINDS)
_MEMBERSHIP_KINDS = frozenset(MEMBERSHIP_KINDS)
_CANCEL_REASONS = frozenset(CANCEL_REASONS)
_ACCESS_SET = frozenset(
    ("event_id", "tenant_id", "member_id", "site_id", "kind", "occurred_at", "device_id", "source")
)
_MEMBERSHIP_SET = frozenset(
    ("event_id", "tenant_id", "member_id", "kind", "occurred_at", "reason", "note")
)
# The columns each format's events are built from: a shorter row goes to the reference.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "access": ("member_id", "site_id", "occurred_at", "kind", "device_id"),
    "membership": ("member_id", "occurred_at", "event", "reason", "note"),
}
# Bound once: looking the method up on the class per row cost about 1% of the reading time
# (bench: history read side by side with the previous reader, best of 10 rounds).
_parse_time = datetime.fromisoformat
# Ids already proven valid, so a member's thousandth row skips the checks (and its events
# share one string); bounded.
_KNOWN_IDS_MAX = 1 << 16
# One ``timezone`` per offset: ``fromisoformat`` makes a new one (and its timedelta) for
# every time not in UTC, 72 bytes of each event held in memory. Offsets are few (a file of
# odd ones, to the second, stops being shared past the bound).
_OFFSETS: dict[tzinfo, tzinfo] = {}
_OFFSETS_MAX = 1 << 10

# The fields of the event of a row split into cells (pydantic's ``__dict__`` of the model, as
# validation would fill it), or None when the row is not provably valid.
Fields = Callable[[list[str]], dict[str, Any] | None]


def proven_id(value: str) -> bool:
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


def event_id_prefix(tenant_id: str, fmt: Format) -> bytes:
    """The start of every :func:`schemas.history.csv_event_id` input of one file, encoded once:
    ``uuid5(prefix, rest.encode())`` is ``csv_event_id(tenant_id, fmt, *rest.split("\\x1f"))``.
    """
    return NAMESPACE_BYTES + f"{tenant_id}\x1f{fmt}\x1f".encode()


def aware(text: str, zone: tzinfo | None = None) -> tuple[datetime, str] | None:
    """The time ``text`` holds and its UTC form in Python's ISO form (the form event ids are
    made of), if the models would take the time unchanged; a naive time read in ``zone`` when
    one is given (``schemas.history.local_time``, as the reference reads it).

    Naive, not ISO 8601 or out of the contract's range (or of datetime's, in UTC): None, and
    the reference words the error (``fromisoformat`` gives no tzinfo or a fixed offset, so a
    tzinfo means aware). The UTC form is read off ``text`` when it already is that form:
    ``2024-03-01T17:30:00+00:00`` is its own, ``2024-03-01T17:30:00Z`` nearly; the separators
    are checked because ``fromisoformat`` accepts other shapes of the same length
    (``2024-W09-5T17:30:00+00:00``, a space for the ``T``); ``text`` parsed, so the other
    characters are the digits of a valid time.
    """
    try:
        at = _parse_time(text)
    except ValueError:
        return None
    if at.tzinfo is None and zone is not None:
        at = local_time(at, zone)
    tz = at.tzinfo
    if tz is None or not EARLIEST <= at < LATEST:
        return None
    if tz is not UTC:
        shared = _OFFSETS.get(tz)
        if shared is None:
            if len(_OFFSETS) < _OFFSETS_MAX:
                _OFFSETS[tz] = tz
        elif shared is not tz:
            at = at.replace(tzinfo=shared)
    n = len(text)
    if (
        ((n == 25 and text[19:] == "+00:00") or (n == 20 and text[19] == "Z"))
        and text[10] == "T"
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    ):
        return at, text if n == 25 else text[:19] + "+00:00"
    return at, at.astimezone(UTC).isoformat()


def _prove(known: dict[str, str], value: str) -> str | None:
    """``value`` if it is a proven id (then remembered in ``known``, while there is room)."""
    if not proven_id(value):
        return None
    if len(known) < _KNOWN_IDS_MAX:
        known[value] = value
    return value


def _text_ok(value: str, longest: int) -> bool:
    """A free-text value the models surely accept: printable ASCII, short enough."""
    return len(value) <= longest and value.isascii() and value.isprintable()


def _access_fields(
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
    known: dict[str, str],
    zones: Zones | None,
) -> Fields:
    """The fields :func:`history.reference.access_row` gives the rows it surely accepts."""
    i_member, i_at, i_kind = index["member_id"], index["occurred_at"], index["kind"]
    i_site, i_device = index.get("site_id"), index.get("device_id")
    site_default = default_site or ""
    prefix = event_id_prefix(tenant_id, "access")
    # One zone for every row unless sites have their own: then looked up per row.
    one_zone = None if zones is None else zones.default
    per_site = None if zones is None or not zones.sites else zones

    def fields(raw: list[str]) -> dict[str, Any] | None:
        kind = raw[i_kind].strip()
        member_cell = raw[i_member].strip()
        member = known.get(member_cell) or _prove(known, member_cell)
        site_cell = (raw[i_site].strip() if i_site is not None else "") or site_default
        site = known.get(site_cell) or _prove(known, site_cell)
        device = (raw[i_device].strip() or None) if i_device is not None else None
        if member is None or site is None or kind not in _ACCESS_KINDS:
            return None
        text = raw[i_at].strip()
        zone = one_zone if per_site is None else per_site.of(site)
        time = aware(text, zone) if device is None or _text_ok(device, 128) else None
        if time is None:
            return None
        at, utc = time
        return {
            "schema_version": 1,
            "event_id": uuid5(prefix, f"{member}\x1f{site}\x1f{utc}\x1f{kind}".encode()),
            "tenant_id": tenant_id,
            "member_id": member,
            "occurred_at": at,
            "kind": kind,
            "site_id": site,
            "device_id": device,
            "source": source,
        }

    return fields


def _membership_fields(
    index: dict[str, int],
    tenant_id: str,
    _source: str,
    _default_site: str | None,
    known: dict[str, str],
    zones: Zones | None,
) -> Fields:
    """The fields :func:`history.reference.membership_row` gives the rows it surely accepts."""
    i_member, i_at, i_kind = index["member_id"], index["occurred_at"], index["event"]
    i_reason, i_note = index.get("reason"), index.get("note")
    prefix = event_id_prefix(tenant_id, "membership")
    zone = None if zones is None else zones.default  # a membership row names no site

    def fields(raw: list[str]) -> dict[str, Any] | None:
        kind = raw[i_kind].strip()
        member_cell = raw[i_member].strip()
        member = known.get(member_cell) or _prove(known, member_cell)
        reason = (raw[i_reason].strip() or None) if i_reason is not None else None
        if kind != "cancelled":
            reason = None  # only a cancellation has a reason; a stray one is ignored
        note = (raw[i_note].strip() or None) if i_note is not None else None
        if member is None or kind not in _MEMBERSHIP_KINDS:
            return None
        if note is not None and not _text_ok(note, 2000):
            return None
        text = raw[i_at].strip()
        time = aware(text, zone) if reason is None or reason in _CANCEL_REASONS else None
        if time is None:
            return None
        at, utc = time
        return {
            "schema_version": 1,
            "event_id": uuid5(prefix, f"{member}\x1f{utc}\x1f{kind}".encode()),
            "tenant_id": tenant_id,
            "member_id": member,
            "occurred_at": at,
            "kind": kind,
            "reason": reason,
            "note": note,
            "profile": None,  # a history file carries no profile
        }

    return fields


def _csv_record(line: str, rest: Iterator[str], start: int) -> tuple[list[str] | RowError, int]:
    """The record that starts with ``line`` (line ``start``), read by ``csv.reader`` over it
    and, for a quoted field spanning lines, over the following ones; and its last line."""
    reader = csv.reader(itertools.chain((line,), rest), strict=False)
    try:
        record: list[str] | RowError = next(reader)
    except csv.Error as exc:
        record = RowError("malformed_csv", str(exc))
    return record, start + reader.line_num - 1


def fast_rows(
    lines: Lines,
    fmt: Format,
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
    zones: Zones | None = None,
) -> Iterator[Row]:
    """The rows of a CSV after its header, as :func:`history.reference.reference_rows` (the
    readable reference) yields them, faster; ``tests/history/test_fast.py``
    (``test_fast_and_reference_paths_yield_the_same_rows`` and its neighbours) pins the two
    together.

    A line without a quote, a stray CR/LF or an over-long field is split on commas, which is
    what ``csv.reader`` does with it; any other line starts a record read by ``csv.reader``
    itself. A row whose fields the format's function cannot vouch for goes to the reference's
    :func:`history.reference.csv_row`, blank ones aside. The model is built from the fields
    as validation would build it, without validating them: pydantic's instance slots written.
    """
    access = fmt == "access"
    fields_of = (_access_fields if access else _membership_fields)(
        index, tenant_id, source, default_site, {}, zones
    )
    model: type[Event] = AccessEvent if access else MembershipEvent
    # One set of the fields given, shared by the file's events: a set of nine names is 728
    # bytes, half of what an event held in memory cost (calibrate holds every event). Safe
    # because the events are frozen (nothing adds a field to it) and pydantic copies the set
    # when it copies a model (``model_copy(update=...)`` extends the copy's set, not this
    # one: ``tests/history/test_fast.py``).
    fields_set = set(_ACCESS_SET if access else _MEMBERSHIP_SET)
    new, put = object.__new__, object.__setattr__
    needed = 1 + max(index[c] for c in _COLUMNS[fmt] if c in index)
    limit = csv.field_size_limit()
    text_lines = lines.source  # the file's own iterator: no per-line Python call
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
                record, number = _csv_record(line, text_lines, start)
                if isinstance(record, RowError):
                    yield start, record
                    continue
                raw = record
            else:
                raw = body.split(",")
            values = fields_of(raw) if len(raw) >= needed else None
            if values is not None:
                event = new(model)
                put(event, "__dict__", values)
                put(event, "__pydantic_fields_set__", fields_set)
                put(event, "__pydantic_extra__", None)
                put(event, "__pydantic_private__", None)
                yield start, event
            elif not blank(raw):  # not provably valid: the models decide (and name the reason)
                yield (
                    start,
                    csv_row(
                        raw, fmt, index, tenant_id, source, default_site, (start, number), zones
                    ),
                )
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None


def same_event(a: Event | RowError, b: Event | RowError) -> bool:
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
