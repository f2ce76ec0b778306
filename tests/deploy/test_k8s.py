"""deploy/k8s/: every object validated offline against the Kubernetes 1.30 OpenAPI schemas
in strict mode (unknown fields fail), with the schemas the kubernetes-validate package
ships; then the properties this deployment promises. No cluster was used."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from records.sealing import Sealer
from tests.deploy.support import DEPLOY, load_yaml, load_yaml_all, setting_variables

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30"
SERVICES = ("ingest", "api", "detector")


def manifests() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return [d for p in manifests() for d in load_yaml_all(p)]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)}"
    return matches[0]


def test_every_object_matches_the_kubernetes_schema(objects):
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_has_teeth(objects):
    deployment = copy.deepcopy(find(objects, "Deployment", "lapse-api"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(find(objects, "Deployment", "lapse-api"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest():
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in manifests())
    assert kustomization["namespace"] == "lapse"


def test_everything_lives_in_the_lapse_namespace(objects):
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "lapse", obj["metadata"]["name"]


def pod_specs(objects):
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]["spec"]


def test_every_container_is_pinned_non_root_read_only_and_sized(objects):
    for obj, pod in pod_specs(objects):
        name = obj["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            image = c["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{name} {kind}"
            assert set(c["args"]) <= {"migrate", "ingest", "api", "detector"}, name


def test_services_probe_readyz_and_healthz(objects):
    for svc in SERVICES:
        deployment = find(objects, "Deployment", f"lapse-{svc}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == [svc]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": 8080}, "the image's services all listen on 8080"


def test_ingest_and_api_sit_behind_services_and_autoscale(objects):
    for svc in ("ingest", "api"):
        deployment = find(objects, "Deployment", f"lapse-{svc}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        service = find(objects, "Service", f"lapse-{svc}")
        assert service["spec"]["selector"].items() <= labels.items()
        hpa = find(objects, "HorizontalPodAutoscaler", f"lapse-{svc}")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": f"lapse-{svc}",
        }
        assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def test_every_deployment_has_a_disruption_budget(objects):
    for svc in SERVICES:
        labels = find(objects, "Deployment", f"lapse-{svc}")["spec"]["template"]["metadata"]
        pdb = find(objects, "PodDisruptionBudget", f"lapse-{svc}")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels["labels"].items()


def test_detector_replicas_never_exceed_partitions_and_it_does_not_autoscale(objects):
    config = find(objects, "ConfigMap", "lapse-config")
    partitions = int(config["data"]["LAPSE_TOPIC_PARTITIONS"])
    detector = find(objects, "Deployment", "lapse-detector")
    assert 1 <= detector["spec"]["replicas"] <= partitions
    assert detector["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    assert not [
        o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
        and o["spec"]["scaleTargetRef"]["name"] == "lapse-detector"
    ]


def test_migration_job_and_settings(objects):
    job = find(objects, "Job", "lapse-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]
    config = find(objects, "ConfigMap", "lapse-config")
    secret = find(objects, "Secret", "lapse-db")
    known = setting_variables()
    assert set(config["data"]) <= known, set(config["data"]) - known
    assert set(secret["stringData"]) == {"LAPSE_DATABASE_URL"}
    shared = find(objects, "Secret", "lapse-secrets")
    assert set(shared["stringData"]) <= known
    # Ingest needs none of the shared secrets but the key (below); the others all of them.
    wanted = {
        "lapse-ingest": {"lapse-config", "lapse-db"},
        "lapse-api": {"lapse-config", "lapse-db", "lapse-secrets"},
        "lapse-detector": {"lapse-config", "lapse-db", "lapse-secrets"},
        "lapse-migrate": {"lapse-config", "lapse-db", "lapse-secrets"},
    }
    for obj, pod in pod_specs(objects):
        refs = {next(iter(v.values()))["name"] for c in pod["containers"] for v in c["envFrom"]}
        assert refs == wanted[obj["metadata"]["name"]], obj["metadata"]["name"]
    # Ingest opens the Kisi signature keys, sealed with LAPSE_SECRET_KEY: that key alone.
    (ingest,) = [
        pod for obj, pod in pod_specs(objects) if obj["metadata"]["name"] == "lapse-ingest"
    ]
    env_refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for c in ingest["containers"] for e in c["env"]
    }
    assert env_refs["LAPSE_SECRET_KEY"] == {"name": "lapse-secrets", "key": "LAPSE_SECRET_KEY"}
    assert env_refs["LAPSE_SECRET_KEYS_OLD"]["optional"] is True
    assert set(env_refs) == {"LAPSE_SECRET_KEY", "LAPSE_SECRET_KEYS_OLD"}


def test_replicas_share_the_session_secret_pepper_and_secret_key(objects):
    """Several api replicas must agree on these (a session, a tombstone, a sealed secret made
    by one is read by another): from one Secret, and the placeholder key cannot go live."""
    shared = find(objects, "Secret", "lapse-secrets")["stringData"]
    assert set(shared) == {"LAPSE_SESSION_SECRET", "LAPSE_FORGET_PEPPER", "LAPSE_SECRET_KEY"}
    assert find(objects, "HorizontalPodAutoscaler", "lapse-api")["spec"]["maxReplicas"] > 1
    with pytest.raises(ValueError, match="Fernet keys"):
        Sealer([shared["LAPSE_SECRET_KEY"]])


def test_the_ingress_serves_tls_and_only_the_event_endpoints_of_ingest(objects):
    ingress = find(objects, "Ingress", "lapse")
    spec = ingress["spec"]
    hosts = {r["host"]: r["http"]["paths"] for r in spec["rules"]}
    (tls,) = spec["tls"]
    assert set(tls["hosts"]) == set(hosts) and tls["secretName"]
    services = {s["metadata"]["name"]: s for s in objects if s["kind"] == "Service"}
    exposed = set()
    for paths in hosts.values():
        for p in paths:
            backend = p["backend"]["service"]
            ports = {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["name"] in ports, backend
            exposed.add((backend["name"], p["path"]))
    ingest = {path for name, path in exposed if name == "lapse-ingest"}
    # The gate's and Kisi's endpoints; not /v1/sites (admin), not / (metrics, docs).
    assert ingest == {"/v1/events", "/v1/vendors/kisi"}
    assert ("lapse-api", "/") in exposed
    assert "lapse-detector" not in {name for name, _ in exposed}
