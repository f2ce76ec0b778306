"""Alerts into the ``alerts`` table, which is also the outbox webhook delivery reads.

Alert ids are deterministic, so inserting one twice (a replayed batch after a crash)
is a no-op rather than a second alert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from operator import attrgetter

from pydantic import TypeAdapter
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from records.tables import AlertRow
from records.types import timestamp_from_micros as _ts
from records.upsert import insert
from schemas import Alert


def alert_values(
    alert: Alert, created_at: datetime, *, withheld: bool = False
) -> dict[str, object]:
    return {
        "alert_id": alert.alert_id,
        "tenant_id": alert.tenant_id,
        "member_id": alert.member_id,
        "site_id": alert.site_id,
        "episode_id": alert.episode_id,
        "type": alert.type,
        "severity": alert.severity,
        "raised_at": alert.raised_at,
        "payload": alert.model_dump(mode="json"),
        "created_at": created_at,
        # Withheld: stored for the page, calibration and outcomes, never sent (neither fanned
        # out to webhooks nor relayed) unless ``release_alerts`` releases it.
        "fanned_out": withheld,
        "relayed_at": created_at if withheld else None,
        "withheld": withheld,
    }


async def add_alerts(
    session: AsyncSession, alerts: Iterable[Alert], *, withheld: bool = False
) -> None:
    """Stage alerts in the caller's transaction; existing ids are left untouched (and of
    two alerts with one id in ``alerts``, the first is kept). ``withheld`` alerts are stored
    and not sent: an onboarding's history (``detector.onboarding``)."""
    now = datetime.now(UTC)
    batch = list(alerts)
    if not batch:
        return
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        await _insert_alerts(session, batch, now, withheld)
    else:
        await _insert_alerts_many(session, batch, now, withheld)


async def release_alerts(session: AsyncSession, alert_ids: Iterable[str]) -> None:
    """Send withheld alerts after all, once: an alert already released (or never withheld)
    is left as it is, so a second call never sends one twice."""
    ids = list(alert_ids)
    if ids:
        await session.execute(
            update(AlertRow)
            .where(AlertRow.alert_id.in_(ids), AlertRow.withheld.is_(True))
            .values(fanned_out=False, relayed_at=None, withheld=False)
        )


async def _insert_alerts_many(
    session: AsyncSession, alerts: list[Alert], now: datetime, withheld: bool = False
) -> None:
    """Elsewhere (SQLite: the demo): one statement executed for many rows."""
    values = [alert_values(a, now, withheld=withheld) for a in alerts]
    # Executed for many rows: compiled once and cached, unlike a multi-row VALUES.
    stmt = insert(session, AlertRow.__table__).on_conflict_do_nothing()
    await session.execute(stmt, values)


# All the alerts in one statement, as ``detector.checkpoint`` writes member states: each
# column one parameter, a JSON array of its values that ``ROWS FROM`` takes apart again, the
# i-th element of each making the i-th row. ``raised_at`` travels as microseconds since the
# epoch (``timestamp_from_micros``). The payloads are one array of each alert's
# ``model_dump_json()`` (one serialiser call for all), each element's text kept verbatim
# (``json_array_elements`` on the ``json`` type). Once parsed, a payload is the JSON
# ``json.dumps(alert.model_dump(mode="json"))`` gives: it is spelt compact, non-ASCII
# unescaped, 1e-7 not 1e-07, and a NaN or infinite figure is null, as the relay and webhooks
# send it (``NaN`` is no JSON PostgreSQL accepts).
# DO NOTHING also skips a second row of one id in the same statement: the first is kept.
_INSERT_ALERTS = f"""
INSERT INTO {AlertRow.__tablename__} (alert_id, tenant_id, member_id, site_id, episode_id, type,
    severity, raised_at, payload, created_at, fanned_out, relayed_at, withheld)
SELECT a, t, m, s, e, ty, sv, {_ts("r")}, p, $10::timestamptz, $11::boolean,
    CASE WHEN $11::boolean THEN $10::timestamptz END, $11::boolean
FROM ROWS FROM (json_array_elements_text($1::text::json), json_array_elements_text($2::text::json),
    json_array_elements_text($3::text::json), json_array_elements_text($4::text::json),
    json_array_elements_text($5::text::json), json_array_elements_text($6::text::json),
    json_array_elements_text($7::text::json), json_array_elements_text($8::text::json),
    json_array_elements($9::text::json)) AS u(a, t, m, s, e, ty, sv, r, p)
ON CONFLICT (alert_id) DO NOTHING
"""

_COLUMNS = attrgetter(
    "alert_id", "tenant_id", "member_id", "site_id", "episode_id", "type", "severity"
)
_PAYLOADS: TypeAdapter[list[Alert]] = TypeAdapter(list[Alert])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


async def _insert_alerts(
    session: AsyncSession, alerts: list[Alert], now: datetime, withheld: bool = False
) -> None:
    """PostgreSQL (asyncpg): all the alerts in one statement."""
    dumps = json.dumps
    columns = [dumps(column) for column in zip(*map(_COLUMNS, alerts), strict=True)]
    epoch, unit = _EPOCH, _MICROSECOND
    raised_at = dumps([(a.raised_at - epoch) // unit for a in alerts])
    payloads = _PAYLOADS.dump_json(alerts).decode()
    connection = await session.connection()
    await connection.exec_driver_sql(_INSERT_ALERTS, (*columns, raised_at, payloads, now, withheld))
