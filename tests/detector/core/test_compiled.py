"""The mypyc build of the core: the compiled and the interpreted core agree, and compiled
modules that no longer match their sources are refused (detector/core/buildinfo.py)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

import pytest

import detector.core
from detector.core import (
    BgNbdPolicy,
    CadencePolicy,
    Detector,
    FixedPolicy,
    HybridPolicy,
    RiskPolicy,
)
from detector.core.buildinfo import (
    MANIFEST,
    SourcesOnly,
    remove_compiled,
    stale,
    write_manifest,
)
from detector.core.replay import replay
from detector.core.winback import DEFAULT_PLAN
from simulator import simulate_club

ROOT = Path(__file__).resolve().parents[3]
CORE = Path(detector.core.__file__).parent
SO = EXTENSION_SUFFIXES[0]

# A child process with ``LAPSE_PURE=1`` runs the same sources interpreted.
PURE_CHILD = """
import json
import detector.core
assert not detector.core.COMPILED
from tests.detector.core.test_compiled import outcome
print(json.dumps(outcome()))
"""


def _jitter(event_id: str) -> float:
    """Up to a day, the same in every process (``hash`` of a str is salted per process)."""
    return float(zlib.crc32(event_id.encode()) % 86400)


def outcome() -> dict[str, Any]:
    """Alerts and final states of a simulated club under each policy (with win-backs), by
    replay (``offer_many``) and by the per-event calls with events up to the lateness late."""
    events, _ = simulate_club(
        "club", datetime(2025, 1, 6, tzinfo=UTC), members=150, days=240, seed=11
    )
    out: dict[str, Any] = {}
    for policy in (FixedPolicy(), CadencePolicy(), BgNbdPolicy(), RiskPolicy(), HybridPolicy()):
        d = Detector(policy, winback=lambda _t: DEFAULT_PLAN)
        alerts = list(replay(events, policy, 3600.0, flush=True, detector=d))
        # Per event, out of order by up to a day with the clock half a day behind the latest
        # event: some arrive after the clock passed them (applied at once, as history).
        late = Detector(policy, winback=lambda _t: DEFAULT_PLAN)
        shuffled = sorted(events, key=lambda e: e.occurred_at.timestamp() + _jitter(e.event_id))
        seen = -float("inf")
        per_event = []
        for e in shuffled:
            seen = max(seen, e.occurred_at.timestamp())
            per_event += late.offer(e)
            per_event += late.advance(seen - 43200.0)
        per_event += late.advance(seen + 200 * 86400.0)
        out[policy.name] = {
            "alerts": [a.model_dump(mode="json") for a in alerts],
            "states": sorted((s.to_dict() for s in d.members.values()), key=str),
            "late_alerts": sorted(json.dumps(a.model_dump(mode="json")) for a in per_event),
            "late_states": sorted((s.to_dict() for s in late.members.values()), key=str),
        }
    return out


@pytest.mark.skipif(not detector.core.COMPILED, reason="the core runs interpreted here")
def test_compiled_and_interpreted_core_raise_the_same_alerts_and_leave_the_same_states():
    child = subprocess.run(
        [sys.executable, "-c", PURE_CHILD],
        cwd=ROOT,
        env={**os.environ, "LAPSE_PURE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr
    pure = json.loads(child.stdout)
    compiled = json.loads(json.dumps(outcome()))
    for name in ("fixed", "cadence", "bgnbd", "risk", "hybrid"):
        assert compiled[name]["alerts"], name  # a comparison of something
        assert compiled[name] == pure[name], name


def test_compiled_reports_what_the_engine_module_is():
    compiled_engine = not detector.core.engine.__file__.endswith(".py")
    assert compiled_engine == detector.core.COMPILED


# -- the stale-build guard -------------------------------------------------------------------


def _tree(tmp_path: Path) -> Path:
    core = tmp_path / "pkg" / "core"
    core.mkdir(parents=True)
    for name in ("__init__", "engine", "store"):
        (core / f"{name}.py").write_text(f"# {name}\n")
    return core


def test_no_compiled_module_is_never_stale(tmp_path):
    assert stale(_tree(tmp_path)) == []


def test_compiled_modules_match_until_a_source_is_edited(tmp_path):
    core = _tree(tmp_path)
    write_manifest(core, ["engine", "store"])
    for name in ("engine", "store"):
        (core / f"{name}{SO}").write_bytes(b"")
    assert stale(core) == []
    (core / "store.py").write_text("# store, edited\n")
    assert stale(core) == ["store"]
    (core / "engine.py").unlink()
    assert stale(core) == ["engine", "store"]


def test_compiled_modules_without_a_manifest_are_stale(tmp_path):
    core = _tree(tmp_path)
    (core / f"engine{SO}").write_bytes(b"")
    assert stale(core) == ["engine"]
    (core / MANIFEST).write_text("not json")
    assert stale(core) == ["engine"]


def test_remove_compiled_removes_the_modules_and_the_shared_library_only(tmp_path):
    core = _tree(tmp_path)
    for path in (core / f"engine{SO}", core.parent / f"core__mypyc{SO}", core.parent / f"x{SO}"):
        path.write_bytes(b"")
    removed = remove_compiled(core)
    assert sorted(p.name for p in removed) == sorted([f"engine{SO}", f"core__mypyc{SO}"])
    assert (core.parent / f"x{SO}").exists() and (core / "engine.py").exists()


def test_sources_only_imports_the_py_file_beside_an_extension_module(tmp_path, monkeypatch):
    core = _tree(tmp_path)
    (core / "engine.py").write_text("WHERE = 'source'\n")
    (core / f"engine{SO}").write_bytes(b"not a shared object: importing it fails")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [SourcesOnly("pkg.core", core), *sys.meta_path])
    for name in ("pkg", "pkg.core", "pkg.core.engine"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    engine = importlib.import_module("pkg.core.engine")
    assert engine.WHERE == "source"
    assert SourcesOnly("pkg.core", core).find_spec("pkg.core.absent", None) is None
    assert SourcesOnly("pkg.core", core).find_spec("pkg.other", None) is None
