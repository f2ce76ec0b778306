from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from detector.config import ConfigError, build_policy, policies
from detector.core import BgNbdPolicy, CadencePolicy, FixedPolicy, RiskPolicy
from detector.core.hybrid import HybridPolicy
from plumbing.settings import Settings


def test_tenants_get_their_own_policy_and_others_the_default(tmp_path) -> None:
    path = tmp_path / "detector.json"
    path.write_text(
        json.dumps(
            {
                "default": {"policy": "cadence", "z": 2.0, "warnings": None},
                "tenants": {
                    "a": {"policy": "fixed", "absence_days": 30},
                    "b": {"policy": "bgnbd", "r": 0.3, "fallback": {"floor_days": 7}},
                },
            }
        )
    )
    policy_for = policies(Settings(detector_config=str(path)))
    assert policy_for("a") == FixedPolicy(absence_days=30)
    b = policy_for("b")
    assert isinstance(b, BgNbdPolicy) and b.r == 0.3 and b.fallback.floor_days == 7
    other = policy_for("zzz")
    assert isinstance(other, CadencePolicy) and other.z == 2.0 and other.warnings is None


def test_without_a_file_the_settings_choose() -> None:
    assert policies(Settings(policy="fixed", fixed_absence_days=12))("x") == FixedPolicy(12)
    # The default: the hybrid policy at its reasoned defaults (it does not flood).
    assert policies(Settings())("x") == HybridPolicy()
    assert policies(Settings(policy="risk"))("x") == RiskPolicy()


@pytest.mark.parametrize(
    "spec",
    [
        {"policy": "magic"},
        {"policy": "fixed", "days": 3},
        {"policy": "cadence", "warnings": {"x": 1}},
    ],
)
def test_bad_configuration_names_what_is_wrong(spec) -> None:
    with pytest.raises(ConfigError):
        build_policy(spec)


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ({"policy": "fixed", "absence_days": "45"}, "absence_days must be a number, not '45'"),
        ({"policy": "hybrid", "k": True}, "k must be a number"),
        ({"policy": "cadence", "z": float("inf")}, "z must be a number"),
        ({"policy": "risk", "absence": [1, "x"]}, "absence is a list of numbers"),
        ({"policy": "bgnbd", "fallback": 7}, "fallback: a cadence policy's parameters"),
        ({"policy": "cadence", "warnings": 1}, "warnings: an object of parameters"),
        (
            {"policy": "cadence", "warnings": {"failed_payments": 1}},
            "failed_payments must be true or false",
        ),
        ("fixed", "a policy is a JSON object"),
    ],
)
def test_a_parameter_of_the_wrong_type_is_refused_when_read(spec, said) -> None:
    """Not at the first member's timer, hours into a run."""
    with pytest.raises(ConfigError, match=re.escape(said)):
        build_policy(spec, "tenants.a")
    assert build_policy({"policy": "fixed", "absence_days": 45}) == FixedPolicy(45.0)


# The same refusals with the core interpreted (``LAPSE_PURE=1``: a machine without a C
# compiler), where the policies' field types are strings under ``from __future__ import
# annotations``; each line printed is the refusal of one spec, or what was built from it.
PURE_CHILD = """
import detector.core
from detector.config import ConfigError, build_policy
assert not detector.core.COMPILED
for spec in (
    {"policy": "fixed", "absence_days": "45"},
    {"policy": "hybrid", "k": True},
    {"policy": "risk", "threshold": "0.5"},
    {"policy": "risk", "absence": [1, "x"]},
    {"policy": "risk", "threshold": 1.5},
    {"policy": "cadence", "warnings": {"failed_payments": 1}},
):
    try:
        print("built", build_policy(spec, "tenants.a"))
    except ConfigError as exc:
        print(exc)
print(build_policy({"policy": "risk", "absence": [1, 2, 3, 4, 5, 6, 7, 8]}).absence)
"""


def test_the_refusals_hold_with_the_core_interpreted() -> None:
    child = subprocess.run(
        [sys.executable, "-c", PURE_CHILD],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "LAPSE_PURE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.splitlines() == [
        "tenants.a: absence_days must be a number, not '45'",
        "tenants.a: k must be a number, not True",
        "tenants.a: threshold must be a number, not '0.5'",
        "tenants.a: absence is a list of numbers, not [1, 'x']",
        "tenants.a: threshold must be a probability strictly between 0 and 1",
        "tenants.a.warnings: failed_payments must be true or false, not 1",
        "(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)",
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"policy": "fixed", "absence_days": 45}', "unknown key(s) ['absence_days', 'policy']"),
        ('{"tenant": {}}', "unknown key(s) ['tenant']"),
        ("[]", "the configuration is a JSON object"),
        ("{bad", "not a JSON file"),
        ('{"tenants": []}', '"tenants" an object of them'),
        ('{"tenants": {"a": {"policy": "hybrid", "k": "4"}}}', "tenants.a: k must be a number"),
    ],
)
def test_a_file_that_is_not_a_configuration_is_refused_with_its_name(tmp_path, text, said):
    """A policy object written at the top would otherwise be ignored without a word."""
    path = tmp_path / "detector.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: .*{re.escape(said)}"):
        policies(Settings(detector_config=str(path)))
