"""The Airflow UI in headless Chromium: the Accelerated Datasets page and the refresh DAG's trigger form.

Real api-server, scheduler, dag-processor and triggerer (the e2e deployment); the tests sign in
through Airflow's login form and click as a person would. Screenshots go to ``docs/ui/`` with
``ACCEL_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from airflow_provider_accel.spicepod.overrides import OverridesError, parse_overrides

pytestmark = [pytest.mark.e2e, pytest.mark.processes]

PAGE = "/plugin/accelerated-datasets"
TIP_SQL = "SELECT * FROM trips WHERE tip_amount > 10.0"
BAD_SQL = "SELECT * FROM read_csv('/etc/passwd')"
RUN_TIMEOUT_MS = 150_000
#: The screenshots shown in the README are refreshed with ACCEL_UPDATE_SCREENSHOTS=1; otherwise a
#: test run leaves the working tree alone and writes them to a temporary directory.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "ui"
    if os.environ.get("ACCEL_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "accel-ui-screenshots"
)


def validator_message(body: dict[str, Any], dataset: str) -> str:
    with pytest.raises(OverridesError) as err:
        parse_overrides(body, dataset)
    return str(err.value)


def source_trips(stack: Any) -> list[list[str]]:
    return [line.split(",") for line in (stack.source_dir / "trips.csv").read_text().splitlines()[1:]]


def open_datasets_page(page: Any) -> Any:
    """Go to the plugin page in the Airflow UI; the page's frame, once its rows are there."""
    page.goto(PAGE)
    frame = page.frame_locator('iframe[title="Accelerated Datasets"]')
    expect(frame.locator('[data-testid="dataset-row"]').first).to_be_visible()
    return frame


def row(frame: Any, name: str) -> Any:
    return frame.locator(f'[data-testid="dataset-row"][data-name="{name}"]')


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def test_page_lists_the_datasets(admin_page, stack):
    """The page in Airflow's nav lists each dataset with its source, mode, schedule, status and DAG."""
    page = admin_page
    page.goto("/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Accelerated Datasets").click()
    expect(page).to_have_url(re.compile(r"/plugin/accelerated-datasets"))
    frame = open_datasets_page(page)
    trips = row(frame, "trips")
    expect(trips.get_by_test_id("source")).to_have_text(f"file:{stack.source_dir}/trips.csv")
    expect(trips.get_by_test_id("mode")).to_have_text("full")
    expect(trips.get_by_test_id("schedule")).to_have_text("on demand")
    expect(trips.get_by_test_id("status")).to_have_text("Ready")
    expect(trips.get_by_test_id("rows")).not_to_have_text("—")
    expect(trips.get_by_test_id("refresh-button")).to_be_enabled()
    expect(row(frame, "events").get_by_test_id("dag-link")).to_have_text("accelerate_events")
    screenshot(page, "datasets.png")
    # The DAG link opens the DAG in the Airflow UI itself, not inside the frame.
    trips.get_by_test_id("dag-link").click()
    expect(page).to_have_url(re.compile(r"/dags/accelerate_trips$"))


def test_refresh_with_override_sql(admin_page, stack):
    """Refresh with an override SQL from the page: progress until it finishes, then the new row count."""
    expected = sum(1 for r in source_trips(stack) if float(r[2]) > 10.0)
    assert 0 < expected < len(source_trips(stack))
    page = admin_page
    frame = open_datasets_page(page)
    row(frame, "trips").get_by_test_id("refresh-button").click()
    dialog = frame.get_by_test_id("refresh-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("refresh-mode").select_option("full")
    dialog.get_by_test_id("refresh-sql").fill(TIP_SQL)
    dialog.get_by_test_id("refresh-jitter").fill("1s")
    screenshot(page, "refresh-form.png")
    dialog.get_by_test_id("refresh-submit").click()
    progress = dialog.get_by_test_id("refresh-progress")
    expect(progress).to_contain_text("Dataset refresh triggered for trips.")
    expect(progress).to_contain_text(
        f"Refresh of dataset trips succeeded. Loaded {expected} rows", timeout=RUN_TIMEOUT_MS
    )
    screenshot(page, "refresh-done.png")
    dialog.get_by_test_id("refresh-close").click()
    expect(row(frame, "trips").get_by_test_id("rows")).to_have_text(str(expected))
    expect(row(frame, "trips").get_by_test_id("status")).to_have_text("Ready")


def test_bad_refresh_sql_shows_the_api_message(admin_page, stack):
    """A rejected refresh SQL shows the API's 400 message as returned, and no run is created."""
    before = stack.dag_run_count("accelerate_trips")
    with stack.client() as client:
        answer = client.post("/v1/datasets/trips/acceleration/refresh", json={"refresh_sql": BAD_SQL})
    assert answer.status_code == 400
    assert answer.json()["message"] == validator_message({"refresh_sql": BAD_SQL}, "trips")
    frame = open_datasets_page(admin_page)
    row(frame, "trips").get_by_test_id("refresh-button").click()
    dialog = frame.get_by_test_id("refresh-dialog")
    dialog.get_by_test_id("refresh-sql").fill(BAD_SQL)
    dialog.get_by_test_id("refresh-submit").click()
    expect(dialog.get_by_test_id("refresh-error")).to_have_text(answer.json()["message"])
    expect(dialog.get_by_test_id("refresh-progress")).to_be_hidden()
    assert stack.dag_run_count("accelerate_trips") == before


def test_viewer_sees_a_read_only_page(viewer_page, stack):
    """A viewer sees every dataset, and every Refresh button disabled."""
    frame = open_datasets_page(viewer_page)
    expect(frame.locator('[data-testid="dataset-row"]')).to_have_count(2)
    buttons = frame.get_by_test_id("refresh-button")
    for i in range(buttons.count()):
        expect(buttons.nth(i)).to_be_disabled()
    expect(frame.get_by_test_id("summary")).to_contain_text("read-only")
    screenshot(viewer_page, "datasets-viewer.png")


def open_trigger_form(page: Any, dag_id: str) -> Any:
    page.goto(f"/dags/{dag_id}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Run Parameters")).to_be_visible()
    return dialog


def latest_run(stack: Any, dag_id: str) -> dict[str, Any]:
    with stack.client() as client:
        response = client.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"order_by": "-id", "limit": 1})
    assert response.status_code == 200, response.text
    return response.json()["dag_runs"][0]


def test_trigger_form_with_a_chosen_mode(admin_page, stack):
    """The DAG's trigger form offers the mode as a drop-down; the run refreshes in that mode."""
    stack.write_events("ui_drop", range(100, 103))
    dialog = open_trigger_form(admin_page, "accelerate_events")
    expect(dialog.get_by_text("Refresh mode")).to_be_visible()
    expect(dialog.get_by_text("Optional filter for this run only")).to_be_visible()
    dialog.get_by_role("combobox").click()
    admin_page.get_by_role("option", name="append").click()
    screenshot(admin_page, "trigger-form.png")
    dialog.get_by_role("button", name="Trigger").click()
    expect(dialog).to_be_hidden()
    run = latest_run(stack, "accelerate_events")
    assert run["conf"]["refresh_mode"] == "append", run
    status = stack.wait_for_refresh("events", run["dag_run_id"])
    assert status["state"] == "success", status
    assert status["mode"] == "append"
    assert status["rows"] >= 3


def test_trigger_form_refuses_a_bad_refresh_sql(admin_page, stack):
    """An invalid refresh SQL in the trigger form is refused with the validator's message; no run."""
    before = stack.dag_run_count("accelerate_trips")
    dialog = open_trigger_form(admin_page, "accelerate_trips")
    dialog.locator("#element_refresh_sql").fill(BAD_SQL)
    dialog.get_by_role("button", name="Trigger").click()
    message = validator_message({"refresh_sql": BAD_SQL}, "trips")
    expect(dialog).to_contain_text(f"Invalid input for param refresh_sql: {message}")
    screenshot(admin_page, "trigger-form-error.png")
    dialog.locator("#element_refresh_sql").fill("")
    dialog.locator("#element_refresh_jitter_max").fill("soon")
    # Airflow's error toasts now cover the button: submit from the keyboard.
    dialog.get_by_role("button", name="Trigger").press("Enter")
    jitter = validator_message({"refresh_jitter_max": "soon"}, "trips")
    expect(dialog).to_contain_text(f"Invalid input for param refresh_jitter_max: {jitter}")
    assert stack.dag_run_count("accelerate_trips") == before


def test_page_needs_a_signed_in_user(stack):
    """Without Airflow's session the page's API calls are refused (the page itself holds no data)."""
    response = httpx.get(f"{stack.base_url}/v1/datasets", params={"details": "true"}, timeout=30)
    assert response.status_code == 401
