"""Fixtures of the browser tests: headless Debian Chromium driven by Playwright, on the e2e Airflow.

The Airflow deployment is the e2e one (``airflow_stack`` of ``tests/e2e_stack.py``): when the e2e
tests ran first in this session their running stack is reused (``tests/conftest.py`` remembers it),
otherwise one is started here. The browser is Debian's ``chromium`` package (``scripts/browser.sh``
installs it); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2e_stack as e2e
import pytest
from servers import services_required

CHROMIUM = os.environ.get("ACCEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


ADMIN = e2e.ADMIN
VIEWER = e2e.VIEWER


@pytest.fixture(scope="session")
def stack(airflow_stack: Any) -> Any:
    """The deployment, with the initial loads of both datasets over."""
    for dag_id in ("accelerate_trips", "accelerate_events"):
        airflow_stack.wait_for_idle(dag_id)
    return airflow_stack


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import expect

    # Airflow's UI is a large single-page app: on a busy 2-core machine its first render takes a while.
    expect.set_options(timeout=60_000)
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        reason = f"!!! {CHROMIUM} is missing: run `bash scripts/browser.sh` (installs Debian's chromium)"
        if services_required():
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _signed_in(browser: Any, stack: Any, user: tuple[str, str]) -> Any:
    """A browser context signed in through Airflow's login form (one per user: it keeps the HTTP cache)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, base_url=stack.base_url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto("/")
    page.get_by_label("Username").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    page.close()
    return context


@pytest.fixture(scope="session")
def admin_context(browser: Any, stack: Any) -> Iterator[Any]:
    context = _signed_in(browser, stack, ADMIN)
    yield context
    context.close()


@pytest.fixture(scope="session")
def viewer_context(browser: Any, stack: Any) -> Iterator[Any]:
    context = _signed_in(browser, stack, VIEWER)
    yield context
    context.close()


@pytest.fixture
def admin_page(admin_context: Any) -> Iterator[Any]:
    page = admin_context.new_page()
    yield page
    page.close()


@pytest.fixture
def viewer_page(viewer_context: Any) -> Iterator[Any]:
    page = viewer_context.new_page()
    yield page
    page.close()
