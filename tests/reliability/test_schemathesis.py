"""Property-based API fuzzing with schemathesis against the plugin's own OpenAPI document (/v1/openapi.json).

Run in-process against Airflow's real api-server app (ASGI), authenticated as the admin, bounded
(a few examples per operation, positive and negative data): no 5xx, and every response conforms to
the document (status code, content type, body schema).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from ._helpers import report

MAX_EXAMPLES = 15


@pytest.mark.slow
def test_openapi_conformance(api: Any) -> None:
    """Generated requests for every operation: never a 5xx, every response matches the OpenAPI document."""
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", api.client.app)
    headers = api.headers("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4, [op.label for op in operations]
    calls: dict[str, int] = {}

    def fuzz(operation: Any) -> None:
        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            calls[operation.label] = calls.get(operation.label, 0) + 1
            # /v1/ready answers 503 "not ready" by design (Spice's readiness probe; its document says so).
            excluded = [not_a_server_error] if case.path == "/v1/ready" else []
            case.call_and_validate(headers=headers, excluded_checks=excluded)

        check()

    for operation in operations:
        fuzz(operation)
    report(
        "schemathesis", {"operations": len(operations), "calls": sum(calls.values()), "per_operation": calls}
    )
