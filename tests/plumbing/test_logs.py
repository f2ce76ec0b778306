"""Structured logs: JSON lines with correlation ids, secrets redacted, member ids only at debug.

The formatter and the filter are checked on their own, then on real paths: the detector
runner on the local broker and PostgreSQL (alerts raised, a poison message dead-lettered),
ingest's intake refusing events, and the webhook delivery worker against a real receiver.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from api.app import create_app as api_app
from api.app import delivery_client
from api.delivery import Dispatcher
from api.signing import generate_secret, sign
from detector.runner import DetectorRunner
from ingest.intake import Intake
from plumbing import logs
from plumbing.kafka import ensure_topics
from records.api_keys import KEY_PREFIX, Principal
from records.tables import AlertRow
from schemas import AccessEvent
from tests.api.support import Receiver, api, make_alert, make_key, serve, store_alerts, until
from tests.support import club_history, encoded, produce, replay_settings

ABOVE_DEBUG = {"info", "warning", "error", "critical"}


@contextmanager
def captured(*, json_format: bool = True) -> Iterator[io.StringIO]:
    """Everything logged meanwhile, at debug and above, through Lapse's own handler."""
    out = io.StringIO()
    handler = logs.handler(json_format)
    handler.setStream(out)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("aiokafka", "asyncio", "httpcore")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for name, old in quiet.items():
            logging.getLogger(name).setLevel(old)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line]


# -- formatter and filter ----------------------------------------------------------------------


def test_json_lines_parse_and_carry_only_the_correlation_ids():
    log = logging.getLogger("tests.logs.json")
    with captured() as out:
        log.info(
            "alert %s delivered",
            "at_risk",
            extra={
                "event_id": "e-1",
                "episode_id": "ep-1",
                "delivery_id": "d-1",
                "alert_id": "a-1",
                "member_id": "member-never-written",
            },
        )
        log.warning("no ids here")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("it failed", extra={"delivery_id": "d-2"})
    first, second, third = lines(out)
    assert first["msg"] == "alert at_risk delivered" and first["level"] == "info"
    assert first["logger"] == "tests.logs.json" and first["ts"].endswith("+00:00")
    assert {k: first[k] for k in logs.CORRELATION_KEYS} == {
        "event_id": "e-1",
        "episode_id": "ep-1",
        "delivery_id": "d-1",
        "alert_id": "a-1",
    }
    assert "member-never-written" not in out.getvalue()
    assert not set(logs.CORRELATION_KEYS) & set(second)
    assert third["delivery_id"] == "d-2" and "RuntimeError: boom" in third["exc"]


def _secrets() -> dict[str, str]:
    secret = generate_secret()
    signature = sign(secret, "msg_1", 1_700_000_000, b"{}")
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)  # as records.api_keys.create_key makes them
    return {
        "webhook secret": secret,
        "signature": signature,
        "api key": api_key,
        "bearer": "Bearer " + api_key.removeprefix("lapse_"),
        "basic": "Basic dXNlcjpodW50ZXIy",
        "url credentials": "https://crm-user:hunter2-pass@crm.example/hook",
    }


@pytest.mark.parametrize("json_format", [True, False], ids=["json", "text"])
@pytest.mark.parametrize("what", list(_secrets()))
def test_secrets_are_redacted_in_messages_arguments_ids_and_tracebacks(what, json_format):
    value = _secrets()[what]
    hidden = value.split()[-1].split("@")[0].split(":")[-1]  # the secret part itself
    log = logging.getLogger("tests.logs.redact")
    with captured(json_format=json_format) as out:
        log.info(f"in the message: {value}")
        log.warning("as an argument: %s", value, extra={"alert_id": value})
        try:
            raise ValueError(f"in a traceback: {value}")
        except ValueError:
            log.error("failed", exc_info=True)
    text = out.getvalue()
    assert hidden not in text, text
    # message, argument, traceback; and the alert_id, which only the JSON lines carry
    assert text.count(logs.REDACTED) >= (4 if json_format else 3)
    if json_format:
        assert len(lines(out)) == 3  # still valid JSON


def test_redaction_spares_ordinary_text():
    plain = (
        "lapse_detector_events_total rose; key prefix lapse_AbC123 listed; "
        "webhook secrets start with 'whsec_'; WWW-Authenticate: Bearer; v1,short"
    )
    assert logs.redact(plain) == plain


# -- real paths --------------------------------------------------------------------------------


def _renamed(events: list[AccessEvent], tenant: str) -> tuple[list[AccessEvent], set[str]]:
    """The history with member ids long and unique enough to grep for."""
    names: dict[str, str] = {}
    out = []
    for e in events:
        member = names.setdefault(e.member_id, f"member-{uuid.uuid4().hex}")
        eid = str(uuid.uuid5(uuid.NAMESPACE_URL, e.event_id))
        out.append(e.model_copy(update={"member_id": member, "event_id": eid}))
    return out, set(names.values())


def _alert_counts() -> dict[tuple[str, str], float]:
    got: dict[tuple[str, str], float] = {}
    for metric in REGISTRY.collect():
        if metric.name == "lapse_detector_alerts":
            for s in metric.samples:
                if s.name.endswith("_total"):
                    got[(s.labels["type"], s.labels["severity"])] = s.value
    return got


async def test_detector_logs_alert_ids_at_debug_and_no_member_id_above(settings, sessions, tenant):
    s = replay_settings(
        settings,
        checkpoint_interval_seconds=0.1,
    )
    await ensure_topics(s)
    history = club_history(tenant, members=12, days=60, seed=11)
    events, members = _renamed([e for e in history if isinstance(e, AccessEvent)], tenant)
    poison_member = f"member-{uuid.uuid4().hex}"
    poison = (
        f"{tenant}:{poison_member}".encode(),
        f'{{"member_id": "{poison_member}", "tenant_id": "{tenant}", "kind": "gate_'.encode(),
    )
    await produce(s, [poison, *encoded(events)])
    before = _alert_counts()
    runner = DetectorRunner(s, sessions)

    async def alerts() -> list[Any]:
        async with sessions() as db:
            query = select(AlertRow.alert_id, AlertRow.episode_id, AlertRow.type, AlertRow.severity)
            return list((await db.execute(query.where(AlertRow.tenant_id == tenant))).all())

    with captured() as out:
        task = asyncio.create_task(runner.run())
        try:

            async def consumed() -> bool:
                return runner.members >= len(members) and bool(await alerts())

            await until(consumed, within=45, interval=0.2)
        finally:
            runner.stop()
            await asyncio.wait_for(task, 15)  # its last checkpoint included
    rows = await alerts()
    records = lines(out)
    assert rows
    above = "\n".join(json.dumps(r) for r in records if r["level"] in ABOVE_DEBUG)
    for member in {*members, poison_member}:
        assert member not in above, f"member id {member} logged above debug"
    [dlq] = [r for r in records if r["level"] == "warning" and "DLQ" in r["msg"]]
    assert "partition" in dlq["msg"] and "offset" in dlq["msg"] and "json_invalid" in dlq["msg"]
    # The full reason, input quoted, only at debug.
    assert any("input_value" in r["msg"] for r in records if r["level"] == "debug")
    raised = {(r["alert_id"], r["episode_id"]) for r in records if "alert_id" in r}
    assert {(row.alert_id, row.episode_id) for row in rows} <= raised
    after = _alert_counts()
    by_label: dict[tuple[str, str], int] = {}
    for row in rows:
        by_label[(row.type, row.severity)] = by_label.get((row.type, row.severity), 0) + 1
    for label, n in by_label.items():
        assert after[label] - before.get(label, 0.0) >= n, label


async def test_ingest_sums_up_a_requests_rejections_in_one_line(settings, sessions, tenant):
    intake = Intake(settings, sessions, producer=None)  # nothing valid: no producer needed
    principal = Principal("key-1", tenant, None, frozenset({"events:write"}))
    member = f"member-{uuid.uuid4().hex}"
    items = [
        {"event_id": "ev-bad-1", "tenant_id": tenant, "member_id": member, "kind": "gate_entry"},
        {"event_id": "ev-bad-2", "tenant_id": "other", "member_id": member, "kind": "joined",
         "occurred_at": "2026-01-01T00:00:00Z"},
    ]  # fmt: skip
    with captured() as out:
        admission = await intake.admit(items, principal)
    assert len(admission.rejected) == 2
    (line,) = [r for r in lines(out) if "rejected" in r["msg"]]
    msg = line["msg"]
    assert "rejected 2 of 2" in msg and "key-1" in msg
    assert "invalid 1 (occurred_at, site_id)" in msg and "forbidden 1 (tenant_id)" in msg
    assert "ev-bad-1" in msg and "ev-bad-2" in msg
    assert member not in out.getvalue()
    # A thousand bad events are still one line, naming ten ids and counting the rest.
    many = [
        {"event_id": f"ev-{n}", "tenant_id": tenant, "member_id": member, "kind": "gate_entry"}
        for n in range(1000)
    ]
    with captured() as out:
        admission = await intake.admit(many, principal)
    assert len(admission.rejected) == 1000
    (line,) = [r for r in lines(out) if "rejected" in r["msg"]]
    msg = line["msg"]
    assert "rejected 1000 of 1000" in msg and "invalid 1000 (occurred_at 1000" in msg
    assert "and 990 more" in msg and "ev-999" not in msg
    # One rejection: its event id is the line's correlation id.
    with captured() as out:
        await intake.admit(many[:1], principal)
    assert [r.get("event_id") for r in lines(out) if "rejected" in r["msg"]] == ["ev-0"]


async def test_delivery_attempts_log_delivery_alert_and_episode_ids(settings, sessions, tenant):
    fast = settings.model_copy(
        update={"alerts_relay": False, "webhook_retry_schedule": [0.1], "delivery_poll_seconds": 0}
    )
    receiver = Receiver(script=[500])
    key = await make_key(sessions, tenant)
    async with serve(receiver.app()) as base:
        async with api(api_app(fast, deliver=False), key) as client:
            r = await client.post("/v1/webhooks", json={"url": f"{base}/hook"})
            assert r.status_code == 201, r.text
            secret = r.json()["secret"]
        member = f"member-{uuid.uuid4().hex}"
        alert = make_alert(tenant, member)
        await store_alerts(sessions, [alert])
        with captured() as out:
            async with delivery_client(fast) as http:
                dispatcher = Dispatcher(fast, sessions, http)

                async def delivered() -> bool:
                    # The shared database may hold other tests' alerts ahead of this one.
                    await dispatcher.fan_out()
                    await dispatcher.deliver_due()
                    return len(receiver.requests) >= 2

                await until(delivered, within=10, interval=0.05)
    # Other tests' pending deliveries in the shared database are attempted too: keep ours.
    attempts = [
        a
        for a in lines(out)
        if a.get("delivery_id") and "attempt" in a["msg"] and a.get("alert_id") == alert.alert_id
    ]
    assert [a["level"] for a in attempts] == ["info", "debug"]  # the failure, then the success
    for a in attempts:
        assert a["alert_id"] == alert.alert_id and a["episode_id"] == alert.episode_id
    text = out.getvalue()
    assert member not in text and secret not in text
    for sent in receiver.requests:
        for signature in sent.headers["webhook-signature"].split():
            assert signature not in text
