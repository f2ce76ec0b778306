"""Schemathesis over a running service's own OpenAPI: every answer must be the documented one.

The response-conformance checks: no 5xx, a documented status, a documented content type,
the documented headers and a body matching the documented schema. Each operation is called
with each of the given credentials (a full key, a key short of scopes, none), so the 401 and
403 answers are checked as well as the 2xx, 404 and 422 ones.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import hypothesis
import schemathesis
from hypothesis import HealthCheck
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _run(
    operation: Any, base: str, headers: dict[str, str], examples: int, seen: list[int]
) -> None:
    """Call one operation ``examples`` times with ``headers``, checking every answer."""

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy())
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base, headers=headers)
        seen.append(response.status_code)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        case.validate_response(response, checks=CHECKS)

    check()


def conformance(base: str, runs: list[tuple[dict[str, str], int]]) -> tuple[int, int, set[int]]:
    """Run the checks; ``runs`` is (headers, examples per operation). Returns the number of
    operations, of calls, and the statuses seen (to show the errors were exercised)."""
    spec = httpx.get(f"{base}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    operations = [op.ok() for op in schema.get_all_operations()]  # type: ignore[union-attr]
    seen: list[int] = []
    start = time.monotonic()
    for headers, examples in runs:
        for operation in operations:
            _run(operation, base, headers, examples, seen)
    print(
        f"schemathesis: {len(seen)} calls over {len(operations)} operations in "
        f"{time.monotonic() - start:.1f} s, statuses {sorted(set(seen))}"
    )
    return len(operations), len(seen), set(seen)
