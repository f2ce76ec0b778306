"""The ingest HTTP service against a real broker, real PostgreSQL and a real uvicorn."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from ingest.app import create_app
from records.api_keys import digest
from records.tables import ApiKey
from schemas.events import parse_member_event
from tests.ingest.conftest import (
    MAX_BATCH,
    MAX_BODY,
    access_event,
    membership_event,
    read_topic,
)

PROBLEM = "application/problem+json"


def fields_of(body: dict[str, Any]) -> set[str | None]:
    return {e["field"] for e in body.get("errors", [])}


async def test_single_event_is_acked_then_on_the_topic(ingest):
    event = access_event(ingest.tenant, device_id="gate-3")
    r = await ingest.client.post("/v1/events", json=event, headers=ingest.auth())
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "event_ids": [event["event_id"]], "duplicates": 0}
    # The controller retries after a timeout: accepted again, not written again.
    r = await ingest.client.post("/v1/events", json=event, headers=ingest.auth())
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 1, "event_ids": [event["event_id"]], "duplicates": 1}

    records = await read_topic(ingest.settings, expected=1)
    assert len(records) == 1
    record = records[0]
    assert record.key == f"{ingest.tenant}:m-42".encode()
    assert parse_member_event(record.value).model_dump(mode="json") == {
        **event,
        "schema_version": 1,
        "occurred_at": "2024-03-01T18:30:00Z",
        "source": None,
    }
    assert record.value == parse_member_event(json.dumps(event)).model_dump_json().encode()


async def test_batch_writes_the_valid_items_and_reports_the_others(ingest):
    good_access = access_event(ingest.tenant)
    good_member = membership_event(ingest.tenant)
    missing_site = access_event(ingest.tenant)
    del missing_site["site_id"]
    other_tenant = access_event("another-club")
    bad_kind = access_event(ingest.tenant, kind="teleported")
    events = [good_access, missing_site, good_member, other_tenant, "not an event", bad_kind]

    r = await ingest.client.post("/v1/events/batch", json={"events": events}, headers=ingest.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2
    assert body["event_ids"] == [good_access["event_id"], good_member["event_id"]]
    rejected = {item["index"]: item for item in body["rejected"]}
    assert sorted(rejected) == [1, 3, 4, 5]
    assert rejected[1]["event_id"] == missing_site["event_id"]
    assert rejected[1]["reason"] == "invalid"
    assert fields_of(rejected[1]) == {"events.1.site_id"}
    assert rejected[1]["errors"][0]["pointer"] == "/events/1/site_id"
    assert rejected[3]["reason"] == "forbidden"
    assert fields_of(rejected[3]) == {"events.3.tenant_id"}
    assert rejected[4]["event_id"] is None
    assert fields_of(rejected[4]) == {"events.4"}
    assert fields_of(rejected[5]) == {"events.5.kind"}

    records = await read_topic(ingest.settings, expected=2)
    assert sorted(parse_member_event(rec.value).event_id for rec in records) == sorted(
        body["event_ids"]
    )


async def test_batch_all_valid_is_202_and_all_invalid_is_422(ingest):
    events = [access_event(ingest.tenant, member_id=f"m-{i}") for i in range(3)]
    r = await ingest.client.post("/v1/events/batch", json={"events": events}, headers=ingest.auth())
    assert r.status_code == 202, r.text
    assert r.json()["rejected"] == []
    assert r.json()["accepted"] == 3

    bad = [access_event(ingest.tenant, occurred_at="2024-03-01T18:30:00"), {"kind": "joined"}]
    r = await ingest.client.post("/v1/events/batch", json={"events": bad}, headers=ingest.auth())
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert [item["index"] for item in body["rejected"]] == [0, 1]
    assert "events.0.occurred_at" in fields_of(body)  # naive datetime: no offset
    assert {"events.1.event_id", "events.1.tenant_id"} <= fields_of(body)

    records = await read_topic(ingest.settings, expected=3)
    assert len(records) == 3


async def test_bad_requests_are_problems_and_nothing_reaches_kafka(ingest):
    post, auth, tenant = ingest.client.post, ingest.auth(), ingest.tenant
    json_headers = {**auth, "Content-Type": "application/json"}

    async def problem(path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        r = await post(path, headers=kwargs.pop("headers", json_headers), **kwargs)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == PROBLEM
        body: dict[str, Any] = r.json()
        assert body["status"] == status
        return body

    # Malformed JSON: 400 naming the body.
    body = await problem("/v1/events", 400, content=b'{"event_id": "x",')
    assert fields_of(body) == {"body"}
    await problem("/v1/events/batch", 400, content=b"[1, 2")
    # Missing field, wrong type, unknown kind, extra field: 422 naming the field.
    missing = access_event(tenant)
    del missing["member_id"]
    assert fields_of(await problem("/v1/events", 422, json=missing)) == {"member_id"}
    wrong_type = access_event(tenant, member_id=42)
    assert fields_of(await problem("/v1/events", 422, json=wrong_type)) == {"member_id"}
    bad_date = access_event(tenant, occurred_at="yesterday")
    assert fields_of(await problem("/v1/events", 422, json=bad_date)) == {"occurred_at"}
    no_kind = access_event(tenant)
    del no_kind["kind"]
    assert fields_of(await problem("/v1/events", 422, json=no_kind)) == {"kind"}
    extra = access_event(tenant, colour="red")
    assert fields_of(await problem("/v1/events", 422, json=extra)) == {"colour"}
    # Batch envelopes.
    assert fields_of(await problem("/v1/events/batch", 422, json={"items": []})) == {"events"}
    assert fields_of(await problem("/v1/events/batch", 422, json={"events": []})) == {"events"}
    many = {"events": [access_event(tenant) for _ in range(MAX_BATCH + 1)]}
    assert fields_of(await problem("/v1/events/batch", 422, json=many)) == {"events"}
    # Oversized, with Content-Length and chunked without it: 413 naming the limit.
    big = access_event(tenant, note="x" * MAX_BODY)  # valid JSON, too large
    raw = json.dumps(big).encode()
    body = await problem("/v1/events", 413, content=raw)
    assert body["limit_bytes"] == MAX_BODY

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 4096):
            yield raw[i : i + 4096]

    r = await post("/v1/events", headers=json_headers, content=chunks())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert r.json()["limit_bytes"] == MAX_BODY
    # Wrong content type: 415.
    await problem(
        "/v1/events",
        415,
        content=json.dumps(access_event(tenant)).encode(),
        headers={**auth, "Content-Type": "text/plain"},
    )

    # The proof: one good sentinel, and the topic holds exactly it.
    sentinel = access_event(tenant)
    r = await post("/v1/events", json=sentinel, headers=auth)
    assert r.status_code == 202, r.text
    records = await read_topic(ingest.settings, expected=1)
    assert [parse_member_event(rec.value).event_id for rec in records] == [sentinel["event_id"]]


async def test_keys_scopes_tenants_and_sites(ingest, sessions):
    post, tenant = ingest.client.post, ingest.tenant

    r = await post("/v1/events", json=access_event(tenant))
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"].startswith("Bearer")

    r = await post("/v1/events", json=access_event(tenant), headers=ingest.auth("lapse_nope"))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")

    revoked = await ingest.make_key()
    async with sessions() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.digest == digest(revoked))
            .values(revoked_at=datetime.now(UTC))
        )
        await session.commit()
    r = await post("/v1/events", json=access_event(tenant), headers=ingest.auth(revoked))
    assert r.status_code == 401

    reader = await ingest.make_key(scopes=("alerts:read",))
    r = await post("/v1/events", json=access_event(tenant), headers=ingest.auth(reader))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM

    r = await post("/v1/events", json=access_event("another-club"), headers=ingest.auth())
    assert r.status_code == 403
    assert fields_of(r.json()) == {"tenant_id"}

    site_key = await ingest.make_key(site_id="site-1")
    r = await post(
        "/v1/events", json=access_event(tenant, site_id="site-2"), headers=ingest.auth(site_key)
    )
    assert r.status_code == 403
    assert fields_of(r.json()) == {"site_id"}
    # The site's own access events and the tenant's membership events pass.
    allowed = [access_event(tenant, site_id="site-1"), membership_event(tenant)]
    for event in allowed:
        r = await post("/v1/events", json=event, headers=ingest.auth(site_key))
        assert r.status_code == 202, r.text

    records = await read_topic(ingest.settings, expected=2)
    assert sorted(parse_member_event(rec.value).event_id for rec in records) == sorted(
        e["event_id"] for e in allowed
    )


async def test_paused_broker_answers_503_with_retry_after(ingest, broker):
    post, auth = ingest.client.post, ingest.auth()
    assert (await post("/v1/events", json=access_event(ingest.tenant), headers=auth)).is_success

    event = access_event(ingest.tenant)
    broker.pause()
    try:
        started = time.monotonic()
        r = await post("/v1/events", json=event, headers=auth)
        elapsed = time.monotonic() - started
        batch = await post(
            "/v1/events/batch", json={"events": [access_event(ingest.tenant)]}, headers=auth
        )
    finally:
        broker.resume()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == PROBLEM
    assert int(r.headers["retry-after"]) > 0
    assert elapsed < 5, elapsed  # ingest_ack_timeout_seconds=2.5 plus slack
    assert batch.status_code == 503
    assert "retry-after" in batch.headers

    # The client's retry goes through once the broker is back.
    r = await post("/v1/events", json=event, headers=auth)
    assert r.status_code == 202, r.text


async def test_metrics_count_outcomes_by_kind_and_time_routes(ingest):
    await ingest.client.post(
        "/v1/events", json=membership_event(ingest.tenant), headers=ingest.auth()
    )
    await ingest.client.post("/v1/events", content=b"{", headers=ingest.auth())
    text = (await ingest.client.get("/metrics")).text
    assert 'lapse_ingest_events_total{kind="cancelled",outcome="accepted"}' in text
    assert 'lapse_ingest_events_total{kind="unknown",outcome="rejected"}' in text
    assert 'lapse_ingest_request_duration_seconds_count{route="/v1/events",status="202"}' in text
    # No JSON content type: 415, counted under its own status.
    assert 'lapse_ingest_request_duration_seconds_count{route="/v1/events",status="415"}' in text
    assert "m-43" not in text


@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/batch"])
def test_openapi_documents_the_bodies(settings, path):
    doc = create_app(settings).openapi()  # builds nothing: no engine, no producer
    op = doc["paths"][path]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    assert {"AccessEvent", "MembershipEvent"} <= set(doc["components"]["schemas"])
    assert {"401", "413", "415", "422", "503"} <= set(op["responses"])
