"""INSERT … ON CONFLICT for the two databases Lapse runs on (PostgreSQL, SQLite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's ``insert`` (it has ``on_conflict_do_nothing`` / ``_do_update``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
