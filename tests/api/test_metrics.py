"""The api's own metrics: requests by method, route template and status; imports counted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from api.app import create_app
from records.tables import ImportRun
from tests.api.support import api, make_key


def _requests(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("lapse_api_request_duration_seconds_count", labels) or 0.0


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_requests_are_counted_by_route_template_and_status(settings, sessions, tenant):
    key = await make_key(sessions, tenant)
    member = f"m-{uuid.uuid4().hex}"
    template = "/v1/members/{member_id}"
    before = {
        "404": _requests("GET", template, "404"),
        "401": _requests("GET", "/v1/alerts", "401"),
        "200": _requests("GET", "/v1/alerts", "200"),
        "unmatched": _requests("GET", "unmatched", "404"),
    }
    async with api(create_app(settings, deliver=False), key) as client:
        assert (await client.get(f"/v1/members/{member}")).status_code == 404
        assert (await client.get("/v1/alerts")).status_code == 200
        anonymous = await client.get("/v1/alerts", headers={"authorization": ""})
        assert anonymous.status_code == 401
        assert (await client.get(f"/no/such/{member}")).status_code == 404
        text = (await client.get("/metrics")).text
    assert _requests("GET", template, "404") == before["404"] + 1
    assert _requests("GET", "/v1/alerts", "200") == before["200"] + 1
    assert _requests("GET", "/v1/alerts", "401") == before["401"] + 1
    assert _requests("GET", "unmatched", "404") == before["unmatched"] + 1
    assert member not in text  # templates, never paths


async def test_imports_are_reported_from_the_import_runs_table(settings, sessions, tenant):
    now = datetime.now(UTC)

    def run(status: str, accepted: int, rejected: dict[str, int]) -> ImportRun:
        return ImportRun(
            id=uuid.uuid4().hex,
            tenant_id=tenant,
            path=f"/tmp/{uuid.uuid4().hex}.csv",
            size=100,
            head_sha256="0" * 64,
            format="access",
            status=status,
            last_line=10,
            accepted=accepted,
            rejected=sum(rejected.values()),
            rejected_by_reason=rejected,
            started_at=now,
            updated_at=now,
            finished_at=now if status == "done" else None,
        )

    async with sessions() as session:
        session.add(run("done", 900, {"invalid": 3, "unknown_site": 2}))
        session.add(run("running", 40, {"invalid": 1}))
        await session.commit()
    async with api(create_app(settings, deliver=False)) as client:
        assert (await client.get("/metrics")).status_code == 200
    assert _gauge("lapse_import_files", tenant=tenant, status="done") == 1
    assert _gauge("lapse_import_files", tenant=tenant, status="running") == 1
    assert _gauge("lapse_import_rows", tenant=tenant, outcome="accepted") == 940
    assert _gauge("lapse_import_rows", tenant=tenant, outcome="rejected") == 6
    assert _gauge("lapse_import_rejected_rows", tenant=tenant, reason="invalid") == 4
    assert _gauge("lapse_import_rejected_rows", tenant=tenant, reason="unknown_site") == 2
