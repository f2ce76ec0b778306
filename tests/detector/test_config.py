from __future__ import annotations

import json

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
