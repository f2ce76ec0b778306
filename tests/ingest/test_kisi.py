"""Kisi's event webhook over real HTTP: signed like Kisi signs, mapped to gate events on Kafka."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import select

from ingest.app import create_app
from ingest.kisi import add_kisi_integration, run_kisi_command
from plumbing.kafka import ensure_topics
from plumbing.settings import Settings
from records.tables import VendorIntegration
from schemas.events import parse_member_event
from tests.api.support import serve, until
from tests.ingest.conftest import read_topic

SECRET = "kisi-signature-key-" + uuid.uuid4().hex
PROBLEM = "application/problem+json"

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Kisi:
    settings: Settings
    client: httpx.AsyncClient
    tenant: str

    async def post(
        self, event: dict[str, Any], *, secret: str = SECRET, tenant: str | None = None
    ) -> httpx.Response:
        body = json.dumps(event).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return await self.client.post(
            f"/v1/vendors/kisi/{tenant or self.tenant}/events",
            content=body,
            headers={"Content-Type": "application/json", "X-Signature": signature},
        )


def unlock(**overrides: Any) -> dict[str, Any]:
    event = {
        "uuid": str(uuid.uuid4()),
        "actor_type": "User",
        "actor_id": 4711,
        "actor_name": "Ada",
        "object_type": "Lock",
        "object_id": 12,
        "object_name": "Main Entrance",
        "organization_id": 99,
        "place_id": 501,
        "success": True,
        "type": "lock.unlock",
        "error_code": None,
        "error_message": None,
        "created_at": "2024-03-01T18:30:00Z",
    }
    event.update(overrides)
    return event


@pytest_asyncio.fixture
async def kisi(settings: Settings, sessions, tenant: str) -> AsyncIterator[Kisi]:
    await ensure_topics(settings)
    async with sessions() as session:
        await add_kisi_integration(session, tenant, {"501": "north"}, secret=SECRET)
        await session.commit()
    app = create_app(settings)  # the ingest app mounts the Kisi route itself
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await until(ready, within=10)
        yield Kisi(settings, client, tenant)


async def test_a_signed_unlock_becomes_a_gate_entry_once_however_often_kisi_sends_it(kisi):
    event = unlock()
    first = await kisi.post(event)
    assert first.status_code == 202, first.text
    assert first.json() == {
        "accepted": 1,
        "event_ids": [f"kisi-{event['uuid']}"],
        "duplicates": 0,
    }
    again = await kisi.post(event)  # Kisi may deliver the same event twice
    assert again.status_code == 202 and again.json()["duplicates"] == 1

    records = await read_topic(kisi.settings, expected=1)
    assert len(records) == 1
    got = parse_member_event(records[0].value)
    assert got.model_dump(mode="json") == {
        "schema_version": 1,
        "event_id": f"kisi-{event['uuid']}",
        "tenant_id": kisi.tenant,
        "member_id": "4711",
        "site_id": "north",
        "kind": "gate_entry",
        "occurred_at": "2024-03-01T18:30:00Z",
        "device_id": "12",
        "source": "kisi",
    }
    assert records[0].key == f"{kisi.tenant}:4711".encode()


async def test_a_failed_unlock_is_a_denied_entry_and_other_types_are_ignored(kisi):
    denied = unlock(success=False, error_code=403, error_message="no access")
    assert (await kisi.post(denied)).status_code == 202
    other = await kisi.post({"uuid": str(uuid.uuid4()), "type": "user.sign_in", "actor_id": 1})
    assert other.status_code == 204 and other.content == b""
    records = await read_topic(kisi.settings, expected=1)
    assert [parse_member_event(r.value).kind for r in records] == ["entry_denied"]


async def test_wrong_missing_or_foreign_signatures_are_401(kisi, sessions):
    event = unlock()
    wrong = await kisi.post(event, secret="not-the-key")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith(PROBLEM)
    assert "X-Signature" in wrong.json()["detail"]

    body = json.dumps(event).encode()
    unsigned = await kisi.client.post(
        f"/v1/vendors/kisi/{kisi.tenant}/events",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert unsigned.status_code == 401

    # The right key for this tenant does not open another tenant's endpoint.
    other_tenant = f"club-{uuid.uuid4().hex[:8]}"
    async with sessions() as session:
        await add_kisi_integration(session, other_tenant, {"501": "south"}, secret="other-key")
        await session.commit()
    assert (await kisi.post(event, tenant=other_tenant)).status_code == 401
    # A body changed after signing fails too.
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    tampered = body.replace(b"4711", b"4712")
    r = await kisi.client.post(
        f"/v1/vendors/kisi/{kisi.tenant}/events",
        content=tampered,
        headers={"Content-Type": "application/json", "X-Signature": signature},
    )
    assert r.status_code == 401
    assert await read_topic(kisi.settings, expected=0, deadline=0.5) == []


def _ignored(reason: str) -> float:
    return REGISTRY.get_sample_value("lapse_ingest_kisi_ignored_total", {"reason": reason}) or 0.0


async def test_events_lapse_cannot_use_are_acknowledged_counted_and_logged(kisi, caplog):
    """Kisi disables integrations whose deliveries keep failing: a signed event Lapse cannot
    use is answered 200 with the reason (never 4xx), counted by reason, and logged with the
    Kisi field names, never the actor's id or name."""
    caplog.set_level(logging.DEBUG, logger="ingest.kisi")
    cases: dict[str, list[Any]] = {
        "no_actor": [unlock(actor_id=None), unlock(actor_id="")],
        "unmapped_place": [unlock(place_id=777)],
        "invalid": [
            unlock(created_at="2024-03-01T18:30:00"),  # naive
            unlock(success="yes"),
        ],
        # A member id our contract refuses (whitespace): named by the Kisi field.
        "refused": [unlock(actor_id="Ada Lovelace")],
        "malformed": [{"uuid": "x"}, [1, 2]],
    }
    before = {reason: _ignored(reason) for reason in cases}
    for reason, events in cases.items():
        for event in events:
            r = await kisi.post(event)
            assert r.status_code == 200, (reason, r.text)
            assert r.json()["accepted"] == 0 and r.json()["ignored"] == reason, r.json()
        assert _ignored(reason) - before[reason] == len(events), reason
    assert "place_id" in (await kisi.post(unlock(place_id=777))).json()["detail"]
    refused = await kisi.post(unlock(actor_id="Ada Lovelace"))
    assert "actor_id" in refused.json()["detail"]
    assert "created_at" in (await kisi.post(unlock(created_at="2024-03-01"))).json()["detail"]

    body = b"{not json"
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = await kisi.client.post(
        f"/v1/vendors/kisi/{kisi.tenant}/events", content=body, headers={"X-Signature": sig}
    )
    assert r.status_code == 200 and r.json()["ignored"] == "malformed"
    # Not an unlock: 204, counted, logged at debug only (Kisi sends many kinds of event).
    routine = _ignored("not_an_unlock")
    other = await kisi.post({"uuid": str(uuid.uuid4()), "type": "user.sign_in", "actor_id": 1})
    assert other.status_code == 204 and _ignored("not_an_unlock") == routine + 1

    lines = [r for r in caplog.records if r.name == "ingest.kisi"]
    assert {r.levelno for r in lines if "unmapped_place" in r.getMessage()} == {logging.WARNING}
    for record in lines:
        text = record.getMessage()
        assert kisi.tenant in text
        # The integration's id is a random UUID and may hold the digits 4711 by chance.
        text = UUID_TEXT.sub("<uuid>", text)
        assert "Ada" not in text and "Lovelace" not in text and "4711" not in text, text
    started = time.monotonic()
    assert await read_topic(kisi.settings, expected=0, deadline=0.5) == []
    assert time.monotonic() - started < 5


async def test_an_unmapped_place_is_mapped_later_without_a_new_key(kisi, sessions):
    assert (await kisi.post(unlock(place_id=777))).json()["ignored"] == "unmapped_place"
    async with sessions() as session:
        (row,) = await session.scalars(
            select(VendorIntegration).where(VendorIntegration.tenant_id == kisi.tenant)
        )
    text = await run_kisi_command(kisi.settings, "map", kisi.tenant, ["777=south"], row.id)
    assert text.endswith("501=north 777=south")
    r = await kisi.post(unlock(place_id=777))  # same signature key
    assert r.status_code == 202, r.text
    (record,) = await read_topic(kisi.settings, expected=1)
    assert parse_member_event(record.value).model_dump()["site_id"] == "south"
    with pytest.raises(ValueError, match="no Kisi integration"):
        await run_kisi_command(kisi.settings, "map", "another-tenant", ["1=x"], row.id)
