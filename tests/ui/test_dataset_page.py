"""The per-dataset page in headless Chromium on the real deployment: chart, schema, preview, cancel.

Screenshots go to ``docs/ui/`` with ``ACCEL_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_stack import E2E_SPICEPOD
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

PAGE = "/plugin/accelerated-datasets"
HOSTILE = "<script>window.__accel_xss = 1</script>"
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "ui"
    if os.environ.get("ACCEL_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "accel-ui-screenshots"
)
SPICEPOD = (
    E2E_SPICEPOD
    + """\
  - from: file:{src}/notes.csv
    name: notes
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
      refresh_check_interval: 1h
"""
)


@pytest.fixture(scope="module")
def notes(stack: Any) -> Iterator[Any]:
    """A dataset whose values include HTML, refreshed three times (a chart needs several points)."""
    (stack.source_dir / "notes.csv").write_text(
        f'id,note\n1,plain text\n2,"{HOSTILE}"\n3,<img src=x onerror="window.__accel_xss = 2">\n'
    )
    stack.write_spicepod(SPICEPOD)
    try:
        stack.wait_for_idle("accelerate_notes")
        for _ in range(2):
            assert stack.wait_for_refresh("notes", stack.trigger("notes")["dag_run_id"])["state"] == "success"
        yield stack
    finally:
        stack.write_spicepod(E2E_SPICEPOD)


def open_dataset(page: Any, name: str) -> Any:
    """From the Accelerated Datasets list, click the dataset: its page, in the plugin's frame."""
    page.goto(PAGE)
    frame = page.frame_locator('iframe[title="Accelerated Datasets"]')
    frame.locator(f'[data-testid="dataset-row"][data-name="{name}"] [data-testid="dataset-link"]').click()
    expect(frame.get_by_test_id("dataset-title")).to_have_text(name)
    return frame


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_dataset_page_shows_config_chart_schema_and_escaped_preview(admin_page, notes):
    """Opened from the list, the page shows the config, a bar per refresh, the schema and rows as text."""
    frame = open_dataset(admin_page, "notes")
    expect(frame.get_by_test_id("config-source")).to_have_text(f"file:{notes.source_dir}/notes.csv")
    expect(frame.get_by_test_id("config-mode")).to_have_text("full")
    expect(frame.get_by_test_id("config-engine")).to_have_text("duckdb")
    expect(frame.get_by_test_id("config-location")).to_have_text(str(notes.data_dir / "notes.duckdb"))
    expect(frame.get_by_test_id("config-schedule")).to_have_text("every 1h")
    expect(frame.get_by_test_id("fresh-lag")).to_contain_text("within interval")
    expect(frame.get_by_test_id("chart-bar")).to_have_count(3)
    expect(frame.get_by_test_id("schema-row")).to_have_text(["idBIGINT", "noteVARCHAR"])
    rows = frame.get_by_test_id("preview-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text(HOSTILE)  # shown as text ...
    expect(frame.locator("#preview-rows script")).to_have_count(0)  # ... never as markup
    expect(frame.locator("#preview-rows img")).to_have_count(0)
    page_frame = next(f for f in admin_page.frames if f.url.endswith("/accel/dataset?name=notes"))
    assert page_frame.evaluate("window.__accel_xss === undefined")
    expect(frame.get_by_test_id("cancel-button")).to_be_hidden()
    screenshot(admin_page, "dataset.png")


def _queue_paused_run(stack: Any) -> str:
    with stack.client() as client:
        assert client.patch("/api/v2/dags/accelerate_notes", json={"is_paused": True}).status_code == 200
        created = client.post("/api/v2/dags/accelerate_notes/dagRuns", json={"logical_date": None})
    assert created.status_code == 200, created.text
    return str(created.json()["dag_run_id"])


def test_viewer_sees_the_preview_but_no_cancel_button_and_admin_cancels(admin_page, viewer_page, notes):
    """With a refresh queued, a viewer sees rows but no cancel button; the admin's button cancels it."""
    run_id = _queue_paused_run(notes)
    try:
        viewer = open_dataset(viewer_page, "notes")
        expect(viewer.get_by_test_id("current-run")).to_contain_text(run_id)
        expect(viewer.get_by_test_id("preview-row")).to_have_count(3)
        expect(viewer.get_by_test_id("cancel-button")).to_be_hidden()

        admin = open_dataset(admin_page, "notes")
        expect(admin.get_by_test_id("current-run")).to_contain_text(run_id)
        screenshot(admin_page, "dataset-refresh-in-progress.png")
        admin.get_by_test_id("cancel-button").click()
        expect(admin.get_by_test_id("cancel-result")).to_contain_text("Refresh cancelled by admin")
        expect(admin.get_by_test_id("current-run")).to_have_text("none")
    finally:
        with notes.client() as client:
            client.patch("/api/v2/dags/accelerate_notes", json={"is_paused": False})
    status = notes.refresh_status("notes", run_id)
    assert status["state"] == "failed" and status["error"].startswith("Refresh cancelled by admin")


SNAPSHOT_SPICEPOD = (
    E2E_SPICEPOD.replace(
        "datasets:\n",
        "snapshots:\n  enabled: true\n  location: file://{src}/_snapshots/\ndatasets:\n",
        1,
    )
    + """\
  - from: file:{src}/snapped.csv
    name: snapped
    params:
      file_format: csv
    acceleration:
      enabled: true
      refresh_mode: full
      refresh_check_interval: 1h
      snapshots: enabled
      snapshots_creation_policy: always
"""
)


@pytest.fixture(scope="module")
def snapped(stack: Any) -> Iterator[Any]:
    """A dataset publishing a snapshot per refresh: its initial load and two refreshes, snapshots 1 to 3."""
    (stack.source_dir / "snapped.csv").write_text("id,note\n1,one\n2,two\n")
    stack.write_spicepod(SNAPSHOT_SPICEPOD)
    try:
        stack.wait_for_idle("accelerate_snapped")
        for _ in range(2):
            run_id = stack.trigger("snapped")["dag_run_id"]
            assert stack.wait_for_refresh("snapped", run_id)["state"] == "success"
        yield stack
    finally:
        stack.write_spicepod(E2E_SPICEPOD)


def test_snapshots_panel_lists_snapshots_and_only_a_writer_may_roll_back(admin_page, viewer_page, snapped):
    """The panel lists id, time, rows, size, checksum and the current one; a viewer has no rollback button."""
    viewer = open_dataset(viewer_page, "snapped")
    rows = viewer.get_by_test_id("snapshot-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_have_attribute("data-id", "3")
    expect(rows.nth(0)).to_have_attribute("data-current", "true")
    expect(rows.nth(0).get_by_test_id("snapshot-current")).to_have_text("current")
    with snapped.client() as client:
        listing = client.get("/v1/datasets/snapped/acceleration/snapshots").json()
    newest = listing[0]
    expect(rows.nth(0)).to_contain_text(newest["timestamp"])
    expect(rows.nth(0)).to_contain_text(newest["checksum"].removeprefix("sha256:")[:12])
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("2")
    expect(rows.nth(0).locator("td").nth(3)).to_have_attribute("title", f"{newest['size_bytes']:,} bytes")
    expect(viewer.get_by_test_id("rollback-button")).to_have_count(0)
    screenshot(viewer_page, "dataset-snapshots.png")


def test_rollback_from_the_panel_asks_first_then_moves_the_pointer(admin_page, snapped):
    """Roll back asks first (Keep current changes nothing); confirmed, snapshot 1 becomes the current one."""
    admin = open_dataset(admin_page, "snapped")
    expect(admin.get_by_test_id("snapshot-row")).to_have_count(3)
    first = admin.locator('[data-testid="snapshot-row"][data-id="1"]')
    expect(admin.get_by_test_id("rollback-button")).to_have_count(2)  # every snapshot but the current one
    first.get_by_test_id("rollback-button").click()
    expect(admin.get_by_test_id("rollback-question")).to_contain_text("back to snapshot 1")
    admin.get_by_test_id("rollback-cancel-button").click()
    expect(admin.get_by_test_id("rollback-confirm")).to_be_hidden()
    with snapped.client() as client:
        listing = client.get("/v1/datasets/snapped/acceleration/snapshots").json()
    assert [s["id"] for s in listing if s["is_current"]] == [3]

    first.get_by_test_id("rollback-button").click()
    admin.get_by_test_id("rollback-confirm-button").click()
    expect(admin.get_by_test_id("rollback-result")).to_have_text("Snapshot 1 is now current.")
    expect(first).to_have_attribute("data-current", "true")
    with snapped.client() as client:
        listing = client.get("/v1/datasets/snapped/acceleration/snapshots").json()
    assert [s["id"] for s in listing if s["is_current"]] == [1]
