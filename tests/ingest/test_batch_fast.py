"""The batch fast path (:func:`ingest.body.valid_batch`) against the item-by-item path.

Whatever body the fast path accepts, the item-by-item path (JSON parsed, envelope checked,
each item validated on its own, as for every body before the fast path) must accept every
item of it and build identical events: same fields, value types, ``TzInfo``, fields set and
serialised bytes. Bodies are generated valid and near valid (wrong types, odd ids and
timestamps, extra and missing keys, duplicate keys in the JSON text, escapes).
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.body import Rejection, batch_items, valid_batch, validate_event
from plumbing.problems import Problem
from schemas import Event
from tests.support import same_event

MAX = 50

ACCESS = {
    "event_id": "e-1",
    "tenant_id": "club",
    "member_id": "m1",
    "site_id": "s1",
    "kind": "gate_entry",
    "occurred_at": "2024-03-01T17:30:00+01:00",
}
MEMBERSHIP = {
    "event_id": "e-2",
    "tenant_id": "club",
    "member_id": "m1",
    "kind": "cancelled",
    "occurred_at": "2024-03-01T17:30:00Z",
    "reason": "price",
}
FIELDS = sorted(
    {*ACCESS, *MEMBERSHIP, "schema_version", "device_id", "source", "note", "extra", "Kind"}
)
TIMES = [
    "2024-03-01T17:30:00+01:00",
    "2024-03-01T17:30:00.123456Z",
    "2024-03-01T17:30:00.1234567Z",
    "2024-03-01t17:30:00z",
    "2024-03-01 17:30:00Z",
    "20240301T173000+0100",
    "2024-W09-5T17:30:00+01:00",
    "2024-03-01T24:00:00Z",
    "2024-03-01T23:59:60Z",
    "2024-02-30T10:00:00Z",
    "2024-03-01T17:30:00+24:00",
    "2024-03-01T17:30:00-00:00",
    "2024-03-01T17:30:00+01:00:30",
    "2024-03-01T17:30:00",
    "2024-03-01",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "１９９９-01-01T00:00:00Z",
    1709310600,
    1709310600.5,
    "1709310600",
]
ODD: list[Any] = [
    None,
    True,
    1,
    1.0,
    0,
    2,
    "",
    " ",
    "a b",
    "a:b",
    "a\tb",
    "a\nb",
    "\u3000",
    "é",
    "x" * 128,
    "x" * 129,
    "x" * 2001,
    "gate_entry",
    "joined",
    "cancelled",
    "price",
    "moved",
    "nope",
    [],
    {},
    ["s1"],
    *TIMES,
]


@st.composite
def items(draw: st.DrawFn) -> list[tuple[str, Any]]:
    base: dict[str, Any] = dict(draw(st.sampled_from([ACCESS, MEMBERSHIP])))
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()) and name in base:
            del base[name]
        else:
            base[name] = draw(
                st.one_of(st.sampled_from(ODD), st.sampled_from(TIMES), st.text(max_size=6))
            )
    pairs = list(base.items())
    if pairs and draw(st.integers(0, 9)) == 0:  # a key twice in the JSON text
        name, _ = draw(st.sampled_from(pairs))
        pairs.append((name, draw(st.sampled_from(ODD))))
    return pairs


def _obj(pairs: list[tuple[str, Any]], ascii_only: bool) -> str:
    inner = ",".join(
        f"{json.dumps(k, ensure_ascii=ascii_only)}:{json.dumps(v, ensure_ascii=ascii_only)}"
        for k, v in pairs
    )
    return "{" + inner + "}"


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    ascii_only = draw(st.booleans())
    events = draw(st.lists(items(), min_size=0, max_size=4))
    listed = "[" + ",".join(_obj(e, ascii_only) for e in events) + "]"
    envelope = draw(st.sampled_from(["plain", "extra", "twice", "none"]))
    text = {
        "plain": '{"events":' + listed + "}",
        "extra": '{"events":' + listed + ',"more":1}',
        "twice": '{"events":[],"events":' + listed + "}",
        "none": listed,
    }[envelope]
    return text.encode()


def _item_by_item(body: bytes) -> list[Event | Rejection] | None:
    try:
        raw = pydantic_core.from_json(body)
        items_ = batch_items(raw, MAX)
    except (ValueError, Problem):
        return None
    return [validate_event(item, ("events", i)) for i, item in enumerate(items_)]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fast_path_accepts_only_what_items_accept_and_builds_the_same(body: bytes) -> None:
    fast = valid_batch(body, MAX)
    if fast is None:
        return
    slow = _item_by_item(body)
    assert slow is not None, body
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert not isinstance(b, Rejection), (body, b)
        assert same_event(a, b), (body, a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([ACCESS, MEMBERSHIP]), min_size=1, max_size=MAX))
def test_valid_batches_take_the_fast_path(events: list[dict[str, Any]]) -> None:
    body = json.dumps({"events": events}).encode()
    fast = valid_batch(body, MAX)
    assert fast is not None
    slow = _item_by_item(body)
    assert slow is not None
    assert len(fast) == len(slow) == len(events)
    for a, b in zip(fast, slow, strict=True):
        assert not isinstance(b, Rejection)
        assert same_event(a, b)


def test_over_the_count_limit_and_bad_bodies_take_the_item_path() -> None:
    assert valid_batch(json.dumps({"events": [ACCESS] * (MAX + 1)}).encode(), MAX) is None
    assert valid_batch(b'{"events": []}', MAX) is None
    assert valid_batch(b'{"events": [', MAX) is None
    bad = dict(ACCESS, member_id="a b")
    assert valid_batch(json.dumps({"events": [ACCESS, bad]}).encode(), MAX) is None
