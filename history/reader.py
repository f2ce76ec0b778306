"""Reading a history file: open, decode, tell the format, stream the rows.

Clubs export what their systems hold, so the reader is lenient where it costs nothing (a
byte-order mark, CRLF, quoted fields, blank lines, extra columns, column order, header case)
and strict where the contract (:mod:`schemas.history`, ``docs/history-csv.md``) says a guess
would change the meaning of the data. Anything wrong with a row is a
:class:`~schemas.history.RowError` with the row's line number, never an exception: one bad
line in a ten-million-line export must not stop the other 9,999,999. Only a file that cannot
be read at all (no header, unknown columns, not UTF-8) raises
:class:`~schemas.history.HistoryFormatError`.

Reading streams: one line at a time, constant memory whatever the file size. CSV rows come
from :mod:`history.fast` when it can vouch for the tenant and origin, else (or when asked
for the reference) from :mod:`history.reference`; JSON Lines from the models directly.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from history.fast import fast_rows, proven_id, same_event
from history.reference import Lines, not_utf8, reference_rows, schema_error
from schemas import Event
from schemas.events import ACCESS_KINDS, MemberEvent
from schemas.history import (
    JSONL_SUFFIXES,
    Format,
    HistoryFormatError,
    Row,
    RowError,
    Zones,
    header_format,
)

_event: TypeAdapter[Event] = TypeAdapter(MemberEvent)


def _read_csv(
    text: Iterable[str],
    tenant_id: str,
    source: str,
    default_site: str | None,
    expect: Format | None,
    *,
    fast: bool,
    zones: Zones | None = None,
) -> tuple[Format, Iterator[Row]]:
    """The format the header names and the rows after it (by the fast path or the reference)."""
    lines = Lines(text)
    reader = csv.reader(lines, strict=False)
    header: list[str] | None = None
    try:
        for raw in reader:
            if any(cell.strip() for cell in raw):
                header = [cell.strip().lower() for cell in raw]
                break
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None
    if header is None:
        raise HistoryFormatError("the file is empty: a CSV export needs a header line")
    fmt = header_format(header, default_site)
    if expect is not None and fmt != expect:
        raise HistoryFormatError(f"expected a {expect} export, the header says {fmt}")
    index: dict[str, int] = {}
    for i, name in enumerate(header):
        index.setdefault(name, i)
    if fast:
        return fmt, fast_rows(lines, fmt, index, tenant_id, source, default_site, zones)
    return fmt, reference_rows(lines, reader, fmt, index, tenant_id, source, default_site, zones)


_PROBES = (
    "member_id,site_id,occurred_at,kind,device_id\nm1,s1,2024-03-01T18:30:00+01:00,gate_exit,d\n",
    "member_id,occurred_at,event,reason,note\nm1,2024-03-01T17:30:00Z,cancelled,price,n\n",
)


@functools.cache
def fast_path_agrees() -> bool:
    """Whether building a model without validation still yields what validation does.

    The fast path writes pydantic's instance slots directly; should a pydantic release change
    them, this check (run once, when the first CSV is opened) turns the fast path off instead
    of building wrong events. ``tests/history/test_fast.py`` requires it to hold.
    """
    try:
        for probe in _PROBES:
            _, fast = _read_csv(io.StringIO(probe), "t", "import", None, None, fast=True)
            _, slow = _read_csv(io.StringIO(probe), "t", "import", None, None, fast=False)
            pairs = list(zip(fast, slow, strict=True))
            if not pairs or not all(
                la == lb and not isinstance(a, RowError) and same_event(a, b)
                for (la, a), (lb, b) in pairs
            ):
                return False
    except Exception:  # any surprise means: do not use the fast path
        return False
    return True


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
        return schema_error(exc)


def _read_jsonl(text: Iterable[str], tenant_id: str, source: str) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if line.strip():
            yield number, _jsonl_row(line, tenant_id, source)


class HistoryReader:
    """An open history file: its detected ``format`` and its rows, read once, streaming.

    ``source`` may be a path or an open file (binary or text). Binary input is decoded as
    UTF-8 with an optional byte-order mark; a file that is not UTF-8 raises
    :class:`HistoryFormatError` where the bad bytes are met. ``fmt`` forces the format; by
    default ``.jsonl``/``.ndjson`` (or a first line starting with ``{``) is JSON Lines and a
    CSV is told apart by its header. ``default_site`` fills an access row's empty or absent
    ``site_id`` (single-club exports often have none). ``reference=True`` builds every CSV
    row through the pydantic models (:mod:`history.reference`), as the reader did before its
    fast path: the yardstick the fast path is tested and benchmarked against, same rows out,
    several times slower. ``zones``: the zones a CSV's naive times are read in (an export of
    local times without offsets: the site's zone, else the default; ``schemas.history.Zones``);
    without one such a row is a ``naive_timestamp`` error. JSON Lines are the events topic's
    JSON: their times always carry an offset, and ``zones`` do not apply to them.
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
        zones: Zones | None = None,
    ) -> None:
        self._owned: IO[Any] | None = None
        if isinstance(source, (str, os.PathLike)):
            name = os.fspath(source)
            self._owned = open(name, "rb")  # noqa: SIM115  # closed by close()/__exit__
            stream: IO[Any] = self._owned
        else:
            name = str(getattr(source, "name", ""))
            stream = source
        self.format: Format
        # A file that cannot be read is said with its name: a command reads several (access
        # and membership), and bytes that are not UTF-8 may come far into one.
        try:
            self.format, rows = _open_rows(
                stream, name, tenant_id, origin, fmt, default_site, reference, zones
            )
        except HistoryFormatError as exc:
            self.close()
            raise HistoryFormatError(f"{name}: {exc}" if name else str(exc)) from None
        self.rows = _named(rows, name) if name else rows

    def __iter__(self) -> Iterator[Row]:
        return self.rows

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _open_rows(
    stream: IO[Any],
    name: str,
    tenant_id: str,
    origin: str,
    fmt: Format | None,
    default_site: str | None,
    reference: bool,
    zones: Zones | None,
) -> tuple[Format, Iterator[Row]]:
    """A history file's format and its rows, from its header (or first line) on."""
    text = _text(stream)
    try:
        first = next(text, None)
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None
    if first is not None and first.startswith(_BOM) and not _decodes(stream):
        first = first[1:]  # a text stream's BOM (a binary one's was decoded away)
    # C iterators only: the fast path reads straight from the file's TextIOWrapper.
    lines = itertools.chain((first,), text) if first is not None else iter(())
    if fmt is None and (
        name.lower().endswith(JSONL_SUFFIXES)
        or (first is not None and first.lstrip().startswith("{"))
    ):
        fmt = "jsonl"
    if fmt == "jsonl":
        return "jsonl", _read_jsonl(_utf8(lines), tenant_id, origin)
    fast = not reference and _vouched(tenant_id, origin) and fast_path_agrees()
    return _read_csv(
        lines if fast else _utf8(lines),
        tenant_id,
        origin,
        default_site,
        fmt,
        fast=fast,
        zones=zones,
    )


def _vouched(tenant_id: str, origin: str) -> bool:
    """The fast path vouches for the tenant and origin once (else: the models, per row)."""
    return proven_id(tenant_id) and len(origin) <= 64 and origin.isascii() and origin.isprintable()


def read_history(
    source: str | os.PathLike[str] | IO[bytes] | IO[str],
    tenant_id: str,
    *,
    origin: str = "import",
    fmt: Format | None = None,
    default_site: str | None = None,
    reference: bool = False,
    zones: Zones | None = None,
) -> Iterator[Row]:
    """Yield ``(line_number, event)`` or ``(line_number, RowError)`` for each non-blank row.

    Line numbers count physical lines from 1 (the header is line 1 of a CSV); a quoted field
    spanning lines is reported at the line where its record starts. ``origin`` becomes the
    access events' ``source``. See :class:`HistoryReader` for the other arguments.
    """
    with HistoryReader(
        source,
        tenant_id,
        origin=origin,
        fmt=fmt,
        default_site=default_site,
        reference=reference,
        zones=zones,
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


def _named(rows: Iterator[Row], name: str) -> Iterator[Row]:
    """The rows, a :class:`HistoryFormatError` met while reading them (bytes that are not
    UTF-8) said with the file's name. No cost to see beside the reading (906,352 rows:
    within 2 %, in the noise)."""
    try:
        yield from rows
    except HistoryFormatError as exc:
        raise HistoryFormatError(f"{name}: {exc}") from None


def _utf8(lines: Iterator[str]) -> Iterator[str]:
    try:
        yield from lines
    except UnicodeDecodeError as exc:
        raise not_utf8(exc) from None
