"""The time columns of ``member_states`` (``last_visit``, ``deadline``) on their way out.

The rows hold them as microseconds since the epoch (``detector.core.rows.micros``), sent to
PostgreSQL as JSON arrays of integers and made timestamps again there, to other databases as
datetimes. Either way the database must hold what ``datetime.fromtimestamp(t, UTC)`` gives:
the row of a time written the way before (asyncpg's ``timestamptz[]`` of those datetimes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import MemberState
from detector.core.rows import StateRows, micros
from detector.core.store import MemberStore
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade
from records.tables import MemberStateRow
from schemas.units import DAY

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def fromtimestamp_micros(t: float) -> int:
    return (datetime.fromtimestamp(t, UTC) - EPOCH) // MICROSECOND


# Times ``datetime`` holds (years 1 to 9999), and ones near the edges of exactness: fractions
# whose millionfold is half a microsecond (rounded half to even), times past 2^53 µs (2255).
@given(st.floats(-62135596800.0, 253402300799.0))
@example(0.0000005)
@example(0.0000015)
@example(0.0000025)
@example(-0.0000005)
@example(-0.0000015)
@example(1.0000005)
@example(-1.0000025)
@example(1700000000.0000005)
@example(1700000000.9999996)
@example(-0.9999996)
@example(9007199254.740993)
@example(-9007199254.740993)
@example(253402300799.99997)
def test_micros_are_the_microseconds_of_fromtimestamp(t: float) -> None:
    assert micros(t) == fromtimestamp_micros(t)
    assert type(micros(t)) is int


# Fractions of a second whose millionfold is near half a microsecond, ties among them.
@given(st.integers(-(10**10), 2 * 10**11), st.integers(-(10**6), 10**6), st.integers(-2, 2))
def test_micros_round_half_microseconds_as_fromtimestamp(s: int, us: int, off: int) -> None:
    for t in (s + (us + 0.5) / 1e6, s + (us + 0.5 + off * 2**-20) / 1e6, (us + 0.5) / 1e6):
        if -62135596800.0 <= t < 253402300799.0:
            assert micros(t) == fromtimestamp_micros(t)


def test_micros_of_no_time_and_beyond_datetime() -> None:
    assert micros(None) is None and micros(math.nan) is None
    assert micros(1700000000) == 1700000000 * 10**6  # an int (a state read from JSON)
    # Past the year 9999 exact as well (datetime cannot hold them; PostgreSQL can).
    assert micros(3e11) == 3 * 10**17
    assert micros(300000000000.25) == 300000000000250000
    assert micros(-1e11 - 0.5) == -100000000000500000
    assert micros(1e20) == 10**26 and micros(-(2.0**70)) == -(2**70) * 10**6
    with pytest.raises(OverflowError):  # as ``datetime.fromtimestamp`` raises
        micros(math.inf)


YEAR_9000 = (datetime(9000, 1, 1, tzinfo=UTC) - EPOCH).total_seconds()
# What a member's last visit or deadline may be: whole seconds (most), fractions (half
# microseconds rounded to even among them), none, before 1970 and 1900, near the contract's
# end (9000) plus a deadline's two caps, fractions past 2^53 µs, where ``float8`` arithmetic
# (``bigint * interval``) would round.
TIMES: list[float | None] = [
    1700000000.0,
    1700003601.0,
    None,
    1700000000.123456,
    1700000000.1234567,
    0.0000005,
    0.0000015,
    1.0000005,
    1700000000.0000005,
    -0.5,
    -1.0000025,
    -0.0000015,
    -86400.75,
    -2208988800.0,  # 1900-01-01
    -2208988800.000001,
    -1e10,  # 1653
    -1e10 - 0.3,
    9007199254.740993,  # past 2255: not a multiple of 2 µs
    12345678901.234567,
    -9007199254.740993,
    YEAR_9000 + 120 * DAY,
    YEAR_9000 + 120 * DAY + 0.123,
    YEAR_9000 - 1.5,
    253402300799.0,  # 9999-12-31 23:59:59
]


def checkpoint_of(times: Sequence[float | None]) -> Checkpoint:
    """The rows of one member per time: its last visit that time, its deadline the list's
    reverse (as the runner takes them, from a member store)."""
    store = MemberStore()
    slots = [
        store.put(MemberState("club", f"m{i:02}", last_visit=t, deadline=times[-1 - i]))
        for i, t in enumerate(times)
    ]
    table = StateRows()
    table.add(store, slots, 0)
    return Checkpoint(table=table)


def expected(times: Sequence[float | None]) -> list[tuple[str, datetime | None, datetime | None]]:
    def at(t: float | None) -> datetime | None:
        return None if t is None else datetime.fromtimestamp(t, UTC)

    return [(f"m{i:02}", at(t), at(times[-1 - i])) for i, t in enumerate(times)]


async def read_times(engine: AsyncEngine) -> list[tuple[str, datetime | None, datetime | None]]:
    async with session_factory(engine)() as db:
        rows = await db.execute(
            select(MemberStateRow.member_id, MemberStateRow.last_visit, MemberStateRow.deadline)
            .where(MemberStateRow.tenant_id == "club")
            .order_by(MemberStateRow.member_id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def in_new_york(url: str) -> None:
    """The database's sessions in a time zone with summer time (the times must not care)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET timezone = %L',"
                    " current_database(), 'America/New_York'); END $$"
                )
            )
    finally:
        await engine.dispose()


async def test_postgres_keeps_the_datetimes_of_the_times(fresh_pg_url: str) -> None:
    await in_new_york(fresh_pg_url)
    engine = create_engine(fresh_pg_url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW timezone")) == "America/New_York"
        checkpoints = CheckpointStore(session_factory(engine), "g", "t")
        checkpoint = checkpoint_of(TIMES)
        await checkpoints.save(checkpoint)
        assert await read_times(engine) == expected(TIMES)
        # Half-second times over the same members: each row replaced exactly.
        later = [None if t is None else t + 0.5 for t in TIMES]
        checkpoint = checkpoint_of(later)
        await checkpoints.save(checkpoint)
        assert await read_times(engine) == expected(later)
    finally:
        await engine.dispose()


async def test_postgres_keeps_times_past_the_year_9999(fresh_pg_url: str) -> None:
    """``datetime`` ends with 9999 (the way before, such a deadline failed the checkpoint
    being taken); ``timestamptz`` goes on to 294276: the row holds the time exactly. Beyond
    what its microseconds hold, the save fails rather than write another time."""
    far = [3e11, 300000000000.25, 9.2e12 + 0.5, 9223372036854.75]  # 11476 to 294247
    engine = create_engine(fresh_pg_url)
    try:
        checkpoints = CheckpointStore(session_factory(engine), "g", "t")
        checkpoint = checkpoint_of(far)
        await checkpoints.save(checkpoint)
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT extract(epoch FROM last_visit), extract(epoch FROM deadline),"
                    " last_visit::text FROM member_states ORDER BY member_id"
                )
            )
            got = [tuple(r) for r in rows]
        seconds = [Decimal("3e11"), Decimal("300000000000.25"), Decimal("9200000000000.5")]
        seconds.append(Decimal("9223372036854.75"))
        assert [(lv, dl) for lv, dl, _ in got] == list(zip(seconds, seconds[::-1], strict=True))
        # 3e11 s: 23 Gregorian cycles of 400 years (146,097 days) and 111,991 days and 5:20 h.
        assert date(1970, 1, 1) + timedelta(days=111991) == date(2276, 8, 15)
        assert got[0][2] == "11476-08-15 05:20:00+00"
        for t in (1e13, -1e13):  # past bigint microseconds: no row, an error
            checkpoint = checkpoint_of([t])
            with pytest.raises(DBAPIError, match="out of range"):
                await checkpoints.save(checkpoint)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM member_states")) == len(far)
    finally:
        await engine.dispose()


async def test_sqlite_keeps_the_datetimes_of_the_times(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lapse.db'}")
    try:
        await upgrade(engine)
        checkpoints = CheckpointStore(session_factory(engine), "g", "t")
        checkpoint = checkpoint_of(TIMES)
        await checkpoints.save(checkpoint)
        assert await read_times(engine) == expected(TIMES)
        # Past 9999 a datetime column cannot hold it: the save fails, as it did before.
        checkpoint = checkpoint_of([3e11])
        with pytest.raises(OverflowError):
            await checkpoints.save(checkpoint)
    finally:
        await engine.dispose()
