"""What a client is told about an id, a label or a time the contract refuses: the field, and
the rule in words (not the pattern's list of code points)."""

from __future__ import annotations

import io

from history import read_history
from ingest.body import Rejection, validate_event
from schemas.history import RowError

BASE = {
    "event_id": "e1",
    "tenant_id": "t",
    "member_id": "m",
    "site_id": "s",
    "kind": "gate_entry",
    "occurred_at": "2026-01-05T18:00:00+01:00",
}


def _errors(**patch: object) -> list[dict[str, object]]:
    got = validate_event({**BASE, **patch}, ("events", 3))
    assert isinstance(got, Rejection) and got.reason == "invalid"
    return got.errors


def test_each_refusal_names_the_field_and_the_rule() -> None:
    for field, value in (("member_id", "a/b"), ("site_id", "s\u202e"), ("tenant_id", "..")):
        (err,) = _errors(**{field: value})
        assert err["field"] == f"events.3.{field}" and err["pointer"] == f"/events/3/{field}"
        assert str(err["message"]).startswith("not a valid id"), err
        assert "docs/ingest.md#ids" in str(err["message"])
    (err,) = _errors(member_id="at-risk")
    assert "reserved" in str(err["message"])
    (err,) = _errors(device_id="\x1b[2J")
    assert err["field"] == "events.3.device_id" and "control characters" in str(err["message"])
    (err,) = _errors(event_id="e\u200b")
    assert "invisible" in str(err["message"])
    (err,) = _errors(occurred_at=1767632400)
    assert err["field"] == "events.3.occurred_at" and "ISO 8601" in str(err["message"])
    (err,) = _errors(schema_version=True)
    assert err["field"] == "events.3.schema_version"


def test_a_history_row_error_gives_its_line_and_the_rule() -> None:
    text = (
        "member_id,site_id,occurred_at,kind\n"
        "m1,s1,2024-03-01T18:30:00+01:00,gate_entry\n"
        "a/b,s1,2024-03-01T18:30:00+01:00,gate_entry\n"
        "m\u200b2,s1,2024-03-01T18:30:00+01:00,gate_entry\n"
        "m3,s1,1709314200,gate_entry\n"
    )
    got = list(read_history(io.StringIO(text), "t", fmt="access"))
    assert [n for n, r in got if isinstance(r, RowError)] == [3, 4, 5]
    errors = {n: r for n, r in got if isinstance(r, RowError)}
    assert errors[3].reason == "invalid_value" and "member_id: not a valid id" in errors[3].message
    assert errors[4].reason == "invalid_value" and "member_id: not a valid id" in errors[4].message
    assert errors[5].reason == "bad_timestamp"
