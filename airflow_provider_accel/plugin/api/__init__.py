"""The Spice-compatible REST API served by the ``accel`` plugin on the Airflow api-server.

Nothing is imported here on purpose: the plugin builds the app lazily (see
:mod:`airflow_provider_accel.plugin`), and the modules below import Airflow's API server code.
"""
