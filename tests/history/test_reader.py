"""The history reader against the contract: CSV access and membership exports, JSON Lines;
streaming, never raising."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from history import HistoryReader, read_history
from schemas.events import ACCESS_KINDS, MEMBERSHIP_KINDS, AccessEvent, MembershipEvent
from schemas.history import (
    CANCEL_REASONS,
    ROW_ERROR_REASONS,
    HistoryFormatError,
    RowError,
    Zones,
    csv_event_id,
)

T = "club-a"


def rows_of(text: str | bytes, **kw) -> list[tuple[int, Any]]:
    data = text.encode() if isinstance(text, str) else text
    return list(read_history(io.BytesIO(data), T, **kw))


def test_access_csv_with_bom_crlf_quotes_blank_lines_and_extra_columns():
    text = (
        "\ufeffKind,member_id,Site_ID,occurred_at,comment\r\n"
        'gate_entry,m1,north,2024-03-01T18:30:00+01:00,"hello, world"\r\n'
        "\r\n"
        '"locker_open","m2","north","2024-03-01T18:31:00Z",""\r\n'
    )
    rows = rows_of(text)
    assert [n for n, _ in rows] == [2, 4]
    first, second = (r for _, r in rows)
    assert isinstance(first, AccessEvent) and isinstance(second, AccessEvent)
    assert (first.member_id, first.site_id, first.kind) == ("m1", "north", "gate_entry")
    assert first.occurred_at == datetime(2024, 3, 1, 17, 30, tzinfo=UTC)
    assert first.tenant_id == T and first.source == "import"
    assert second.kind == "locker_open"


def test_membership_csv_reason_only_for_cancellations():
    text = (
        "member_id,occurred_at,event,reason\n"
        "m1,2024-01-01T09:00:00+00:00,joined,\n"
        "m1,2024-05-01T09:00:00+02:00,cancelled,price\n"
        "m2,2024-05-02T09:00:00+02:00,frozen,price\n"
        "m3,2024-05-03T09:00:00+02:00,cancelled,\n"
        "m4,2024-05-04T09:00:00+02:00,cancelled,too expensive\n"
        "m5,2024-05-04T09:00:00+02:00,left,\n"
    )
    rows = dict(rows_of(text))
    assert isinstance(rows[3], MembershipEvent) and rows[3].reason == "price"
    assert isinstance(rows[4], MembershipEvent) and rows[4].reason is None  # stray reason dropped
    assert isinstance(rows[5], MembershipEvent) and rows[5].reason is None
    assert isinstance(rows[6], RowError) and rows[6].reason == "unknown_reason"
    assert isinstance(rows[7], RowError) and rows[7].reason == "unknown_kind"


def test_naive_timestamp_is_a_row_error_that_says_so():
    rows = rows_of("member_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T18:30:00,gate_entry\n")
    [(line, err)] = rows
    assert line == 2
    assert isinstance(err, RowError) and err.reason == "naive_timestamp"
    assert "no UTC offset" in err.message


def test_naive_times_are_read_in_the_zone_named_and_offsets_kept():
    """``zone``: an export of local times. Winter and summer offsets from the zone; a time
    with an offset keeps it; the hour that happens twice is its first occurrence, a time in
    the hour that never happens keeps the offset before the change; the events and their ids
    are those of the same rows written with offsets."""
    berlin = ZoneInfo("Europe/Berlin")
    naive = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,2025-01-15T18:30:00,gate_entry\n"  # CET
        "m1,s1,2025-07-15 18:30:00.250,gate_entry\n"  # CEST
        "m1,s1,2025-07-15T18:30:00-05:00,gate_exit\n"  # an offset: kept
        "m1,s1,2025-10-26T02:30:00,gate_entry\n"  # twice that night: the first (CEST)
        "m1,s1,2025-03-30T02:30:00,gate_entry\n"  # never that night: CET still
    )
    with_offsets = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,2025-01-15T18:30:00+01:00,gate_entry\n"
        "m1,s1,2025-07-15 18:30:00.250+02:00,gate_entry\n"
        "m1,s1,2025-07-15T18:30:00-05:00,gate_exit\n"
        "m1,s1,2025-10-26T02:30:00+02:00,gate_entry\n"
        "m1,s1,2025-03-30T02:30:00+01:00,gate_entry\n"
    )
    read = [e for _, e in rows_of(naive, zones=Zones(berlin))]
    assert all(isinstance(e, AccessEvent) for e in read)
    assert [e.model_dump() for e in read] == [e.model_dump() for _, e in rows_of(with_offsets)]
    assert [e.occurred_at.astimezone(UTC).hour for e in read] == [17, 16, 23, 0, 1]
    assert [e.occurred_at.utcoffset() for e in read] == [
        timedelta(hours=h) for h in (1, 2, -5, 2, 1)
    ]
    # A chain across zones: each site's rows in its own zone, the others in the default.
    chain = (
        "member_id,site_id,occurred_at,kind\nm1,s1,2025-07-15T18:30:00,gate_entry\n"
        "m2,nyc,2025-07-15T18:30:00,gate_entry\nm3,lax,2025-07-15T18:30:00,gate_entry\n"
    )
    by_site = Zones(berlin, {"nyc": ZoneInfo("America/New_York")})
    assert [e.occurred_at.utcoffset() for _, e in rows_of(chain, zones=by_site)] == [
        timedelta(hours=h) for h in (2, -4, 2)
    ]
    [(_, err)] = rows_of(chain, zones=Zones(None, {"nyc": berlin}))[::3]
    assert isinstance(err, RowError) and err.reason == "naive_timestamp"  # s1: no zone named
    membership = "member_id,occurred_at,event\nm1,2025-07-01T09:00:00,cancelled\n"
    [(_, cancel)] = rows_of(membership, zones=Zones(ZoneInfo("America/New_York"), {"s1": berlin}))
    assert isinstance(cancel, MembershipEvent)
    assert cancel.occurred_at == datetime(2025, 7, 1, 13, tzinfo=UTC)
    # JSON Lines are the topic's events: a naive time there is refused whatever the zone.
    line = json.dumps({"event_id": "e1", "member_id": "m1", "site_id": "s1",
                       "kind": "gate_entry", "occurred_at": "2025-01-15T18:30:00"})  # fmt: skip
    [(_, err)] = list(read_history(io.BytesIO(line.encode()), T, fmt="jsonl", zones=Zones(berlin)))
    assert isinstance(err, RowError)


def test_each_kind_of_bad_row_has_its_reason():
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,yesterday,gate_entry\n"  # 2
        ",s1,2024-03-01T18:30:00Z,gate_entry\n"  # 3
        "m1,s1,2024-03-01T18:30:00Z,teleport\n"  # 4
        "m 1,s1,2024-03-01T18:30:00Z,gate_entry\n"  # 5: whitespace in an id
        "m1\n"  # 6: short row
        "m1,s1,2024-03-01T18:30:00Z,gate_exit\n"  # 7: fine
    )
    rows = rows_of(text)
    reasons = {n: (r.reason if isinstance(r, RowError) else "ok") for n, r in rows}
    assert reasons == {
        2: "bad_timestamp",
        3: "missing_value",
        4: "unknown_kind",
        5: "invalid_value",
        6: "missing_value",
        7: "ok",
    }
    assert "member_id" in str(rows[3][1])


def test_times_out_of_range_are_row_errors_not_crashes():
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,0001-01-01T00:30:00+01:00,gate_entry\n"  # 2: before year 1 in UTC
        "m1,s1,9999-12-31T23:30:00-01:00,gate_entry\n"  # 3: after year 9999 in UTC
        "m1,s1,1899-12-31T23:59:59Z,gate_entry\n"  # 4: before the contract's range
        "m1,s1,1899-12-31T23:30:00-01:00,gate_entry\n"  # 5: 1900-01-01T00:30Z: fine
        "m1,s1,9000-01-01T00:00:00Z,gate_entry\n"  # 6: the range's end is excluded
    )
    rows = dict(rows_of(text))
    assert {n: r.reason for n, r in rows.items() if isinstance(r, RowError)} == {
        2: "bad_timestamp",
        3: "bad_timestamp",
        4: "invalid_value",
        6: "invalid_value",
    }
    assert "out of range" in rows[2].message and "1900" in rows[4].message
    assert isinstance(rows[5], AccessEvent)
    assert rows[5].occurred_at == datetime(1900, 1, 1, 0, 30, tzinfo=UTC)


def test_default_site_fills_a_missing_column():
    rows = rows_of(
        "member_id,occurred_at,kind\nm1,2024-03-01T18:30:00Z,gate_entry\n", default_site="x"
    )
    assert isinstance(rows[0][1], AccessEvent) and rows[0][1].site_id == "x"
    with pytest.raises(HistoryFormatError, match="site_id"):
        rows_of("member_id,occurred_at,kind\nm1,2024-03-01T18:30:00Z,gate_entry\n")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("a,b,c\n1,2,3\n", "either"),
        ("member_id,occurred_at,kind,event\n", "either"),
        ("member_id,event\n", "occurred_at"),
    ],
)
def test_unreadable_files_raise_a_format_error(text, match):
    with pytest.raises(HistoryFormatError, match=match):
        rows_of(text)


def test_not_utf8_is_a_format_error():
    with pytest.raises(HistoryFormatError, match="UTF-8"):
        rows_of(b"member_id,site_id,occurred_at,kind\nm\xff1,s,2024-03-01T18:30:00Z,gate_entry\n")


@pytest.mark.parametrize("reference", [False, True])
def test_a_file_that_cannot_be_read_is_named(tmp_path, reference):
    """The error names the file, whether the header is wrong or bad bytes come far into it
    (a command reads the access and the membership export together)."""
    header = tmp_path / "members.csv"
    header.write_text("member_id,occurred_at,status\nm1,2024-03-01T18:30:00Z,cancelled\n")
    with pytest.raises(HistoryFormatError, match=r"^.*members\.csv: the header must name"):
        HistoryReader(header, "t", reference=reference)
    late = tmp_path / "gates.csv"
    good = b"m1,s1,2024-03-01T17:30:00Z,gate_entry\n"
    late.write_bytes(b"member_id,site_id,occurred_at,kind\n" + good * 5000 + b"m\xff,s1\n")
    reader = HistoryReader(late, "t", reference=reference)
    with reader, pytest.raises(HistoryFormatError, match=r"^.*gates\.csv: the file is not UTF-8"):
        list(reader)


def test_jsonl_by_extension_and_content(tmp_path):
    good = {
        "event_id": "e1",
        "member_id": "m1",
        "site_id": "s1",
        "kind": "gate_entry",
        "occurred_at": "2024-03-01T18:30:00+01:00",
    }
    other = dict(good, event_id="e2", tenant_id="club-b")
    lines = [json.dumps(good), "", "[1]", "{not json", json.dumps(other)]
    path = tmp_path / "h.ndjson"
    path.write_text("\n".join(lines) + "\n")
    with HistoryReader(path, T) as reader:
        assert reader.format == "jsonl"
        rows = list(reader)
    assert [n for n, _ in rows] == [1, 3, 4, 5]
    ev = rows[0][1]
    assert isinstance(ev, AccessEvent) and ev.tenant_id == T and ev.source == "import"
    assert [getattr(r, "reason", None) for _, r in rows[1:]] == [
        "bad_json",
        "bad_json",
        "tenant_mismatch",
    ]
    # detected by content too
    assert isinstance(rows_of(json.dumps(good) + "\n")[0][1], AccessEvent)


def test_event_ids_are_deterministic_and_offset_independent():
    a = rows_of("member_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T18:30:00+01:00,gate_entry\n")
    b = rows_of("kind,occurred_at,site_id,member_id,x\ngate_entry,2024-03-01T17:30:00Z,s1,m1,9\n")
    assert a[0][1].event_id == b[0][1].event_id
    assert a[0][1].event_id == csv_event_id(
        T, "access", "m1", "s1", "2024-03-01T17:30:00+00:00", "gate_entry"
    )
    other_tenant: list[Any] = list(
        read_history(
            io.StringIO("member_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T17:30Z,gate_entry\n"),
            "club-b",
        )
    )
    assert other_tenant[0][1].event_id != a[0][1].event_id


def test_streams_a_large_file_lazily():
    """The reader pulls lines as rows are consumed: nothing reads the whole file up front."""

    class Counting(io.RawIOBase):
        def __init__(self, rows: int) -> None:
            self.made = 0
            self.rows = rows
            self.buf = b"member_id,site_id,occurred_at,kind\n"

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            while len(self.buf) < len(b) and self.made < self.rows:
                self.buf += f"m{self.made},s,2024-03-01T18:30:00Z,gate_entry\n".encode()
                self.made += 1
            n = min(len(b), len(self.buf))
            b[:n] = self.buf[:n]
            self.buf = self.buf[n:]
            return n

    src = Counting(10_000_000)
    it = read_history(io.BufferedReader(src), T)
    for _ in range(1000):
        next(it)
    assert src.made < 20_000  # read ahead by buffers only, not the ten million rows


# --- properties ------------------------------------------------------------------------------

# The contract's id grammar (docs/ingest.md): no control, format, private-use or space
# character, no ``:`` or ``/``, not a dot segment nor a reserved member id.
ids = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cs", "Cc", "Cf", "Co", "Zs", "Zl", "Zp"),
        exclude_characters=":/",
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: s not in (".", "..", "at-risk") and not any(c.isspace() for c in s))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
times = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1)),
    offsets,
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(ids, ids, times, st.sampled_from(ACCESS_KINDS)), min_size=1, max_size=30),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),
)
def test_access_round_trip(rows, newline, bom):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(["member_id", "site_id", "occurred_at", "kind"])
    for member, site, at, kind in rows:
        w.writerow([member, site, at.isoformat(), kind])
    data = ("\ufeff" if bom else "") + buf.getvalue()
    got = rows_of(data)
    assert [n for n, _ in got] == list(range(2, len(rows) + 2))
    for (member, site, at, kind), (_, ev) in zip(rows, got, strict=True):
        assert isinstance(ev, AccessEvent), ev
        assert (ev.member_id, ev.site_id, ev.occurred_at, ev.kind) == (member, site, at, kind)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            ids,
            times,
            st.sampled_from(MEMBERSHIP_KINDS),
            st.one_of(st.none(), st.sampled_from(CANCEL_REASONS)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_membership_round_trip(rows):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["member_id", "occurred_at", "event", "reason"])
    for member, at, kind, reason in rows:
        w.writerow([member, at.isoformat(), kind, reason or ""])
    got = rows_of(buf.getvalue())
    assert len(got) == len(rows)
    for (member, at, kind, reason), (_, ev) in zip(rows, got, strict=True):
        assert isinstance(ev, MembershipEvent), ev
        assert (ev.member_id, ev.occurred_at, ev.kind) == (member, at, kind)
        assert ev.reason == (reason if kind == "cancelled" else None)


VALID = "m1,s1,2024-03-01T18:30:00Z,gate_entry"
# Garbage without a double quote: a quote may legitimately open a field spanning lines.
garbage = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters='"\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029'
    ),
    min_size=1,
    max_size=60,
).filter(lambda s: s.replace(",", "").strip() != "")  # else a blank line


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.just(None), garbage), min_size=1, max_size=40))
def test_garbage_lines_are_row_errors_with_their_line_numbers(lines):
    text = "member_id,site_id,occurred_at,kind\n" + "\n".join(
        VALID if line is None else line for line in lines
    )
    got: dict[int, Any] = dict(rows_of(text))  # never raises
    for i, line in enumerate(lines, start=2):
        if line is None:
            assert isinstance(got[i], AccessEvent)
        else:
            assert i in got, (i, line)
            if isinstance(got[i], RowError):
                assert got[i].reason in ROW_ERROR_REASONS
    assert set(got) == set(range(2, len(lines) + 2))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.just(None), garbage), min_size=1, max_size=30))
def test_garbage_jsonl_lines_are_row_errors(lines):
    good = json.dumps(
        {"event_id": "e", "member_id": "m", "kind": "joined", "occurred_at": "2024-01-01T00:00Z"}
    )
    text = "\n".join(good if line is None else line for line in lines)
    got = dict(rows_of(text, fmt="jsonl"))
    for i, line in enumerate(lines, start=1):
        if line is None:
            assert isinstance(got[i], MembershipEvent)
        elif line.strip():
            assert isinstance(got[i], RowError | AccessEvent | MembershipEvent)


def test_an_unbalanced_quote_is_reported_where_its_record_starts():
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,2024-03-01T18:30:00Z,gate_entry\n"
        'm2,"s1,2024-03-01T18:30:00Z,gate_entry\n'
        "m3,s1,2024-03-01T18:30:00Z,gate_entry\n"
    )
    rows = rows_of(text)
    assert rows[0][0] == 2 and isinstance(rows[0][1], AccessEvent)
    line, err = rows[1]
    assert line == 3 and isinstance(err, RowError)
    assert "spans lines 3-4" in err.message
