"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware in and out; stored as UTC (SQLite drops offsets, so we restore them)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def timestamp_from_micros(expr: str) -> str:
    """SQL for the ``timestamptz`` that ``expr`` (microseconds since the epoch) stands for.

    Bulk statements send times as a JSON array of such integers, cheaper to encode than
    asyncpg's ``timestamptz[]`` (~0.1 against ~1.1 µs a time). Whole days of 86,400 s first,
    then the microseconds left: ``epoch + r * interval '1 microsecond'`` multiplies in
    ``float8``, which from 2^53 µs (past 2255, or before 1685) rounds a time that is not
    whole seconds; split, both products stay far below 2^53, exact over all of
    ``timestamptz``'s range. ``'86400 seconds'``, not ``'1 day'``: a day added to a
    ``timestamptz`` is a day of the session's time zone (23 or 25 hours across a change of
    summer time); seconds are seconds.
    """
    return (
        f"timestamptz 'epoch' + ({expr}::bigint / 86400000000) * interval '86400 seconds'"
        f" + ({expr}::bigint % 86400000000) * interval '1 microsecond'"
    )
