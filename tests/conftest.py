"""Session fixtures: one real local broker and one real PostgreSQL database per test session.

PostgreSQL is the machine's own on 127.0.0.1:5432 (trust auth); each session creates its
own database and drops it at the end. ``LAPSE_TEST_PG`` overrides the server URL.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from plumbing.broker import LocalBroker
from plumbing.database import create_engine, session_factory
from plumbing.settings import Settings
from records.migrate import upgrade

PG_SERVER = os.environ.get("LAPSE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as b:
        yield b


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_from(template: str) -> str:
    name = f"lapse_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _url(name: str) -> str:
    return f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database migrated to head and then left unconnected, to clone test databases from."""
    name = f"lapse_test_{os.getpid()}_template"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))

    async def migrate() -> None:
        engine = create_engine(_url(name))
        await upgrade(engine)
        await engine.dispose()

    try:
        asyncio.run(migrate())
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url(pg_template: str) -> Iterator[str]:
    """The session's shared database (tests keep apart by tenant)."""
    name = asyncio.run(_create_from(pg_template))
    yield _url(name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest_asyncio.fixture
async def fresh_pg_url(pg_template: str) -> AsyncIterator[str]:
    """A database of the test's own, for tests whose detector must see only their data."""
    name = await _create_from(pg_template)
    yield _url(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture(scope="session")
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(pg_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def settings(pg_url: str, broker: LocalBroker) -> Settings:
    """Settings for one test: own topics and consumer group on the shared broker."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        database_url=pg_url,
        kafka_bootstrap=broker.bootstrap,
        kafka_idempotence="off",
        kafka_request_timeout_ms=2000,
        ingest_ack_timeout_seconds=2.5,
        events_topic=f"lapse.member-events.v1.{tag}",
        alerts_topic=f"lapse.alerts.v1.{tag}",
        dlq_topic=f"lapse.dlq.v1.{tag}",
        detector_group=f"lapse-detector-{tag}",
        topic_partitions=4,
        webhook_allow_private=True,
    )


@pytest.fixture
def tenant() -> str:
    """A tenant id of its own per test, so tests sharing the database stay apart."""
    return f"club-{uuid.uuid4().hex[:8]}"
