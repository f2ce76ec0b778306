from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from schemas import AccessEvent, MembershipEvent, parse_member_event
from schemas.generate import JSON_DIR, documents, render


def test_checked_in_json_schemas_match_the_models() -> None:
    docs = documents()
    on_disk = {p.name for p in JSON_DIR.glob("*.json")}
    assert on_disk == set(docs), "run `python -m schemas.generate`"
    for name, doc in docs.items():
        assert (JSON_DIR / name).read_text() == render(doc), f"{name} drifted: regenerate"


def test_a_note_may_span_lines_but_holds_no_nul() -> None:
    base = {
        "event_id": "e1",
        "tenant_id": "t",
        "member_id": "m",
        "occurred_at": "2026-01-05T18:00:00+01:00",
        "kind": "cancelled",
    }
    event = parse_member_event(json.dumps({**base, "note": "moved away\n\tcall in May"}))
    assert isinstance(event, MembershipEvent) and event.note == "moved away\n\tcall in May"
    with pytest.raises(ValidationError, match="note"):
        parse_member_event(json.dumps({**base, "note": "a\u0000b"}))
    # Terminal escapes (ANSI CSI, in its 7- and 8-bit forms) and other controls: refused.
    for note in ("\x1b[31mred\x1b[0m", "a\x9bb", "a\x07b", "a\x08b", "a\x0cb", "a\x7fb"):
        with pytest.raises(ValidationError, match="note"):
            parse_member_event(json.dumps({**base, "note": note}))
    # Any script, emoji with their joiners and right-to-left text stay free text.
    text = "Umzug nach Köln — 👨\u200d👩\u200d👧 — نقل\r\n"
    event = parse_member_event(json.dumps({**base, "note": text}))
    assert isinstance(event, MembershipEvent) and event.note == text


@pytest.mark.parametrize(
    "member",
    [
        "a?b",
        "a#b",
        "a%2Fb",
        "a\\b",
        "100%",
        "...",
        ".a",
        "a.",
        "~x",
        "a+b;c=d&e",
        "Müller-Ödön",
        "会員7",
        "😀",
    ],
)
def test_awkward_but_addressable_ids_are_accepted(member: str) -> None:
    """Only what no route could carry is refused: tests/api/test_routes_ids.py addresses these."""
    base = {
        "event_id": "e1",
        "tenant_id": "t",
        "member_id": member,
        "site_id": member,
        "occurred_at": "2026-01-05T18:00:00+01:00",
        "kind": "gate_entry",
    }
    event = parse_member_event(json.dumps(base))
    assert event.member_id == member


def test_kind_selects_the_event_model() -> None:
    base = {
        "event_id": "e1",
        "tenant_id": "t",
        "member_id": "m",
        "occurred_at": "2026-01-05T18:00:00+01:00",
    }
    access = parse_member_event(json.dumps({**base, "kind": "gate_entry", "site_id": "s1"}))
    member = parse_member_event(json.dumps({**base, "kind": "cancelled", "reason": "price"}))
    assert isinstance(access, AccessEvent) and access.key == "t:m"
    assert isinstance(member, MembershipEvent) and member.reason == "price"


@pytest.mark.parametrize(
    "patch",
    [
        {"occurred_at": "2026-01-05T18:00:00"},  # no offset
        # Garbage device clocks: out of the contract's range (their deadlines, or the time
        # itself in UTC, would leave datetime's range later, in the detector's checkpoint).
        {"occurred_at": "0001-01-01T00:30:00+01:00"},
        {"occurred_at": "1899-12-31T23:59:59Z"},
        {"occurred_at": "9999-12-31T22:00:00Z"},
        # NUL and other control characters: PostgreSQL cannot store NUL, so one accepted
        # would fail every later write of that member, or the deduplication of a batch.
        {"event_id": "e\u0000"},
        {"member_id": "m\u0000"},
        {"site_id": "s\u0001"},
        {"device_id": "gate\n3"},
        {"source": "x\u007f"},
        {"kind": "teleported"},
        {"member_id": "a:b"},  # a colon would break the topic key
        {"unexpected": 1},
        # What the contract does not define: a number is not a time (pydantic would read it
        # as Unix seconds), a boolean is not a version (True == 1 in Python).
        {"occurred_at": 1767632400},
        {"occurred_at": 1767632400.5},
        {"occurred_at": "1767632400"},
        {"occurred_at": "2026-01-05"},
        {"schema_version": True},
        {"schema_version": "1"},
        # Invisible characters in ids: zero-width, bidi marks, overrides and isolates, the
        # BOM, soft hyphen, tags and private use (two ids that look alike would be two members).
        *({"member_id": f"m{c}1"} for c in "\u200b\u200d\u200e\u202e\u2066\u2069\ufeff\u00ad"),
        {"member_id": "m\ue000"},
        {"member_id": "m\U000f0000"},
        {"member_id": "m\U000e0041"},
        {"site_id": "s\u202e"},
        {"tenant_id": "t\u200b"},
        {"event_id": "e\u202e"},
        {"member_id": "m\x85"},  # C1 control (NEL)
        # Ids no URL path segment can carry (docs/ingest.md): refused, not alerted on.
        {"member_id": "a/b"},
        {"member_id": "at-risk"},  # GET /v1/members/at-risk is the at-risk list
        {"member_id": "."},
        {"member_id": ".."},
        {"site_id": "north/2"},
        {"site_id": ".."},
        # Terminal escapes in labels.
        {"device_id": "\x1b[2J"},
        {"source": "a\x9bb"},
    ],
)
def test_bad_events_are_rejected(patch: dict[str, object]) -> None:
    base = {
        "event_id": "e1",
        "tenant_id": "t",
        "member_id": "m",
        "site_id": "s",
        "occurred_at": "2026-01-05T18:00:00+01:00",
        "kind": "gate_entry",
        **patch,
    }
    with pytest.raises(ValidationError):
        parse_member_event(json.dumps(base))
