"""deploy/compose.yaml against the Compose Specification's JSON Schema (the copy vendored in
the check-jsonschema package), plus what the schema cannot know about Lapse. The Docker
Compose plugin is not installed and no engine runs here, so `docker compose config` and
`up` were not run (docs/operations.md)."""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from typing import Any

import jsonschema
import pytest

from tests.deploy.support import DEPLOY, load_yaml, setting_variables

COMPOSE = DEPLOY / "compose.yaml"
LAPSE_SERVICES = ("migrate", "ingest", "api", "detector")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = load_yaml(COMPOSE)
    return doc


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendored / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_valid_against_the_compose_spec_schema(compose, validator):
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_check_has_teeth(compose, validator):
    bad = copy.deepcopy(compose)
    bad["services"]["api"]["helthcheck"] = bad["services"]["api"].pop("healthcheck")
    assert list(validator.iter_errors(bad))
    bad = copy.deepcopy(compose)
    bad["services"]["kafka"]["depends_on"] = {"postgres": {"condition": "service_ready"}}
    assert list(validator.iter_errors(bad))


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image}"


def test_kafka_is_a_single_kraft_node_with_topic_auto_creation_off(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_lapse_services_wait_for_a_migrated_database_and_a_healthy_broker(compose):
    services = compose["services"]
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("ingest", "api", "detector"):
        service = services[name]
        assert service["command"] == [name]
        deps = service["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["postgres"]["condition"] == "service_healthy"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    for name in ("kafka", "postgres", "prometheus", "grafana"):
        assert services[name]["healthcheck"]["test"], name


def test_one_image_for_every_lapse_service_built_from_the_dockerfile(compose):
    images = {compose["services"][n]["image"] for n in LAPSE_SERVICES}
    assert len(images) == 1
    build = compose["services"]["api"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
        DEPLOY / "Dockerfile"
    ).resolve()


def test_environment_names_are_lapse_settings(compose):
    known = setting_variables()
    for name in LAPSE_SERVICES:
        env = compose["services"][name]["environment"]
        unknown = {k for k in env if k.startswith("LAPSE_")} - known
        assert unknown == set(), f"{name}: not a setting: {unknown}"
        assert env["LAPSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["LAPSE_DATABASE_URL"].startswith("postgresql+asyncpg://")


def test_the_detector_can_scale(compose):
    detector = compose["services"]["detector"]
    assert "ports" not in detector, "a host port would stop `--scale detector=N`"
    assert "container_name" not in detector
    partitions = int(compose["services"]["api"]["environment"]["LAPSE_TOPIC_PARTITIONS"])
    assert 1 <= detector["deploy"]["replicas"] <= partitions


def test_mounted_files_exist_and_prometheus_scrapes_every_service(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {j["job_name"]: j for j in prometheus["scrape_configs"]}
    assert jobs["lapse-ingest"]["static_configs"][0]["targets"] == ["ingest:8080"]
    assert jobs["lapse-api"]["static_configs"][0]["targets"] == ["api:8080"]
    assert jobs["lapse-detector"]["dns_sd_configs"][0]["names"] == ["detector"]


def test_grafana_is_provisioned_with_the_datasource_and_dashboard(compose):
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "lapse.yml")
    path = provider["providers"][0]["options"]["path"]
    assert mounts["./grafana/dashboards"] == path
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{path}/lapse.json"
    datasource = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_shared_secrets_are_required_and_reach_every_lapse_service(compose):
    """Unset, compose stops with the message (``${VAR:?...}``) rather than starting replicas
    that disagree, or webhook secrets stored in clear."""
    for name in LAPSE_SERVICES:
        env = compose["services"][name]["environment"]
        for var in ("LAPSE_SESSION_SECRET", "LAPSE_FORGET_PEPPER", "LAPSE_SECRET_KEY"):
            assert env[var].startswith(f"${{{var}:?"), (name, var)


def test_tls_fronts_ingest_and_the_api_and_the_plain_ports_stay_local(compose):
    services = compose["services"]
    tls = services["tls"]
    assert {"80:80", "443:443"} <= set(tls["ports"])
    caddyfile = (COMPOSE.parent / "caddy" / "Caddyfile").read_text()
    assert "reverse_proxy ingest:8080" in caddyfile and "reverse_proxy api:8080" in caddyfile
    gate = re.search(r"@gate path (.+)", caddyfile)
    assert gate and gate.group(1).split() == [
        "/v1/events",
        "/v1/events/batch",
        "/v1/vendors/kisi/*",
    ]
    for name in ("ingest", "api"):
        for port in services[name]["ports"]:
            assert port.startswith("127.0.0.1:"), (name, port)
