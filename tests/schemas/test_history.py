"""The history-file contract as data: the ids rows get (the reader's tests: tests/history/)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from schemas.history import HISTORY_NAMESPACE, csv_event_id

T = "club-a"


@given(st.lists(st.text(max_size=10), min_size=1, max_size=5))
def test_csv_event_id_is_the_documented_uuid5(parts: list[str]) -> None:
    name = "\x1f".join((T, "access", *parts))
    assert csv_event_id(T, "access", *parts) == str(uuid.uuid5(HISTORY_NAMESPACE, name))


def test_the_namespace_is_the_documented_one() -> None:
    """docs/history-csv.md publishes it: every re-imported row's id depends on it."""
    doc = (Path(__file__).parents[2] / "docs" / "history-csv.md").read_text()
    found = re.search(r"UUIDv5 \(namespace\s+`([0-9a-f-]{36})`\)", doc)
    assert found is not None and uuid.UUID(found[1]) == HISTORY_NAMESPACE
