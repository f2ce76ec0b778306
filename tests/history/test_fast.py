"""The CSV reader's fast path (history/fast.py) against its reference (history/reference.py,
every row through pydantic).

The fast path builds events without validation when cheap checks prove the models would
accept the row unchanged, and hands every other row to the reference code. These tests feed
both paths the same bytes, hostile ones included, and require the same rows out: the same
line numbers, the same events (every field, its type, pydantic's own slots, the JSON) and
the same errors (reason and message).
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import history.fast as fast_path
import history.reference as reference_path
from history import read_history
from history.reader import fast_path_agrees
from schemas.events import (
    ACCESS_KINDS,
    EARLIEST,
    LATEST,
    MEMBERSHIP_KINDS,
    AccessEvent,
    MembershipEvent,
)
from schemas.history import CANCEL_REASONS, HistoryFormatError, RowError, Zones, csv_event_id
from schemas.ids import uuid5

T = "club-a"


def both(data: bytes | str, tenant: str = T, **kw: Any) -> tuple[list[Any], list[Any]]:
    """The rows of ``data`` by the fast path and by the reference path."""

    def source() -> io.BytesIO | io.StringIO:
        return io.BytesIO(data) if isinstance(data, bytes) else io.StringIO(data, newline="")

    fast = list(read_history(source(), tenant, **kw))
    slow = list(read_history(source(), tenant, reference=True, **kw))
    return fast, slow


def assert_same(fast: list[Any], slow: list[Any]) -> None:
    assert [n for n, _ in fast] == [n for n, _ in slow]
    for (n, a), (_, b) in zip(fast, slow, strict=True):
        if isinstance(b, RowError):
            assert a == b, n
        else:
            assert isinstance(a, AccessEvent | MembershipEvent), (n, a)
            assert fast_path.same_event(a, b), (n, a, b)
            assert a.model_dump() == b.model_dump()
            assert a.model_dump(exclude_unset=True) == b.model_dump(exclude_unset=True)
            assert hash(a) == hash(b)
            assert type(a.occurred_at.tzinfo) is type(b.occurred_at.tzinfo)


def test_the_fast_path_is_on() -> None:
    """Else every other test here compares the reference path with itself."""
    assert fast_path_agrees()


def test_importing_the_reader_runs_no_check() -> None:
    """The self-check runs when the first CSV is opened, not at import (a fresh interpreter)."""
    code = (
        "import history, history.reader as r; "
        "assert r.fast_path_agrees.cache_info().misses == 0; "
        "import io; header = io.StringIO('member_id,occurred_at,event\\n'); "
        "list(history.read_history(header, 't')); "
        "assert r.fast_path_agrees.cache_info().misses == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


# --- rows made of the values that sit on either side of each check ------------------------

ids = st.sampled_from(
    [
        "m1",
        "m2",
        "m3",
        "M-2_x.9",
        "a" * 128,
        "a" * 129,  # too long
        "",  # missing
        "m 1",  # space
        "m:1",  # colon
        "m\t1",
        "m\x1c1",  # a separator Python calls whitespace, the schema's regex does not
        "m\x851",  # NEL
        "m\u30001",  # ideographic space
        "m\u200b1",  # zero-width space: not whitespace
        "m/1",  # a path separator: no route could address it
        "m\\1",  # accepted: addressable once percent-encoded
        "at-risk",  # a reserved member id, a valid site id
        ".",
        "..",
        "...",  # not a dot segment: accepted
        "m\u202e1",  # a bidi override
        "m\ue0001",  # private use
        "müller",  # non-ASCII, valid
        "m\x001",  # NUL
        "m\x7f",  # DEL
        " m1 ",  # stripped
        "~!@#$%^&*()",
    ]
)
offsets = st.sampled_from(["+00:00", "Z", "+01:00", "-05:30", "-00:00", "+00:00:00", "", "z"])
times = st.one_of(
    st.sampled_from(
        ["2024-03-01T17:30:00Z", "2024-03-01T17:30:00+00:00", "2024-03-01T18:30:00+01:00"]
    ),
    st.builds(
        lambda d, sep, frac, off: d.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + frac + off,
        st.datetimes(datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)),
        st.sampled_from(["T", " ", "t"]),
        st.sampled_from(["", ".250", ".000001", ",5"]),
        offsets,
    ),
    st.sampled_from(
        [
            "2024-W09-5T17:30:00+00:00",  # week date: same length as the canonical form
            # Out of the contract's range, or of datetime's once in UTC.
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "1899-12-31T23:59:59Z",
            "1899-12-31T23:30:00-01:00",
            "9000-01-01T00:00:00Z",
            "8999-12-31T23:59:59Z",
            "2024-03-01T24:00:00+00:00",
            "2024-03-01T17:30:60+00:00",
            "2024-02-30T17:30:00+00:00",
            "20240301T173000+00:00",
            "2024-03-01T17:30+00:00",
            "2024-03-01",
            "yesterday",
            "",
            "2024-03-01T17:30:00+00:00 ",
            "2024-03-01T17:30:00+24:00",
            "2024-03-01T17:30:00+23:59",
        ]
    ),
)
access_kinds = st.sampled_from([*ACCESS_KINDS, "teleport", "", "Gate_Entry", "joined"])
member_kinds = st.sampled_from([*MEMBERSHIP_KINDS, "left", "", "gate_entry"])
reasons = st.sampled_from([*CANCEL_REASONS, "", "too expensive", "Price"])
free = st.sampled_from(
    # Control characters: NUL is refused everywhere (PostgreSQL cannot store it), the others
    # in labels such as device_id but not in a note.
    [
        *("", "d1", "x" * 128, "x" * 129, "é", "y" * 2000, "y" * 2001, "ü" * 3, "a\x00b"),
        *("a\tb", "\x7f", "\x1b[31mred", "a\x9bb", "a\r\nb"),
    ]
)
garbage = st.text(alphabet='ab,: "\r\n\x00é\t', max_size=12)


def cell(value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A value as a CSV cell: bare, quoted (commas, quotes and line ends inside), or junk."""
    quoted = value.map(lambda v: '"' + v.replace('"', '""') + '"')
    return st.one_of(value, value, value, quoted, garbage)


COLUMNS = {
    "access": {
        "member_id": ids,
        "site_id": ids,
        "occurred_at": times,
        "kind": access_kinds,
        "device_id": free,
        "comment": garbage,
    },
    "membership": {
        "member_id": ids,
        "occurred_at": times,
        "event": member_kinds,
        "reason": reasons,
        "note": free,
        "comment": garbage,
    },
}
REQUIRED = {"access": ["member_id", "site_id", "occurred_at", "kind"], "membership": []}


# Daylight saving north and south, half an hour of it (Lord Howe), none.
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC")


@st.composite
def files(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    fmt = draw(st.sampled_from(["access", "membership"]))
    columns = list(COLUMNS[fmt])
    header = draw(st.permutations(columns))
    drop = draw(st.sets(st.sampled_from(["device_id", "comment", "note", "reason", "site_id"])))
    header = [c for c in header if c not in drop]
    kw: dict[str, Any] = {}
    if "site_id" not in header:
        kw["default_site"] = draw(st.sampled_from(["north", "a b", "x" * 129]))
    elif draw(st.booleans()):
        kw["default_site"] = "south"
    if draw(st.booleans()):  # an export of local times (naive rows read in these zones)
        default = draw(st.sampled_from([None, *ZONES]))
        sites = draw(st.dictionaries(st.sampled_from(["north", "south", "s1"]),
                                     st.sampled_from(ZONES), max_size=2))  # fmt: skip
        kw["zones"] = Zones(None if default is None else ZoneInfo(default),
                            {s: ZoneInfo(z) for s, z in sites.items()})  # fmt: skip
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    lines = [",".join(draw(st.sampled_from([c, c.upper(), f" {c} "])) for c in header)]
    for _ in range(draw(st.integers(1, 12))):
        shape = draw(st.integers(0, 9))
        if shape == 0:
            lines.append(draw(st.sampled_from(["", " ", ",,,", " , ,", '"', '""', "\x00"])))
        elif shape == 1:
            lines.append(draw(garbage))
        else:
            cells = [draw(cell(COLUMNS[fmt][c])) for c in header]
            cut = draw(st.sampled_from([None, None, None, 1, -1]))
            if cut is not None:
                cells = cells[:cut]
            if draw(st.integers(0, 9)) == 0:
                cells.append(draw(garbage))  # more cells than the header
            lines.append(",".join(cells))
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    return text, kw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files(),
    st.booleans(),
    st.sampled_from([T, "t" * 128]),
    st.sampled_from(["import", "replay"]),
)
@example(("member_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T17:30:00Z,gate_entry\n", {}),
         False, T, "import")  # fmt: skip
@example(("member_id,site_id,occurred_at,kind\nm1,s1,2025-10-26T02:30:00,gate_entry\n",
          {"zones": Zones(ZoneInfo("Europe/Berlin"))}), False, T, "import")  # fmt: skip
def test_fast_and_reference_paths_yield_the_same_rows(
    file: tuple[str, dict[str, Any]], as_bytes: bool, tenant: str, origin: str
) -> None:
    text, kw = file
    outcomes: list[list[Any] | str] = []
    for reference in (False, True):
        source = io.BytesIO(text.encode()) if as_bytes else io.StringIO(text, newline="")
        try:
            rows = read_history(source, tenant, origin=origin, reference=reference, **kw)
            outcomes.append(list(rows))
        except HistoryFormatError as exc:  # a header the reader refuses: both must refuse it
            outcomes.append(str(exc))
    fast, slow = outcomes
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
    else:
        assert_same(fast, slow)


def test_typical_exports_take_the_fast_path_and_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows clubs write are accepted without the models (else the path is not fast)."""
    text = (
        "\ufeffmember_id,site_id,occurred_at,kind,device_id\r\n"
        "m-1042,north,2024-03-01T18:30:00+01:00,gate_entry,g7\r\n"
        "m-1042,north,2024-03-01T17:45:10Z,gate_exit,\r\n"
        "m-2210,south,2024-03-01 17:02:00.250+00:00,entry_denied,g2\r\n"
        '"m-2210","south","2024-03-01T17:02:00+00:00","locker_open",""\r\n'
    )
    calls: list[object] = []
    original = reference_path.access_row

    def counted(*a: Any) -> Any:
        calls.append(a)
        return original(*a)

    monkeypatch.setattr(reference_path, "access_row", counted)
    fast = list(read_history(io.BytesIO(text.encode()), T))
    assert calls == [] and len(fast) == 4
    slow = list(read_history(io.BytesIO(text.encode()), T, reference=True))
    assert len(calls) == 4  # the reference path does use the models
    assert_same(fast, slow)
    # An export of local times, read in the zone named: the fast path too.
    local = "member_id,site_id,occurred_at,kind\nm-1042,north,2024-03-01T18:30:00,gate_entry\n"
    berlin = Zones(ZoneInfo("Europe/Berlin"), {"north": ZoneInfo("Europe/Berlin")})
    fast = list(read_history(io.BytesIO(local.encode()), T, zones=berlin))
    assert len(calls) == 4 and isinstance(fast[0][1], AccessEvent)
    assert_same(
        fast, list(read_history(io.BytesIO(local.encode()), T, reference=True, zones=berlin))
    )
    members = (
        "member_id,occurred_at,event,reason,note\n"
        "m1,2024-05-31T23:59:00+02:00,cancelled,price,moved away\n"
    )
    fast, slow = both(members)
    assert isinstance(fast[0][1], MembershipEvent) and fast[0][1].reason == "price"
    assert_same(fast, slow)


def test_both_paths_agree_on_an_over_long_field() -> None:
    limit = csv.field_size_limit()
    try:
        csv.field_size_limit(40)
        text = "member_id,site_id,occurred_at,kind\n" + "\n".join(
            [
                f"{'m' * 50},s1,2024-03-01T17:30:00Z,gate_entry",
                "m1,s1,2024-03-01T17:30:00Z,gate_entry",
                f'"{"m" * 50}",s1,2024-03-01T17:30:00Z,gate_entry',
                f"m2,s1,2024-03-01T17:30:00Z,gate_entry,{'x' * 45}",
            ]
        )
        fast, slow = both(text)
        assert [getattr(r, "reason", "ok") for _, r in fast] == [
            "malformed_csv",
            "ok",
            "malformed_csv",
            "malformed_csv",
        ]
        assert_same(fast, slow)
    finally:
        csv.field_size_limit(limit)


def test_both_paths_agree_on_records_spanning_lines() -> None:
    text = (
        "member_id,site_id,occurred_at,kind\r\n"
        'm1,"north\r\nwing",2024-03-01T17:30:00Z,gate_entry\r\n'  # a valid id? no: CR LF in it
        'm2,"s1",2024-03-01T17:30:00Z,"gate_\nexit"\n'
        "m3,s1,2024-03-01T17:30:00Z,gate_entry\n"
        'm4,"s1,2024-03-01T17:30:00Z,gate_entry\n'  # unbalanced: swallows to the end
        "m5,s1,2024-03-01T17:30:00Z,gate_entry\n"
    )
    fast, slow = both(text)
    assert [n for n, _ in fast] == [2, 4, 6, 7]
    assert "spans lines 7-8" in str(fast[-1][1])
    assert_same(fast, slow)


def test_a_tenant_or_origin_the_fast_path_cannot_vouch_for_goes_to_the_models() -> None:
    text = "member_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T17:30:00Z,gate_entry\n"
    for tenant, origin in (("a b", "import"), ("ü", "import"), (T, "o" * 65), (T, "a\tb")):
        fast, slow = both(text, tenant, origin=origin)
        assert_same(fast, slow)


# --- the pieces ------------------------------------------------------------------------------


@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=30))
def test_the_event_id_prefix_makes_csv_event_id(tenant: str, member: str, at: str) -> None:
    tenant, member = tenant.replace("\ud800", ""), member.replace("\ud800", "")
    try:
        expected = csv_event_id(tenant, "membership", member, at, "joined")
    except UnicodeEncodeError:
        return  # lone surrogates: neither path builds an id of them
    prefix = fast_path.event_id_prefix(tenant, "membership")
    assert uuid5(prefix, f"{member}\x1f{at}\x1fjoined".encode()) == expected


shaped = st.builds(
    lambda chars, n: "".join(chars)[:n],
    st.lists(st.sampled_from("0123456789-:T+Z W."), min_size=25, max_size=25),
    st.sampled_from([20, 25]),
)


@settings(max_examples=500)
@given(
    st.one_of(
        shaped,
        st.builds(
            lambda d, off: d.isoformat(timespec="seconds") + off,
            st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
            st.sampled_from(["Z", "+00:00", "-00:00", "+01:00"]),
        ),
        st.builds(
            lambda d, m: d.replace(tzinfo=timezone(timedelta(minutes=m))).isoformat(),
            st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30)),
            st.integers(-1439, 1439),
        ),
    )
)
def test_aware_gives_the_time_and_its_utc_isoformat(text: str) -> None:
    """What ``aware`` passes is what the models take, with the UTC form event ids are made of;
    what it refuses the reference decides on."""
    got = fast_path.aware(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        assert got is None
        return
    if at.tzinfo is None or not EARLIEST <= at < LATEST:
        assert got is None
        return
    assert got == (at, at.astimezone(UTC).isoformat())
    assert type(got[0].tzinfo) is type(at.tzinfo)


def test_proven_id_never_accepts_what_the_schema_refuses() -> None:
    """Every one-character id the check lets through, the model accepts too."""
    for code in range(0x3000):
        c = chr(code)
        if fast_path.proven_id(c):
            AccessEvent(
                event_id="e",
                tenant_id=c,
                member_id=c * 128,
                site_id=c,
                kind="gate_entry",
                occurred_at=datetime(2024, 1, 1, tzinfo=UTC),
            )


@pytest.mark.parametrize("tenant", [T, "a b"])  # the fast path, and the models for every row
@pytest.mark.parametrize("where", [0, 1, 20_000])
def test_not_utf8_anywhere_is_a_format_error_on_both_paths(tenant: str, where: int) -> None:
    good = b"m1,s1,2024-03-01T17:30:00Z,gate_entry\n"
    data = b"member_id,site_id,occurred_at,kind\n" + good * where + b"m\xff,s1,x,gate_entry\n"
    if where == 0:
        data = b"member_id,site_\xffid,occurred_at,kind\n" + good
    for reference in (False, True):
        with pytest.raises(HistoryFormatError, match="not UTF-8"):
            list(read_history(io.BytesIO(data), tenant, reference=reference))


def test_a_text_stream_with_a_byte_order_mark() -> None:
    text = "\ufeffmember_id,site_id,occurred_at,kind\nm1,s1,2024-03-01T17:30:00Z,gate_entry\n"
    fast, slow = both(text)
    assert len(fast) == 1 and isinstance(fast[0][1], AccessEvent)
    assert_same(fast, slow)


@pytest.mark.parametrize("newline", ["\n", "\r", None])
def test_line_ends_inside_a_line_of_a_text_stream(newline: str | None) -> None:
    """A text stream split on one kind of line end hands csv lines with the others inside."""
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,2024-03-01T17:30:00Z,gate_entry\r"
        "m2,s1\r\n,2024-03-01T17:30:00Z,gate_entry\n"
        "m3,s1,2024-03-01T17:30:00Z,gate_exit\r\n"
    )
    rows = []
    for reference in (False, True):
        rows.append(list(read_history(io.StringIO(text, newline=newline), T, reference=reference)))
    assert_same(*rows)
    assert rows[0]


def test_the_events_of_a_file_share_one_field_set_and_a_copy_does_not_touch_it() -> None:
    """The fast path gives a file's events one ``__pydantic_fields_set__`` (half an event's
    memory when each had its own). Frozen events cannot add to it, and a copy with updates
    extends its own copy: the other events still say the fields they were given."""
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,north,2024-03-01T18:30:00+01:00,gate_entry\n"
        "m2,north,2024-03-01T18:31:00+01:00,gate_exit\n"
    )
    (_, a), (_, b) = list(read_history(io.BytesIO(text.encode()), T))
    assert isinstance(a, AccessEvent) and isinstance(b, AccessEvent)
    assert a.model_fields_set is b.model_fields_set
    assert a.occurred_at.tzinfo is b.occurred_at.tzinfo  # one offset object, +01:00
    given = set(a.model_fields_set)
    with pytest.raises(ValidationError):
        a.device_id = "g1"  # type: ignore[misc]  # frozen
    copied = a.model_copy(update={"device_id": "g1"})
    assert copied.device_id == "g1" and copied.model_fields_set is not a.model_fields_set
    assert a.model_fields_set == given and b.model_fields_set == given
    assert b.model_dump(exclude_unset=True) == {k: getattr(b, k) for k in given}
