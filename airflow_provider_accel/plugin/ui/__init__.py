"""The Accelerated Datasets page of the Airflow UI: one static HTML+JS page, served by the plugin.

The page is an Airflow ``external_views`` entry (an iframe in the Airflow UI, same origin) and talks
to the plugin's REST API with the signed-in user's ``_token`` cookie, so it has no build step and
no server-side state of its own. See :mod:`airflow_provider_accel.plugin`.
"""
