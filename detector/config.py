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
import math
from pathlib import Path
from typing import Any, TypeVar, get_origin, get_type_hints

from detector.core import BgNbdPolicy, CadencePolicy, FixedPolicy, Policy, Warnings
from detector.core.engine import PolicyFor
from detector.core.hybrid import HybridPolicy
from detector.core.risk import RiskPolicy, tilted
from plumbing.settings import Settings


class ConfigError(ValueError):
    pass


P = TypeVar("P")


def _fields(cls: type, params: dict[str, Any], where: str) -> dict[str, Any]:
    """The parameters, each a field of ``cls`` and of its type: a number where the policy
    takes one (finite; a string there would only fail at the first member's timer), a list
    of numbers where it takes a tuple of them, a true/false where it takes one.

    The types are the resolved hints (``typing.get_type_hints``), not ``Field.type``: the
    core's modules use ``from __future__ import annotations``, so interpreted (``LAPSE_PURE``,
    or no C compiler) ``Field.type`` is the string ``"float"``, and every check would pass
    unseen (tests/detector/test_config.py runs them interpreted too)."""
    hints = get_type_hints(cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.name != "name" and f.init}
    unknown = set(params) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {sorted(unknown)} for {cls.__name__}")
    checked = dict(params)
    for key, value in params.items():
        kind = fields[key]
        if kind in (float, int):
            if not _number(value) or (kind is int and value != int(value)):
                what = "a whole number" if kind is int else "a number"
                raise ConfigError(f"{where}: {key} must be {what}, not {value!r}")
            checked[key] = kind(value)
        elif kind is tuple or get_origin(kind) is tuple:
            # (the policies' tuples hold numbers: the risk policy's slopes; compiled, mypyc
            # keeps only ``tuple`` of ``tuple[float, ...]``)
            if not isinstance(value, list) or not all(_number(x) for x in value):
                raise ConfigError(f"{where}: {key} is a list of numbers, not {value!r}")
            checked[key] = tuple(float(x) for x in value)
        elif kind is bool and not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, not {value!r}")
    return checked


def _built(cls: type[P], params: dict[str, Any], where: str) -> P:
    """``cls`` from the parameters, checked (``_fields``), then by the policy itself: its own
    refusals (a falling absence term, a threshold out of (0, 1)) said as the file's."""
    checked = _fields(cls, params, where)
    try:
        return cls(**checked)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from e


def _number(value: Any) -> bool:
    """A finite JSON number (``true`` is a bool, not 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _warnings(value: Any, where: str) -> Warnings | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.warnings: an object of parameters, or null for none")
    return _built(Warnings, dict(value), f"{where}.warnings")


def build_policy(spec: dict[str, Any], where: str = "policy") -> Policy:
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: a policy is a JSON object, like {{"policy": "hybrid"}}')
    params = dict(spec)
    kind = params.pop("policy", "cadence")
    if "warnings" in params:
        params["warnings"] = _warnings(params["warnings"], where)
    if kind == "fixed":
        return _built(FixedPolicy, params, where)
    if kind == "cadence":
        return _built(CadencePolicy, params, where)
    if kind == "bgnbd":
        if "fallback" in params:
            if not isinstance(params["fallback"], dict):
                raise ConfigError(f"{where}.fallback: a cadence policy's parameters, an object")
            fb = dict(params["fallback"])
            fb.pop("policy", None)
            params["fallback"] = _built(CadencePolicy, fb, f"{where}.fallback")
        return _built(BgNbdPolicy, params, where)
    if kind == "risk":
        tilt = params.pop("tilt", 0.0)
        if not _number(tilt) or tilt < 0:
            raise ConfigError(f"{where}: tilt must be a number, 0 or more, not {tilt!r}")
        policy = _built(RiskPolicy, params, where)
        if not tilt:
            return policy
        intercept, slopes = tilted(policy.intercept, policy.absence, float(tilt))
        return dataclasses.replace(policy, intercept=intercept, absence=slopes)
    if kind == "hybrid":
        return _built(HybridPolicy, params, where)
    raise ConfigError(f"{where}: unknown policy {kind!r} (fixed, cadence, bgnbd, risk, hybrid)")


def read_config(path: Path) -> dict[str, Any]:
    """The configuration file's document: a JSON object of ``default`` and ``tenants`` only.
    Anything else is refused with the file's name: a policy object written at the top
    (``{"policy": "fixed", ...}``) or a misspelt key would otherwise be ignored without a
    word, and every tenant would run the default."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a JSON file: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f'{path}: the configuration is a JSON object ({{"tenants": ...}})')
    unknown = sorted(set(doc) - {"default", "tenants"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {unknown} at the top: a configuration names the "
            '"default" policy and the "tenants" with their own, each a policy object'
        )
    if not isinstance(doc.get("default", {}), dict) or not isinstance(doc.get("tenants", {}), dict):
        raise ConfigError(f'{path}: "default" is a policy object, "tenants" an object of them')
    return doc


def policies(settings: Settings) -> PolicyFor:
    """The policy of each tenant: the config file's entry, else its default, else settings."""
    default: Policy = build_policy(
        {"policy": settings.policy}
        | ({"absence_days": settings.fixed_absence_days} if settings.policy == "fixed" else {})
    )
    per_tenant: dict[str, Policy] = {}
    if settings.detector_config:
        path = Path(settings.detector_config)
        doc = read_config(path)
        try:
            if "default" in doc:
                default = build_policy(doc["default"], "default")
            per_tenant = {
                tenant: build_policy(spec, f"tenants.{tenant}")
                for tenant, spec in doc.get("tenants", {}).items()
            }
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def policy_for(tenant_id: str) -> Policy:
        return per_tenant.get(tenant_id, default)

    return policy_for
