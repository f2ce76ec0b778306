"""The reference CSV reader: every record split by ``csv.reader``, every row through the models.

Readable and several times slower than :mod:`history.fast`, which yields the same rows and
hands every row it cannot prove valid to :func:`csv_row` here, so the two cannot disagree on
why a row is refused. ``tests/history/test_fast.py`` feeds both the same bytes and requires
the same rows out; ``bench/detector_bench.py replay`` times one against the other.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from pydantic import ValidationError

from schemas import Event
from schemas.events import (
    ACCESS_KINDS,
    MEMBERSHIP_KINDS,
    AccessEvent,
    MembershipEvent,
    pattern_message,
)
from schemas.history import (
    CANCEL_REASONS,
    Format,
    HistoryFormatError,
    Row,
    RowError,
    Zones,
    csv_event_id,
    parse_occurred_at,
    utc_iso,
)


class Lines:
    """Physical lines with their count, fed to the csv reader (which may take several)."""

    def __init__(self, text: Iterable[str]) -> None:
        self.source = iter(text)
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self.source)
        self.count += 1
        return line


def not_utf8(exc: UnicodeDecodeError) -> HistoryFormatError:
    return HistoryFormatError(f"the file is not UTF-8 text: {exc}")


def schema_error(exc: ValidationError) -> RowError:
    """The models' complaint as one ``invalid_value`` message, naming each field once."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = [p for p in err["loc"] if p not in ACCESS_KINDS + MEMBERSHIP_KINDS]
        loc = ".".join(str(p) for p in path)
        message = err["msg"]
        if err["type"] == "string_pattern_mismatch" and path:
            message = pattern_message(path[-1]) or message
        parts.append(f"{loc or 'event'}: {message}")
    return RowError("invalid_value", "; ".join(parts)[:500])


def _value(row: list[str], index: dict[str, int], column: str) -> str:
    i = index.get(column)
    return row[i].strip() if i is not None and i < len(row) else ""


def access_row(
    row: list[str],
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
    zones: Zones | None = None,
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
    zone = None if zones is None else zones.of(site)
    at = parse_occurred_at(_value(row, index, "occurred_at"), zone)
    if isinstance(at, RowError):
        return at
    device = _value(row, index, "device_id") or None
    try:
        return AccessEvent(
            event_id=csv_event_id(tenant_id, "access", member, site, utc_iso(at), kind),
            tenant_id=tenant_id,
            member_id=member,
            site_id=site,
            kind=kind,
            occurred_at=at,
            device_id=device,
            source=source,
        )
    except ValidationError as exc:
        return schema_error(exc)


def membership_row(
    row: list[str], index: dict[str, int], tenant_id: str, zones: Zones | None = None
) -> Event | RowError:
    member = _value(row, index, "member_id")
    kind = _value(row, index, "event")
    for column, value in (("member_id", member), ("event", kind)):
        if not value:
            return RowError("missing_value", f"{column} is empty or missing")
    if kind not in MEMBERSHIP_KINDS:
        return RowError(
            "unknown_kind", f"event {kind[:64]!r} is not one of {', '.join(MEMBERSHIP_KINDS)}"
        )
    zone = None if zones is None else zones.default  # a membership row names no site
    at = parse_occurred_at(_value(row, index, "occurred_at"), zone)
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
            event_id=csv_event_id(tenant_id, "membership", member, utc_iso(at), kind),
            tenant_id=tenant_id,
            member_id=member,
            kind=kind,
            occurred_at=at,
            reason=reason,
            note=note,
        )
    except ValidationError as exc:
        return schema_error(exc)


def csv_row(
    raw: list[str],
    fmt: Format,
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
    lines: tuple[int, int],
    zones: Zones | None = None,
) -> Event | RowError:
    """One non-blank record, spanning physical ``lines`` (first, last), made an event
    (``zones``: the zones naive times are read in, ``schemas.history.Zones``).

    A refused record that spans several lines says so: usually an unbalanced quote that
    swallowed the lines up to the next one.
    """
    if fmt == "access":
        result = access_row(raw, index, tenant_id, source, default_site, zones)
    else:
        result = membership_row(raw, index, tenant_id, zones)
    start, end = lines
    if isinstance(result, RowError) and end > start:
        result = RowError(
            result.reason,
            f"{result.message} (the record spans lines {start}-{end}: an unbalanced quote?)",
        )
    return result


def blank(raw: list[str]) -> bool:
    """A blank line, or one of only commas and whitespace: not a row."""
    return not any(cell.strip() for cell in raw)


def reference_rows(
    lines: Lines,
    reader: Iterator[list[str]],
    fmt: Format,
    index: dict[str, int],
    tenant_id: str,
    source: str,
    default_site: str | None,
    zones: Zones | None = None,
) -> Iterator[Row]:
    """The rows after the header: ``reader`` is the ``csv.reader`` over ``lines``."""
    while True:
        start = lines.count + 1
        try:
            raw = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, RowError("malformed_csv", str(exc))
            continue
        if not blank(raw):
            yield (
                start,
                csv_row(
                    raw, fmt, index, tenant_id, source, default_site, (start, lines.count), zones
                ),
            )
