"""The runner's parser against the contract's: the same events, the same rejections.

``detector.decode.decode_member_event`` must accept exactly what
``schemas.parse_member_event`` accepts, give equal events, and raise the same error (type
and message, which becomes the DLQ reason) on everything else. Valid values come from the
models themselves; invalid ones are valid values broken in the ways records break (fields
missing, extra or of the wrong type, a kind of the other family, escaped keys that fool a
look at the raw bytes, truncation, flipped bytes). ``decode_member_events`` must decode a
batch only when every value in it is an event, each the one the contract's parser gives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from detector.decode import decode_member_event, decode_member_events
from schemas import ACCESS_KINDS, MEMBERSHIP_KINDS, parse_member_event
from simulator import simulate_club

REASONS = ("price", "service", "moved", "other", "bogus")
ids = st.one_of(
    st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True),
    st.text(min_size=0, max_size=140),  # empty, too long, spaces, colons, any unicode
)
ZONES = [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
times = st.one_of(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(ZONES),
    ).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),  # naive: rejected
    st.sampled_from(["2026-01-05T10:00:00Z", "2026-01-05 10:00:00+01:00", "2026-13-01T00:00Z"]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from(["", "yesterday", None, 1.5, True]),
)


@st.composite
def event_dicts(draw: st.DrawFn) -> dict[str, Any]:
    access = draw(st.booleans())
    kinds = ACCESS_KINDS if access else MEMBERSHIP_KINDS
    d: dict[str, Any] = {
        "event_id": draw(st.one_of(st.text(min_size=1, max_size=20), st.text(max_size=140))),
        "tenant_id": draw(ids),
        "member_id": draw(ids),
        "occurred_at": draw(times),
        "kind": draw(st.one_of(st.sampled_from(kinds), st.sampled_from(ACCESS_KINDS))),
    }
    if draw(st.booleans()):
        d["schema_version"] = draw(st.sampled_from([1, 1, 2, "1", 1.0, True, None]))
    if access:
        d["site_id"] = draw(ids)
        for name in ("device_id", "source"):
            if draw(st.booleans()):
                d[name] = draw(st.one_of(st.none(), st.text(max_size=130)))
    else:
        if draw(st.booleans()):
            d["reason"] = draw(st.one_of(st.none(), st.sampled_from(REASONS)))
        if draw(st.booleans()):
            d["note"] = draw(st.one_of(st.none(), st.text(max_size=40), st.just('"site_id"')))
    return d


@st.composite
def broken(draw: st.DrawFn, d: dict[str, Any]) -> bytes:
    """One way a record goes wrong, applied to a (mostly) valid event."""
    d = dict(d)
    how = draw(st.integers(0, 9))
    if how == 0 and d:
        d.pop(draw(st.sampled_from(sorted(d))))
    elif how == 1:
        d[draw(st.sampled_from(["extra", "site_id", "reason", "note", "device_id"]))] = "x"
    elif how == 2:
        d["kind"] = draw(st.sampled_from(ACCESS_KINDS + MEMBERSHIP_KINDS + ("", "gate")))
    elif how == 3 and d:
        d[draw(st.sampled_from(sorted(d)))] = draw(
            st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.text())
        )
    text = json.dumps(d)
    if how == 4:  # an escaped key: the same JSON, other raw bytes
        text = text.replace('"site_id"', '"site\\u005fid"').replace('"kind"', '"\\u006bind"')
    elif how == 5:
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif how == 6:
        raw = bytearray(text.encode())
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    elif how == 7:  # duplicate keys: the last one counts, for both
        text = text[:-1] + ', "kind": "joined"}' if len(text) > 2 else text
    elif how == 8:
        text = draw(st.sampled_from(["", "null", "[]", "{}", "1", '"site_id"', "{"]))
    return text.encode()


def assert_same(raw: bytes | str | None) -> None:
    try:
        want = parse_member_event(raw)  # type: ignore[arg-type]
    except Exception as exc:
        expected: Exception | None = exc
    else:
        expected = None
    try:
        got = decode_member_event(raw)  # type: ignore[arg-type]
    except Exception as exc:
        assert expected is not None, f"rejected what the contract accepts: {raw!r}: {exc}"
        assert type(exc) is type(expected) and str(exc) == str(expected), raw
        return
    assert expected is None, f"accepted what the contract rejects: {raw!r}: {expected}"
    assert type(got) is type(want) and got == want, raw
    assert got.model_fields_set == want.model_fields_set
    assert got.occurred_at.utcoffset() == want.occurred_at.utcoffset()
    assert got.occurred_at.timestamp() == want.occurred_at.timestamp()


def test_simulated_events_decode_as_the_contract_parses_them() -> None:
    events, _ = simulate_club("club", datetime(2026, 1, 5, tzinfo=UTC), members=60, days=60)
    kinds = {e.kind for e in events}
    assert {"gate_entry", "joined", "cancelled"} <= kinds
    for e in events:
        raw = e.model_dump_json().encode()
        assert_same(raw)
        assert_same(raw.decode())
        assert decode_member_event(raw) == e


@settings(max_examples=1500, deadline=None)
@given(event_dicts())
@example({"event_id": "e", "tenant_id": "t", "member_id": "m", "occurred_at": 0, "kind": "joined"})
def test_same_result_on_generated_values(d: dict[str, Any]) -> None:
    raw = json.dumps(d)
    assert_same(raw.encode())
    assert_same(raw)


@settings(max_examples=1500, deadline=None)
@given(st.data(), event_dicts())
def test_same_rejections_on_broken_values(data: st.DataObject, d: dict[str, Any]) -> None:
    assert_same(data.draw(broken(d)))


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
@settings(max_examples=500, deadline=None)
def test_same_rejections_on_noise(raw: bytes | str) -> None:
    assert_same(raw)


def test_values_that_are_not_text() -> None:
    for raw in (None, bytearray(b"{}"), 5):
        assert_same(raw)  # type: ignore[arg-type]


def assert_same_batch(values: list[Any]) -> None:
    """A batch decodes only if every value is an event, each the contract's own."""
    wanted: list[Any] = []
    for raw in values:
        try:
            wanted.append(parse_member_event(raw))
        except Exception:
            wanted.append(None)
    got = decode_member_events(values)
    if any(w is None for w in wanted):
        assert got is None, values
        return
    assert got is not None and len(got) == len(values), values
    for g, w in zip(got, wanted, strict=True):
        assert type(g) is type(w) and g == w
        assert g.model_fields_set == w.model_fields_set
        assert g.occurred_at.utcoffset() == w.occurred_at.utcoffset()


def test_a_batch_of_simulated_events_decodes_as_the_contract_parses_them() -> None:
    events, _ = simulate_club("club", datetime(2026, 1, 5, tzinfo=UTC), members=60, days=60)
    values = [e.model_dump_json().encode() for e in events]
    assert decode_member_events(values) == events
    assert_same_batch(values[:50])
    assert_same_batch([v.decode() for v in values[:50]])
    assert_same_batch([])
    for bad in (None, b"", b'{"kind": "joined"}', values[0][:-1], values[0] + values[1]):
        assert_same_batch([*values[:3], bad, *values[3:6]])


@st.composite
def batches(draw: st.DrawFn) -> list[Any]:
    """Valid values, now and then a broken one, as bytes or text."""
    out: list[Any] = []
    for d in draw(st.lists(event_dicts(), max_size=6)):
        raw = draw(broken(d)) if draw(st.integers(0, 5)) == 0 else json.dumps(d).encode()
        out.append(raw.decode("utf-8", "replace") if draw(st.booleans()) else raw)
    return out


@settings(max_examples=800, deadline=None)
@given(batches())
def test_same_batch_results_on_generated_values(values: list[Any]) -> None:
    assert_same_batch(values)


def test_pieces_of_events_are_not_events() -> None:
    """Two events cut anywhere into two values: never decoded (parsing the batch's values
    joined would find the two events)."""
    events, _ = simulate_club("club", datetime(2026, 1, 5, tzinfo=UTC), members=5, days=10)
    one, two = (e.model_dump_json() for e in events[:2])
    both = f"{one},{two}"
    for cut in range(1, len(both)):
        assert_same_batch([both[:cut], both[cut:]])
    assert_same_batch([f"{one}, ", two])
    assert_same_batch([one, two])
