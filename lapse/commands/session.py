"""The database session most commands open: why a helper, because each of them migrates
first (a command run on a fresh install must not fail on a missing table) and disposes of
the engine after, whatever happens in between."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from records.migrate import upgrade


@asynccontextmanager
async def migrated_session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on ``LAPSE_DATABASE_URL`` brought to the latest revision."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()
