"""Fixtures of the reliability tests.

The end-to-end tests use the project's one real Airflow deployment, ``airflow_stack`` (registered by
``tests/conftest.py`` from ``tests/e2e_stack.py``), and the in-process ones the api-server app
fixture ``api`` from ``tests/api/conftest.py``, which is loaded here by path and re-exported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_TESTS = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


api_conftest = _load("accel_tests_api_conftest", _TESTS / "api" / "conftest.py")

api = api_conftest.api
accel_spicepod = api_conftest.accel_spicepod
accel_dags = api_conftest.accel_dags
db_runs = api_conftest.db_runs
clean_runs = api_conftest.clean_runs
