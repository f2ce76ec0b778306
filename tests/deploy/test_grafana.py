"""deploy/grafana/: the dashboard is valid JSON, every panel's query parses (promtool checks a
rules file made of them), names only known metrics, and uses the provisioned datasource."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.support import DEPLOY, load_yaml, run_promtool, unknown_metric_references

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "lapse.json"
# Grafana's own interval variables, given the value Grafana would for a 15 s scrape.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}
REQUIRED_METRICS = {
    "lapse_ingest_events_total",
    "lapse_detector_events_total",
    "lapse_detector_alerts_total",
    "lapse_detector_checkpoint_duration_seconds_bucket",
    "lapse_detector_members_tracked",
    "lapse_detector_timers_pending",
    "lapse_webhook_attempts_total",
    "lapse_webhook_attempt_duration_seconds_bucket",
    "lapse_detector_dlq_total",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def targets(dashboard):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def expand(expr: str) -> str:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    return expr


def test_layout_is_sound(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel.get("targets"), panel["title"]
            assert panel.get("description"), panel["title"]


def test_panels_use_the_provisioned_datasource(dashboard):
    provisioned = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    uid = provisioned["datasources"][0]["uid"]
    for panel, target in targets(dashboard):
        assert panel["datasource"]["uid"] == uid
        assert target["datasource"]["uid"] == uid


def test_every_query_parses(dashboard, tmp_path):
    records = [
        {
            "record": f"lapse_dashboard:panel_{panel['id']}:{target['refId'].lower()}",
            "expr": expand(target["expr"]),
        }
        for panel, target in targets(dashboard)
    ]
    for r in records:
        assert "$" not in r["expr"], f"unexpanded Grafana variable in {r['expr']}"
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    run = run_promtool("check", "rules", str(path))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"SUCCESS: {len(records)} rules found" in run.stdout


def test_a_broken_query_is_caught(tmp_path):
    path = tmp_path / "bad.yml"
    bad = {"record": "x:y", "expr": "sum by (le (rate(lapse_detector_dlq_total[5m]))"}
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [bad]}]}))
    assert run_promtool("check", "rules", str(path)).returncode != 0


def test_queries_name_only_known_metrics_and_cover_the_required_ones(dashboard):
    used: set[str] = set()
    for panel, target in targets(dashboard):
        assert unknown_metric_references(target["expr"]) == set(), panel["title"]
        used.update(w for w in REQUIRED_METRICS if w in target["expr"])
    assert used == REQUIRED_METRICS
