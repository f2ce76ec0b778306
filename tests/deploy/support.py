"""What the deploy tests share: paths, YAML loading, promtool, and the metric catalogue.

The catalogue is the list of metric names the services export (read from the code) plus
the names deploy/ already uses but the code does not export yet (``PROPOSED``): rules and
panels may reference only these, so a typo or a renamed metric fails a test.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from plumbing.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICE_PACKAGES = ("lapse", "ingest", "detector", "api")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def setting_variables() -> set[str]:
    """Every ``LAPSE_*`` variable Settings reads."""
    return {f"LAPSE_{name.upper()}" for name in Settings.model_fields}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: `bash scripts/setup.sh --test` installs it")
    return found


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


# Proposed metrics: referenced by deploy/ (rules, dashboard) and not exported by the code yet.
# name -> (type, labels, meaning). When one lands in the code, delete it here. Empty since the
# consumer lag, end-to-end latency and site last-event metrics landed (issue 7).
PROPOSED: dict[str, tuple[str, tuple[str, ...], str]] = {}

_DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"")


def exported_metrics() -> dict[str, str]:
    """Metric name -> type, from the prometheus-client definitions in the services' code."""
    found: dict[str, str] = {}
    for package in SERVICE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for kind, name in _DEFINITION.findall(path.read_text()):
                if kind == "Counter" and not name.endswith("_total"):
                    name += "_total"  # prometheus-client exposes counters with _total
                found[name] = kind.lower()
    return found


def known_metrics() -> dict[str, str]:
    return {**exported_metrics(), **{n: t for n, (t, _, _) in PROPOSED.items()}}


_NAME = re.compile(r"\blapse_[a-z0-9_]+")
_SERIES_SUFFIXES = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


def unknown_metric_references(expr: str) -> set[str]:
    """Metric names in a PromQL expression that neither the code nor PROPOSED defines."""
    known = known_metrics()
    series = set(known)
    for name, kind in known.items():
        series.update(name + s for s in _SERIES_SUFFIXES.get(kind, ()))
    return {name for name in _NAME.findall(expr) if name not in series}
