"""Which policy each tenant runs, from settings and the detector configuration file.

``LAPSE_DETECTOR_CONFIG`` names a JSON file (``lapse calibrate`` writes one):

    {"default": {"policy": "cadence", "z": 2.5, "floor_days": 10},
     "tenants": {"club-a": {"policy": "fixed", "absence_days": 45},
                 "club-b": {"policy": "bgnbd", "r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4,
                            "fallback": {"floor_days": 7}}}}

Every key but ``policy`` is a parameter of that policy's dataclass; ``warnings`` is an
object of early-warning parameters or null to switch them off.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from detector.core import BgNbdPolicy, CadencePolicy, FixedPolicy, Policy, Warnings
from detector.core.engine import PolicyFor
from detector.core.hybrid import HybridPolicy
from detector.core.risk import RiskPolicy
from plumbing.settings import Settings


class ConfigError(ValueError):
    pass


def _fields(cls: type, params: dict[str, Any], where: str) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(cls) if f.name != "name" and f.init}
    unknown = set(params) - known
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {sorted(unknown)} for {cls.__name__}")
    return params


def _warnings(value: Any, where: str) -> Warnings | None:
    if value is None:
        return None
    return Warnings(**_fields(Warnings, dict(value), f"{where}.warnings"))


def build_policy(spec: dict[str, Any], where: str = "policy") -> Policy:
    params = dict(spec)
    kind = params.pop("policy", "cadence")
    if "warnings" in params:
        params["warnings"] = _warnings(params["warnings"], where)
    if kind == "fixed":
        return FixedPolicy(**_fields(FixedPolicy, params, where))
    if kind == "cadence":
        return CadencePolicy(**_fields(CadencePolicy, params, where))
    if kind == "bgnbd":
        if "fallback" in params:
            fb = dict(params["fallback"])
            fb.pop("policy", None)
            params["fallback"] = CadencePolicy(**_fields(CadencePolicy, fb, f"{where}.fallback"))
        return BgNbdPolicy(**_fields(BgNbdPolicy, params, where))
    if kind == "risk":
        if "absence" in params:
            params["absence"] = tuple(float(s) for s in params["absence"])
        try:
            return RiskPolicy(**_fields(RiskPolicy, params, where))
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from e
    if kind == "hybrid":
        try:
            return HybridPolicy(**_fields(HybridPolicy, params, where))
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from e
    raise ConfigError(f"{where}: unknown policy {kind!r} (fixed, cadence, bgnbd, risk, hybrid)")


def policies(settings: Settings) -> PolicyFor:
    """The policy of each tenant: the config file's entry, else its default, else settings."""
    default: Policy = build_policy(
        {"policy": settings.policy}
        | ({"absence_days": settings.fixed_absence_days} if settings.policy == "fixed" else {})
    )
    per_tenant: dict[str, Policy] = {}
    if settings.detector_config:
        doc = json.loads(Path(settings.detector_config).read_text())
        if "default" in doc:
            default = build_policy(doc["default"], "default")
        per_tenant = {
            tenant: build_policy(spec, f"tenants.{tenant}")
            for tenant, spec in doc.get("tenants", {}).items()
        }

    def policy_for(tenant_id: str) -> Policy:
        return per_tenant.get(tenant_id, default)

    return policy_for
