"""Ids are stored: the direct UUIDv5 must be ``uuid.uuid5``'s text, always."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from schemas.ids import uuid5


@given(st.uuids(), st.text())
def test_uuid5_is_the_standard_library_text(namespace: uuid.UUID, name: str) -> None:
    assert uuid5(namespace.bytes, name.encode()) == str(uuid.uuid5(namespace, name))


@given(st.uuids(), st.text(), st.text())
def test_a_prefix_of_the_name_may_travel_with_the_namespace(
    namespace: uuid.UUID, start: str, rest: str
) -> None:
    expected = str(uuid.uuid5(namespace, start + rest))
    assert uuid5(namespace.bytes + start.encode(), rest.encode()) == expected


def test_known_value() -> None:
    # RFC 9562 appendix A.4: UUIDv5 of "www.example.com" in the DNS namespace.
    assert uuid5(uuid.NAMESPACE_DNS.bytes, b"www.example.com") == (
        "2ed6657d-e927-568b-95e1-2665a8aea6a2"
    )
