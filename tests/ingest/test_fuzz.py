"""Fuzzing the served ingest app: random bodies, field types and headers never give a 5xx.

Runs against a real uvicorn (in a thread of its own, so hypothesis can drive it
synchronously) with a valid ``admin`` key, the session's broker and PostgreSQL. Bounded to a
few hundred requests in all (~10 s).
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.conftest import ThreadIngest

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "event_id",
    "tenant_id",
    "site_id",
    "member_id",
    "kind",
    "occurred_at",
    "device_id",
    "source",
    "reason",
    "note",
    "schema_version",
]
KINDS = ["gate_entry", "gate_exit", "locker_open", "joined", "cancelled", "payment_failed", ""]


OFFSETS = [timezone(timedelta(hours=h)) for h in (-12, -5, 0, 1, 5.5, 14)]
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "kind": st.sampled_from(KINDS),
    "occurred_at": st.one_of(
        st.datetimes(timezones=st.sampled_from(OFFSETS)).map(lambda d: d.isoformat()),
        st.sampled_from(
            ["2024-02-30T10:00:00Z", "2024-03-01T10:00:00", "9999-12-31T23:59:59+14:00"]
        ),
    ),
}


@st.composite
def event_like(draw: st.DrawFn, tenant: str) -> dict[str, Any]:
    """Mostly the right field names with values of random type, often a plausible value."""
    event: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS))):
        if name == "tenant_id":
            plausible: st.SearchStrategy[Any] = st.just(tenant)
        else:
            plausible = GOOD.get(name, st.text(max_size=30))
        event[name] = draw(plausible | plausible | json_values)
    return event


# Printable ASCII without surrounding blanks: what an HTTP client can send at all.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(
    str.strip
)


def _send(
    client: httpx.Client, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    r = client.request(method, path, headers=headers, content=body)
    assert r.status_code < 500, (r.status_code, r.text[:500], method, path, body[:300])


def test_random_bodies_and_headers_never_give_5xx(ingest_in_thread: ThreadIngest):
    tenant, key = ingest_in_thread.tenant, ingest_in_thread.key
    client = httpx.Client(base_url=ingest_in_thread.base_url, timeout=10)

    @FUZZ
    @given(
        path=st.sampled_from(["/v1/events", "/v1/events/batch", "/v1/sites/north"]),
        payload=st.one_of(
            event_like(tenant),
            st.lists(event_like(tenant), max_size=5).map(lambda evs: {"events": evs}),
            json_values,
        ),
        raw=st.none() | st.binary(max_size=200),
        content_type=st.sampled_from(
            ["application/json", "application/cloudevents+json", "text/plain", ""]
        )
        | header_text,
        auth=st.sampled_from([f"Bearer {key}", f"Bearer {key}", "Bearer lapse_x", "Basic x", ""])
        | header_text,
        extra=st.dictionaries(
            st.text(
                st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=10
            ).map(lambda s: "x-" + s),
            header_text,
            max_size=3,
        ),
    )
    def fuzz(path, payload, raw, content_type, auth, extra):
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {**extra, "Content-Type": content_type, "Authorization": auth}
        method = "PUT" if path.startswith("/v1/sites") else "POST"
        _send(client, method, path, headers, body)

    try:
        fuzz()
        assert client.get("/healthz").status_code == 200
    finally:
        client.close()


def test_schemathesis_finds_no_server_error(ingest_in_thread: ThreadIngest):
    base = ingest_in_thread.base_url
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    auth = {"Authorization": f"Bearer {ingest_in_thread.key}"}
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {
        "POST /v1/events",
        "POST /v1/events/batch",
        "PUT /v1/sites/{site_id}",
        "GET /v1/sites",
    }
    for operation in operations:

        @settings(
            max_examples=50,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=base, headers=auth)
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                case.body,
                response.status_code,
                response.text[:500],
            )

        run()
