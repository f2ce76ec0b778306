"""`promtool check metrics` against the live /metrics of ingest, api and detector, served
by real uvicorn servers after an event has gone through (so labelled series exist).

The three run in this process and share prometheus-client's default registry, so each
/metrics shows the union; the check still covers every metric each service defines.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app as api_app
from detector.runner import DetectorRunner
from detector.service import create_app as detector_app
from ingest import intake
from ingest.app import create_app as ingest_app
from plumbing.kafka import ensure_topics
from schemas import AccessEvent
from tests.api.support import make_key, serve, until
from tests.deploy.support import run_promtool

OWN_FAMILIES = {
    "ingest": (
        "lapse_ingest_events",
        "lapse_ingest_request_duration_seconds",
        "lapse_ingest_site_last_event_timestamp_seconds",
    ),
    "api": ("lapse_webhook_attempts", "lapse_webhook_attempt_duration_seconds"),
    "detector": (
        "lapse_detector_events",
        "lapse_detector_checkpoint_duration_seconds",
        "lapse_detector_members_tracked",
        "lapse_detector_timers_pending",
        "lapse_detector_consumer_lag_messages",
        "lapse_detector_end_to_end_latency_seconds",
    ),
}


async def test_live_metrics_follow_prometheus_conventions(settings, sessions, tenant):
    s = settings.model_copy(
        update={"allowed_lateness_seconds": 0.0, "checkpoint_interval_seconds": 0.1}
    )
    await ensure_topics(s)
    key = await make_key(sessions, tenant, scopes=("admin",))
    runner = DetectorRunner(s, sessions)
    members = [f"member-{uuid.uuid4().hex}" for _ in range(2)]
    at = datetime.now(UTC) - timedelta(hours=1)
    events = [
        {
            "event_id": f"{m}-1",
            "tenant_id": tenant,
            "member_id": m,
            "site_id": "north",
            "kind": "gate_entry",
            "occurred_at": at.isoformat(),
        }
        for m in members
    ]
    consuming = asyncio.create_task(runner.run())
    try:
        async with (
            serve(ingest_app(s)) as ingest,
            serve(api_app(s, deliver=False)) as api,
            serve(detector_app(runner)) as detector,
            httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=10) as http,
        ):

            async def ingest_ready():
                return (await http.get(f"{ingest}/readyz")).status_code == 200

            await until(ingest_ready, within=15)
            r = await http.post(f"{ingest}/v1/events/batch", json={"events": events})
            assert r.status_code == 202, r.text

            async def consumed():
                return runner.members >= len(members)

            await until(consumed, within=30)
            await until(lambda: _checkpointed(http, detector), within=10)

            for service, base in (("ingest", ingest), ("api", api), ("detector", detector)):
                response = await http.get(f"{base}/metrics")
                assert response.status_code == 200
                text = response.text
                families = {f.name for f in text_string_to_metric_families(text)}
                for family in OWN_FAMILIES[service]:
                    assert family in families, f"{service}: {family} missing"
                check = run_promtool("check", "metrics", stdin=text)
                assert check.returncode == 0 and check.stdout + check.stderr == "", (
                    f"{service}: {check.stdout}{check.stderr}"
                )
                for parsed in text_string_to_metric_families(text):
                    for sample in parsed.samples:
                        assert not any("member" in label for label in sample.labels), sample
                for m in members:
                    assert m not in text, "a member id leaked into the metrics"
            await _check_new_series(http, ingest, detector, tenant)
    finally:
        runner.stop()
        await asyncio.wait_for(consuming, 15)


async def _check_new_series(
    http: httpx.AsyncClient, ingest: str, detector: str, tenant: str
) -> None:
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for base in (ingest, detector)
        for f in text_string_to_metric_families((await http.get(f"{base}/metrics")).text)
        for s in f.samples
    }
    stamp = samples[
        ("lapse_ingest_site_last_event_timestamp_seconds", (("site", "north"), ("tenant", tenant)))
    ]
    assert abs(stamp - datetime.now(UTC).timestamp()) < 60
    # Ran on the embedded local broker, which reports wrong end offsets (BROKER.md): the lag
    # can only be checked to exist and be non-negative here, not to be right.
    lags = [v for (n, _), v in samples.items() if n == "lapse_detector_consumer_lag_messages"]
    assert lags and all(v >= 0 for v in lags)
    assert samples[("lapse_detector_end_to_end_latency_seconds_count", ())] >= 1


async def _checkpointed(http: httpx.AsyncClient, detector: str) -> bool:
    text = (await http.get(f"{detector}/metrics")).text
    return any(
        s.name == "lapse_detector_checkpoint_duration_seconds_count" and s.value > 0
        for f in text_string_to_metric_families(text)
        for s in f.samples
    )


def test_promtool_check_metrics_has_teeth():
    bad = "# HELP lapse_x_ms Bad.\n# TYPE lapse_x_ms counter\nlapse_x_ms 1\n"
    check = run_promtool("check", "metrics", stdin=bad)
    assert check.returncode != 0
    assert "_total" in check.stdout + check.stderr


def test_site_series_are_bounded(monkeypatch):
    """Sites need no registration, so the per-site gauge caps its label set."""
    monkeypatch.setattr(intake, "MAX_SITE_SERIES", 2)
    series = intake._SiteSeries()
    tenant = f"club-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC)
    events = [
        AccessEvent(
            event_id=f"e{i}",
            tenant_id=tenant,
            member_id="m1",
            site_id=f"site-{i}",
            kind="gate_entry",
            occurred_at=at,
        )
        for i in range(4)
    ]
    series.mark(tenant, events, at)
    [moving] = [e for e in events if (tenant, e.site_id) in series.tracked][:1]
    series.mark(tenant, [moving], at + timedelta(seconds=5))  # a tracked site moves on
    exported = {
        s.labels["site"]: s.value
        for f in REGISTRY.collect()
        for s in f.samples
        if s.name == "lapse_ingest_site_last_event_timestamp_seconds"
        and s.labels["tenant"] == tenant
    }
    assert len(exported) == 2 and series.overflowed
    assert exported[moving.site_id] == (at + timedelta(seconds=5)).timestamp()
