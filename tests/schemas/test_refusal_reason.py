"""Dead-letter reasons: the field and its rule in words, never pydantic's pattern text nor the
value (the detector's DLQ header, through ``refusal_reason``)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas.events import parse_member_event, refusal_reason

EVENT = {
    "schema_version": 1,
    "event_id": "e1",
    "tenant_id": "t1",
    "member_id": "m-1",
    "site_id": "north",
    "kind": "gate_entry",
    "occurred_at": "2024-03-01T18:30:00+01:00",
}


def _reason(value: bytes | str) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_member_event(value)
    return refusal_reason(caught.value)


@pytest.mark.parametrize(
    ("patch", "starts"),
    [
        ({"member_id": "Ada Lovelace"}, "member_id: not a valid id"),
        ({"site_id": "north\u200bwing"}, "site_id: not a valid id"),
        ({"event_id": "e\u202e1"}, "event_id: must not contain control, invisible"),
        ({"device_id": "lock\x1b[31m"}, "device_id: must not contain control characters"),
        ({"kind": "teleport"}, "kind: "),
        ({"occurred_at": 1709314200}, "occurred_at: "),
    ],
)
def test_a_reason_names_the_field_and_its_rule_not_the_pattern_or_the_value(
    patch: dict[str, object], starts: str
) -> None:
    reason = _reason(json.dumps({**EVENT, **patch}))
    assert reason.startswith(starts), reason
    assert "\\x" not in reason and "[^" not in reason and "\n" not in reason, reason
    assert "Ada" not in reason and "Lovelace" not in reason
    assert len(reason) < 300, len(reason)
    # What pydantic itself says, for comparison: the pattern spelled out, the input quoted.
    if "member_id" in patch:
        with pytest.raises(ValidationError) as raw:
            parse_member_event(json.dumps({**EVENT, **patch}))
        assert len(str(raw.value)) > 1000 and "Ada Lovelace" in str(raw.value)


def test_several_faults_are_all_named_up_to_a_limit_and_not_json_says_so() -> None:
    bad = {**EVENT, "member_id": "a b", "site_id": "", "tenant_id": "t:1"}
    del bad["occurred_at"]
    reason = _reason(json.dumps(bad))
    assert sorted(part.split(":")[0] for part in reason.split("; ")) == [
        "member_id",
        "occurred_at",
        "site_id",
        "tenant_id",
    ]
    assert "occurred_at: Field required" in reason
    assert refusal_reason(_raised(bad), limit=2).endswith("; and 2 more")
    assert "JSON" in _reason(b'{"event_id": "x", "kind": "gate_entry"')
    assert refusal_reason(ValueError("first line\nsecond")) == "first line"


def _raised(value: dict[str, object]) -> ValidationError:
    try:
        parse_member_event(json.dumps(value))
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a refusal")
