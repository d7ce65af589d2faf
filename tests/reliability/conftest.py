"""Fixtures of the reliability tests.

The end-to-end tests use the project's one real Airflow deployment, ``airflow_stack`` (from
``tests/e2e_stack.py``), and the in-process ones the api-server app fixture ``api`` (from
``tests/api_app.py``, shared with tests/api). Both are registered once by ``tests/conftest.py``, so
each is built once per session; re-importing them here would make pytest build a second instance.
"""
