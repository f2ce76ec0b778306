"""The alerts outbox insert: one statement on PostgreSQL, the same rows as row by row.

``add_alerts`` writes all of a checkpoint's alerts in one ``INSERT … SELECT FROM ROWS FROM``
on PostgreSQL (asyncpg) and executes one statement for many rows elsewhere (SQLite, the demo).
The rows must be the same column for column, the payload the JSON the relay and the api read.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Text, cast, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.delivery import alert_body
from api.relay import record_headers, record_key, record_value
from plumbing.database import create_engine, session_factory
from records.migrate import upgrade
from records.outbox import _insert_alerts, _insert_alerts_many, add_alerts, release_alerts
from records.tables import AlertRow
from schemas import Alert, Reason

T0 = datetime(2026, 3, 2, 7, 30, 15, 123456, tzinfo=UTC)


def make_alert(
    tenant: str,
    member: str = "m-1",
    *,
    type_: str = "at_risk",
    site: str | None = "site-1",
    severity: str = "medium",
    figures: dict[str, float | int | str | None] | None = None,
    raised_at: datetime = T0,
    alert_id: str | None = None,
) -> Alert:
    return Alert.model_validate(
        {
            "alert_id": alert_id or str(uuid.uuid4()),
            "episode_id": str(uuid.uuid4()),
            "type": type_,
            "tenant_id": tenant,
            "member_id": member,
            "site_id": site,
            "severity": severity,
            "policy": "cadence",
            "reasons": [
                Reason(
                    code="absent_beyond_usual",
                    figures=figures
                    if figures is not None
                    else {
                        "visits_last_4_weeks": 3,
                        "days_absent": 12.5,
                        "usual_gap_days": 3.3,
                        "usual_visits_4_weeks": 8.5,
                        "tenure_days": 400,
                    },
                )
            ],
            "deadline": raised_at - timedelta(days=2, microseconds=7),
            "raised_at": raised_at,
        }
    )


def variety(tenant: str) -> list[Alert]:
    """Alerts of every shape the detector raises, and a few it might."""
    return [
        make_alert(tenant),
        make_alert(tenant, "m-2", site=None, type_="escalated", severity="high"),
        make_alert(tenant, "Zoë Ørsted-山田 😀", type_="recovered", severity="low", figures={}),
        make_alert(tenant, 'quote" back\\slash\ttab', type_="churned", severity="high"),
        make_alert(
            tenant,
            "m-5",
            type_="win_back_due",
            severity="low",
            figures={
                "cancel_reason": "moved",
                "days_since_cancelled": 90.0,
                "tenure_days": 731,
                "visits_per_month_before_leaving": None,
                "needs_consent": 1,
            },
        ),
        make_alert(
            tenant,
            "m-6",
            type_="win_back_due",
            severity="low",
            site=None,
            figures={"cancel_reason": "café ☕", "days_since_cancelled": 1e-7, "big": 1e16},
        ),
        # Not UTC: the payload keeps the offset, ``raised_at`` the instant.
        make_alert(
            tenant, "m-7", raised_at=datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=2)))
        ),
    ]


async def stored(session: AsyncSession, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Every column of these alerts' rows as SQLAlchemy reads them, by alert id."""
    table = AlertRow.__table__
    rows = await session.execute(select(table).where(table.c.alert_id.in_(ids)))
    return {r.alert_id: tuple(r) for r in rows}


async def raw_payloads(session: AsyncSession, ids: list[str]) -> dict[str, str]:
    rows = await session.execute(
        select(AlertRow.alert_id, cast(AlertRow.payload, Text)).where(AlertRow.alert_id.in_(ids))
    )
    return {a: p for a, p in rows}


def expected(alert: Alert, created_at: datetime, withheld: bool = False) -> tuple[Any, ...]:
    """The known-good row: the columns, the payload as ``model_dump(mode="json")``; a
    withheld alert is stored as already fanned out and relayed (never sent)."""
    return (
        alert.alert_id,
        alert.tenant_id,
        alert.member_id,
        alert.site_id,
        alert.episode_id,
        alert.type,
        alert.severity,
        alert.raised_at,
        alert.model_dump(mode="json"),
        created_at,
        withheld,
        created_at if withheld else None,
        withheld,
    )


def test_expected_row_names_every_column() -> None:
    names = [c.name for c in AlertRow.__table__.columns]
    assert names == [
        "alert_id",
        "tenant_id",
        "member_id",
        "site_id",
        "episode_id",
        "type",
        "severity",
        "raised_at",
        "payload",
        "created_at",
        "fanned_out",
        "relayed_at",
        "withheld",
    ]


async def test_withheld_alerts_are_stored_unsent_and_released_once(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    alerts = variety(tenant)
    ids = [a.alert_id for a in alerts]
    now = datetime.now(UTC)
    for insert_rows in (_insert_alerts_many, _insert_alerts):
        async with sessions() as session:
            await insert_rows(session, alerts, now, True)
            assert await stored(session, ids) == {
                a.alert_id: expected(a, now, True) for a in alerts
            }
            await release_alerts(session, ids[:2])
            after = await stored(session, ids)
            # Released: unsent again, so fan-out and the relay take it; the others stay held.
            assert [after[i][-3:] for i in ids[:2]] == [(False, None, False)] * 2
            assert [after[i][-3:] for i in ids[2:]] == [(True, now, True)] * (len(ids) - 2)
            # A second release (or of an alert never withheld) changes nothing.
            await session.execute(
                update(AlertRow).values(fanned_out=True).where(AlertRow.alert_id == ids[0])
            )
            await release_alerts(session, ids[:1])
            assert (await stored(session, ids[:1]))[ids[0]][-3:] == (True, None, False)
            await session.rollback()


async def test_one_statement_writes_the_rows_executemany_writes(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    alerts = variety(tenant)
    ids = [a.alert_id for a in alerts]
    now = datetime.now(UTC)
    async with sessions() as session:
        await _insert_alerts_many(session, alerts, now)
        old = await stored(session, ids)
        old_raw = await raw_payloads(session, ids)
        old_sql = (await session.execute(_SQL_READS, {"ids": ids})).all()
        await session.rollback()
        await _insert_alerts(session, alerts, now)
        new = await stored(session, ids)
        new_raw = await raw_payloads(session, ids)
        new_sql = (await session.execute(_SQL_READS, {"ids": ids})).all()
        await session.rollback()
    assert len(new) == len(alerts)
    assert new == old
    assert new == {a.alert_id: expected(a, now) for a in alerts}
    # The same string for the relay's ce_time header, the same bodies downstream.
    for a in alerts:
        payload = new[a.alert_id][8]
        assert (
            payload["raised_at"]
            == old[a.alert_id][8]["raised_at"]
            == a.model_dump(mode="json")["raised_at"]
        )
        assert record_headers(payload) == record_headers(old[a.alert_id][8])
        assert record_key(payload) == record_key(old[a.alert_id][8])
        assert (
            record_value(payload)
            == record_value(old[a.alert_id][8])
            == a.model_dump_json().encode()
        )
        assert alert_body(payload) == alert_body(old[a.alert_id][8])
    assert new[alerts[6].alert_id][8]["raised_at"] == "2026-03-02T09:00:00+02:00"
    assert new[alerts[6].alert_id][7] == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert new[alerts[0].alert_id][8]["raised_at"] == "2026-03-02T07:30:15.123456Z"
    # What SQL reads of the payload (the api's reason filter, ->>) is the same too.
    assert sorted(new_sql) == sorted(old_sql)
    assert len(new_sql) == len(alerts)
    # The text stored differs only in spelling: compact, non-ASCII unescaped.
    for a in alerts:
        assert new_raw[a.alert_id] == a.model_dump_json()
        assert json.loads(new_raw[a.alert_id]) == json.loads(old_raw[a.alert_id])


_SQL_READS = text(
    "SELECT alert_id, payload ->> 'member_id', payload ->> 'site_id', payload ->> 'raised_at',"
    " (payload ->> 'raised_at')::timestamptz, payload -> 'reasons' -> 0 ->> 'code',"
    # A number as a number: its spelling differs below 1e-4 (1e-07 and 1e-7).
    " (SELECT string_agg(key || '=' || CASE json_typeof(value) WHEN 'number'"
    "  THEN (value::text::float8)::text ELSE value #>> '{}' END, ',' ORDER BY key)"
    "  FROM json_each(payload -> 'reasons' -> 0 -> 'figures'))"
    " FROM alerts WHERE alert_id = ANY(:ids)"
)


async def test_add_alerts_on_postgresql_takes_the_one_statement(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    alerts = variety(tenant)
    ids = [a.alert_id for a in alerts]
    before = datetime.now(UTC)
    async with sessions() as session:
        await add_alerts(session, (a for a in alerts))  # any iterable, read once
        await session.commit()
    after = datetime.now(UTC)
    async with sessions() as session:
        rows = await stored(session, ids)
        raw = await raw_payloads(session, ids)
    created = {r[9] for r in rows.values()}
    assert len(created) == 1
    (created_at,) = created
    assert before <= created_at <= after
    assert rows == {a.alert_id: expected(a, created_at) for a in alerts}
    # Verbatim ``model_dump_json`` text: the json.dumps of the row-by-row path has spaces.
    assert raw == {a.alert_id: a.model_dump_json() for a in alerts}


async def test_a_figure_that_is_not_a_number_is_stored_as_null(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    """As the relay and webhooks send it (``model_dump_json``); ``NaN`` is not JSON."""
    alert = make_alert(tenant, figures={"usual_gap_days": float("nan"), "x": float("inf")})
    async with sessions() as session:
        await add_alerts(session, [alert])
        await session.commit()
        row = (await stored(session, [alert.alert_id]))[alert.alert_id]
    assert row[8]["reasons"][0]["figures"] == {"usual_gap_days": None, "x": None}
    assert record_value(row[8]) == alert.model_dump_json().encode()


async def test_raised_at_to_the_microsecond(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    """``raised_at`` travels as microseconds since the epoch: exact, before 1970 too."""
    rng = random.Random(7)
    start, span = datetime(1900, 1, 1, tzinfo=UTC), 300 * 365 * 86400 * 10**6
    times = [start + timedelta(microseconds=rng.randrange(span)) for _ in range(500)]
    times += [
        datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=1),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    alerts = [make_alert(tenant, f"m-{i}", raised_at=t) for i, t in enumerate(times)]
    now = datetime.now(UTC)
    async with sessions() as session:
        await _insert_alerts(session, alerts, now)
        rows = await stored(session, [a.alert_id for a in alerts])
        await session.rollback()
    assert [rows[a.alert_id][7] for a in alerts] == times
    assert rows == {a.alert_id: expected(a, now) for a in alerts}


async def test_times_do_not_depend_on_the_session_time_zone(
    sessions: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    """``raised_at`` is parsed from the payload's text by the server: its offset decides."""
    alerts = variety(tenant)
    now = datetime.now(UTC)
    async with sessions() as session:
        await session.execute(text("SET LOCAL TimeZone = 'Pacific/Chatham'"))
        await _insert_alerts(session, alerts, now)
        await session.execute(text("SET LOCAL TimeZone = 'UTC'"))
        rows = await stored(session, [a.alert_id for a in alerts])
        await session.rollback()
    assert rows == {a.alert_id: expected(a, now) for a in alerts}


@pytest.fixture(params=["postgresql", "sqlite"])
def dialect(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest_asyncio.fixture
async def db(
    dialect: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    if dialect == "postgresql":
        yield request.getfixturevalue("sessions")
        return
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lapse.db'}")
    try:
        await upgrade(engine)
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def test_rows_on_either_database(db: async_sessionmaker[AsyncSession], tenant: str) -> None:
    alerts = variety(tenant)
    ids = [a.alert_id for a in alerts]
    async with db() as session:
        await add_alerts(session, alerts)
        await session.commit()
        rows = await stored(session, ids)
    created_at = next(iter(rows.values()))[9]
    assert rows == {a.alert_id: expected(a, created_at) for a in alerts}


async def test_duplicates_within_and_across_calls_write_one_row(
    db: async_sessionmaker[AsyncSession], tenant: str
) -> None:
    a = make_alert(tenant, "m-a")
    b = make_alert(tenant, "m-b", site=None)
    # Same id, other content: the first of a call is kept, a later call changes nothing.
    a_again = make_alert(tenant, "m-a", severity="high", alert_id=a.alert_id)
    c = make_alert(tenant, "m-c")
    ids = [a.alert_id, b.alert_id, c.alert_id]
    async with db() as session:
        await add_alerts(session, [a, b, a_again, a, b])
        await session.commit()
        first = await stored(session, ids)
        assert set(first) == {a.alert_id, b.alert_id}
        created_at = first[a.alert_id][9]
        assert first == {x.alert_id: expected(x, created_at) for x in (a, b)}

        await add_alerts(session, [a_again, c, b, c])
        await session.commit()
        second = await stored(session, ids)
        count = await session.scalar(
            select(text("count(*)"))
            .select_from(AlertRow.__table__)
            .where(AlertRow.tenant_id == tenant)
        )
    assert count == 3
    assert second[a.alert_id] == first[a.alert_id]  # not a_again, nor a newer created_at
    assert second[b.alert_id] == first[b.alert_id]
    assert second[c.alert_id] == expected(c, second[c.alert_id][9])
    assert second[c.alert_id][9] > created_at


async def test_no_alerts_no_statement(db: async_sessionmaker[AsyncSession], tenant: str) -> None:
    async with db() as session:
        await add_alerts(session, [])
        await add_alerts(session, iter(()))
        assert not session.in_transaction()  # nothing was executed, not even a BEGIN
