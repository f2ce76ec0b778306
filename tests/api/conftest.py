"""Fixtures for the api tests (helpers live in ``support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from plumbing.settings import Settings
from tests.api.support import Receiver, make_key, serve


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    async with serve(rec.app()) as base:
        rec.url = f"{base}/hook"
        yield rec


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session's settings with the alerts relay off: only the relay tests turn it on
    (on the shared database every api would otherwise publish every test's alerts)."""
    return settings.model_copy(update={"alerts_relay": False})


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    """Short retries, polls and timeouts so delivery tests take a second or two."""
    return settings.model_copy(
        update={
            "webhook_retry_schedule": [0.2, 0.4],
            "delivery_poll_seconds": 0.05,
            "webhook_connect_timeout_seconds": 2.0,
            "webhook_read_timeout_seconds": 2.0,
        }
    )


@pytest_asyncio.fixture
async def key(sessions: async_sessionmaker[AsyncSession], tenant: str) -> str:
    return await make_key(sessions, tenant)
