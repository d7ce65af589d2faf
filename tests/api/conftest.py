"""The API tests' fixtures (``api``, ``accel_dags``, ``accel_spicepod``, ``db_runs``, ``clean_runs``).

They live in ``tests/api_app.py`` and are registered once for the whole session by ``tests/conftest.py``,
so the api-server app is built once even when tests/api and tests/reliability run together.
"""
