"""Schemathesis against ingest's own OpenAPI: every answer is the documented one (status,
content type, headers, body), with an admin key and with none."""

from __future__ import annotations

from tests.ingest.conftest import ThreadIngest
from tests.openapi_support import conformance


def test_every_answer_is_the_documented_one(ingest_in_thread: ThreadIngest) -> None:
    runs = [({"authorization": f"Bearer {ingest_in_thread.key}"}, 15), ({}, 4)]
    operations, calls, statuses = conformance(ingest_in_thread.base_url, runs)
    assert operations >= 5
    assert calls >= operations * 5
    assert {401, 422} <= statuses
