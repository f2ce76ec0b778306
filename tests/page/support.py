"""Data and sessions for the staff page tests: a small club run through the real detector."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from detector.checkpoint import Checkpoint, CheckpointStore
from detector.core import CadencePolicy, Detector
from detector.core.rows import StateRows
from records import staff_accounts as accounts
from records.staff_accounts import Role
from schemas import AccessEvent, Alert, Event, MembershipEvent
from schemas.units import DAY


@dataclass
class Club:
    tenant: str
    now: float
    alerts: list[Alert] = field(default_factory=list)

    def open_alert(self, member: str) -> Alert:
        """The latest alert of the member's open episode."""
        mine = [a for a in self.alerts if a.member_id == member]
        closed = {a.episode_id for a in mine if a.type in ("recovered", "churned")}
        return max((a for a in mine if a.episode_id not in closed), key=lambda a: a.raised_at)


def _visits(
    tenant: str, member: str, site: str, start: float, end: float, every_days: float
) -> list[Event]:
    out: list[Event] = []
    t = start
    while t <= end:
        for kind, at in (("gate_entry", t), ("gate_exit", t + 3600.0)):
            out.append(
                AccessEvent(
                    event_id=str(uuid.uuid4()),
                    tenant_id=tenant,
                    member_id=member,
                    site_id=site,
                    kind=kind,
                    occurred_at=datetime.fromtimestamp(at, UTC),
                )
            )
        t += every_days * DAY
    return out


async def make_club(sessions: async_sessionmaker[AsyncSession], tenant: str) -> Club:
    """Members of one tenant as the detector leaves them (cadence policy), stored the way a
    checkpoint stores them: states and alerts in one transaction.

    At site ``north``: ``ben`` absent 70 days (escalated, high), ``ana`` 40 days and ``cara``
    25 days (at risk, medium), ``gia`` a failed payment (low), ``dan`` regular (no episode),
    ``eve`` away for a month and back (a recovered episode). ``fay`` at ``south``, 45 days.
    """
    now = time.time()
    start = now - 150 * DAY
    plan = [
        ("ben", "north", start, now - 70 * DAY, 3.0),
        ("ana", "north", start, now - 40 * DAY, 2.0),
        ("cara", "north", start, now - 25 * DAY, 4.0),
        ("gia", "north", start, now - 3 * DAY, 3.0),
        ("dan", "north", start, now - 1 * DAY, 2.5),
        ("eve", "north", start, now - 70 * DAY, 3.0),
        ("eve", "north", now - 30 * DAY, now - 2 * DAY, 3.0),
        ("fay", "south", start, now - 45 * DAY, 3.5),
    ]
    events: list[Event] = []
    for member, site, a, b, every in plan:
        events += _visits(tenant, member, site, a, b, every)
    events.append(
        MembershipEvent(
            event_id=str(uuid.uuid4()),
            tenant_id=tenant,
            member_id="gia",
            kind="payment_failed",
            occurred_at=datetime.fromtimestamp(now - 2 * DAY, UTC),
        )
    )
    detector = Detector(CadencePolicy())
    for event in sorted(events, key=lambda e: e.occurred_at):
        detector.offer(event)
    alerts = detector.advance(now - 60)
    store = CheckpointStore(sessions, "page-tests", "page-tests")
    table = StateRows()
    table.add(detector.store, list(detector.store.slots()), 0)
    await store.save(Checkpoint(table=table, alerts=alerts))
    return Club(tenant, now, alerts)


# Every test account's password.
PASSWORD = "correct horse battery"


async def add_staff(
    sessions: async_sessionmaker[AsyncSession],
    tenant: str,
    role: Role = Role.FRONT_DESK,
    *,
    login: str | None = None,
    name: str | None = None,
) -> str:
    """A staff account of ``tenant`` with ``PASSWORD``, committed; returns its login (a fresh
    one unless given). Its display name is ``name``, else the login."""
    login = login or f"{role.value}-{uuid.uuid4().hex[:8]}@{tenant}.example"
    async with sessions() as db:
        await accounts.add_account(
            db,
            tenant,
            login,
            PASSWORD,
            role=role,
            display_name=name or login,
            now=datetime.now(UTC),
        )
        await db.commit()
    return login


LOGIN_TOKEN = re.compile(r'name="login_token" value="([^"]+)"')
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(client: httpx.AsyncClient, key: str) -> httpx.Response:
    """Log in through the form, as a browser would; returns the answer to the POST."""
    form = await client.get("/staff/login")
    match = LOGIN_TOKEN.search(form.text)
    assert match, form.text[:500]
    return await client.post("/staff/login", data={"login_token": match.group(1), "api_key": key})


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, page[:500]
    return match.group(1)


async def make_crowd(
    sessions: async_sessionmaker[AsyncSession], tenant: str, n: int
) -> list[Alert]:
    """``n`` members of one site who came every 3 days and stopped 30 to 30 + 2n days ago
    (each with an open episode), stored as a checkpoint stores them: a long work list."""
    now = time.time()
    start = now - 200 * DAY
    events: list[Event] = []
    for i in range(n):
        events += _visits(tenant, f"m{i:03d}", "north", start, now - (30 + 2 * i) * DAY, 3.0)
    detector = Detector(CadencePolicy())
    for event in sorted(events, key=lambda e: e.occurred_at):
        detector.offer(event)
    alerts = detector.advance(now - 60)
    table = StateRows()
    table.add(detector.store, list(detector.store.slots()), 0)
    await CheckpointStore(sessions, "page-tests", "page-tests").save(
        Checkpoint(table=table, alerts=alerts)
    )
    return alerts
