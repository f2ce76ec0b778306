"""deploy/prometheus/: config and rules checked by promtool, the rules' unit tests run by
`promtool test rules`, and every metric they name known to the code or proposed."""

from __future__ import annotations

from tests.deploy.support import (
    DEPLOY,
    PROPOSED,
    exported_metrics,
    load_yaml,
    run_promtool,
    unknown_metric_references,
)

PROMETHEUS = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "LapseConsumerLagGrowing",
    "LapseCheckpointsFailing",
    "LapseWebhookFailureRate",
    "LapseSiteSilent",
    "LapseDLQGrowing",
}


def rules() -> list[dict[str, object]]:
    doc = load_yaml(PROMETHEUS / "rules.yml")
    return [r for group in doc["groups"] for r in group["rules"]]


def test_promtool_accepts_the_rules():
    run = run_promtool("check", "rules", str(PROMETHEUS / "rules.yml"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_promtool_accepts_the_config_and_it_loads_the_rules():
    run = run_promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 rule files found" in run.stdout


def test_rule_unit_tests_pass():
    run = run_promtool("test", "rules", str(PROMETHEUS / "tests" / "rules_test.yml"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_rule_unit_tests_catch_a_broken_rule(tmp_path):
    """The unit tests are not vacuous: loosen one threshold and they fail."""
    text = (PROMETHEUS / "rules.yml").read_text()
    broken = text.replace("> 1800", "> 86400")
    assert broken != text
    (tmp_path / "rules.yml").write_text(broken)
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "rules_test.yml").write_text((PROMETHEUS / "tests" / "rules_test.yml").read_text())
    run = run_promtool("test", "rules", str(tests / "rules_test.yml"))
    assert run.returncode != 0
    assert "LapseSiteSilent" in run.stdout + run.stderr


def test_the_alerts_the_issue_asks_for_exist_with_severity_and_runbook():
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    assert set(alerts) >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        labels = rule["labels"]
        annotations = rule["annotations"]
        assert isinstance(labels, dict) and isinstance(annotations, dict)
        assert labels["severity"] in ("warning", "critical"), name
        assert str(annotations["runbook"]).startswith("docs/operations.md#"), name
        assert annotations["summary"], name


def test_every_runbook_anchor_is_a_heading_of_the_operations_guide():
    headings = {
        line.lstrip("#").strip().lower()
        for line in (DEPLOY.parent / "docs" / "operations.md").read_text().splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        if "alert" in rule:
            anchor = str(rule["annotations"]["runbook"]).split("#")[1]  # type: ignore[index]
            assert anchor in headings, anchor


def test_rules_name_only_known_metrics():
    for rule in rules():
        assert unknown_metric_references(str(rule["expr"])) == set(), rule.get("alert")


def test_proposed_metrics_are_not_exported_yet():
    """When the code exports a proposed metric, delete it from PROPOSED (support.py)."""
    assert set(PROPOSED) & set(exported_metrics()) == set()
