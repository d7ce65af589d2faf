"""Spice's own JavaScript SDK (``@spiceai/spice``, pinned in tests/js) against the real Airflow processes.

``node tests/js/spice_client.mjs`` makes one unchanged SDK call per run (``new SpiceClient({apiKey,
httpUrl})``, then ``refreshAcceleration`` / ``isSpiceReady`` / ``isSpiceHealthy``) against the
session's :func:`airflow_stack`. The module adds a dataset and a read-only and a read-write key
(``runtime.auth.api-key``) to the stack's spicepod, and restores the stack's spicepod when done.

Needs ``node`` and the SDK installed by ``scripts/node.sh``: without them the tests skip loudly, and
fail under ``ACCEL_REQUIRE_SERVICES=1`` (CI), like the server-backed tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from e2e_stack import E2E_SPICEPOD
from servers import services_required

pytestmark = pytest.mark.e2e

JS_DIR = Path(__file__).resolve().parents[1] / "js"
DRIVER = JS_DIR / "spice_client.mjs"
DATASET = "sdk_trips"
TIP_SQL = f"SELECT * FROM {DATASET} WHERE tip_amount > 10.0"


def _require_node() -> str:
    node = shutil.which("node")
    sdk = JS_DIR / "node_modules" / "@spiceai" / "spice" / "package.json"
    problem = None
    if node is None:
        problem = "node is not on PATH; install Node.js 20+"
    elif not sdk.exists():
        problem = f"{sdk} is missing; run scripts/node.sh"
    if problem is None:
        assert node is not None
        return node
    reason = f"!!! Spice's JS SDK cannot run: {problem}. These tests drive it against the api-server."
    if services_required():
        pytest.fail(reason, pytrace=False)
    # At collection: the session's Airflow stack is not started for tests that cannot run.
    pytest.skip(reason, allow_module_level=True)


NODE = _require_node()


class Sdk:
    """One ``node`` process per SDK call; the call's outcome is the driver's last stdout line."""

    def __init__(self, node: str, http_url: str) -> None:
        self.node = node
        self.http_url = http_url

    def call(self, operation: str, api_key: str | None = None, **args: Any) -> dict[str, Any]:
        payload = json.dumps({"httpUrl": self.http_url, "apiKey": api_key, **args})
        result = subprocess.run(
            [self.node, str(DRIVER), operation, payload],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return outcome


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {"ro": f"sdk-ro-{uuid4().hex}", "rw": f"sdk-rw-{uuid4().hex}"}


@pytest.fixture(scope="module")
def sdk_stack(airflow_stack: Any, keys: dict[str, str]) -> Any:
    for dag_id in ("accelerate_trips", "accelerate_events"):
        airflow_stack.wait_for_idle(dag_id)
    sdk = Sdk(NODE, airflow_stack.base_url)
    # Probed before the spicepod gains the dataset, and right after: its first load cannot have run.
    airflow_stack.write_spicepod(
        E2E_SPICEPOD
        + f"""\
  - from: file:{{src}}/trips.csv
    name: {DATASET}
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
runtime:
  auth:
    api-key:
      enabled: true
      keys:
        - {keys["ro"]}:ro
        - {keys["rw"]}:rw
"""
    )
    try:
        yield airflow_stack, sdk
    finally:
        airflow_stack.write_spicepod(E2E_SPICEPOD)


def _source_trips(stack: Any) -> list[tuple[int, int, float]]:
    lines = (stack.source_dir / "trips.csv").read_text().splitlines()[1:]
    return sorted((int(a), int(b), float(c)) for a, b, c in (line.split(",") for line in lines))


def _accelerated(stack: Any) -> list[tuple[Any, ...]]:
    from airflow_provider_accel.accelerator.reader import read_dataset
    from airflow_provider_accel.spicepod.loader import load_spicepod

    dataset = load_spicepod(stack.spicepod_path).dataset(DATASET)
    assert dataset is not None
    table = read_dataset(dataset, None, data_dir=stack.data_dir)
    return sorted(tuple(row.values()) for row in table.to_pylist())


def test_sdk_ready_is_false_before_the_first_load_and_true_after(
    sdk_stack: Any, keys: dict[str, str]
) -> None:
    """isSpiceReady() is false until the new dataset has loaded, then true; isSpiceHealthy() is true."""
    stack, sdk = sdk_stack
    assert sdk.call("healthy") == {"ok": True, "result": True}
    assert sdk.call("ready", keys["ro"]) == {"ok": True, "result": False}
    deadline = time.monotonic() + 240
    while not sdk.call("ready", keys["ro"])["result"]:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"never ready: the first load of {DATASET} did not finish\n{stack.log_tail()}"
            )
        time.sleep(2)
    stack.wait_for_idle(f"accelerate_{DATASET}")


def test_sdk_refresh_with_read_write_key(sdk_stack: Any, keys: dict[str, str]) -> None:
    """refreshAcceleration with a :rw key: 201, every source row loaded, the run triggered by the key id."""
    stack, sdk = sdk_stack
    outcome = sdk.call("refresh", keys["rw"], dataset=DATASET)
    assert outcome["ok"], outcome
    assert outcome["result"]["message"] == f"Dataset refresh triggered for {DATASET}."
    status = stack.wait_for_refresh(DATASET, outcome["result"]["dag_run_id"])
    assert status["state"] == "success", status
    assert _accelerated(stack) == _source_trips(stack)
    with stack.client() as client:
        run = client.get(
            f"/api/v2/dags/accelerate_{DATASET}/dagRuns/{outcome['result']['dag_run_id']}"
        ).json()
    assert run["triggering_user_name"].startswith("api-key:")
    assert keys["rw"] not in json.dumps(run)


def test_sdk_refresh_with_overrides(sdk_stack: Any, keys: dict[str, str]) -> None:
    """refreshAcceleration with refresh_sql and refresh_mode: DuckDB holds exactly the selected rows."""
    stack, sdk = sdk_stack
    outcome = sdk.call(
        "refresh", keys["rw"], dataset=DATASET, options={"refresh_sql": TIP_SQL, "refresh_mode": "full"}
    )
    assert outcome["ok"], outcome
    status = stack.wait_for_refresh(DATASET, outcome["result"]["dag_run_id"])
    assert status["state"] == "success", status
    expected = [r for r in _source_trips(stack) if r[2] > 10.0]
    assert 0 < len(expected) < len(_source_trips(stack))
    assert _accelerated(stack) == expected


def test_sdk_read_only_key_gets_spice_403(sdk_stack: Any, keys: dict[str, str]) -> None:
    """With a :ro key the SDK throws with 403 and Spice's message."""
    _, sdk = sdk_stack
    outcome = sdk.call("refresh", keys["ro"], dataset=DATASET)
    assert outcome["ok"] is False
    assert " 403 " in outcome["error"]
    assert "API key does not allow write access" in outcome["error"]


def test_sdk_wrong_key_gets_401(sdk_stack: Any, keys: dict[str, str]) -> None:
    """With a key that is not configured the SDK throws with 401, and the message never echoes the key."""
    _, sdk = sdk_stack
    wrong = f"wrong-{uuid4().hex}"
    outcome = sdk.call("refresh", wrong, dataset=DATASET)
    assert outcome["ok"] is False
    assert " 401 " in outcome["error"]
    assert wrong not in outcome["error"]
