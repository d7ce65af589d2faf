# The official Airflow image with this provider installed (used by docker-compose.yaml).
#
#   docker compose build
#
# The provider is installed with requirements.lock as constraints, so the image runs the same
# versions as the README's local install; apache-airflow is pinned to the image's own version so
# pip never up- or downgrades Airflow itself.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2
FROM ${AIRFLOW_IMAGE}

# Directories for the shared volumes, owned by the image's airflow user (UID 50000, GID 0) so
# that named volumes are created with the right owner on first use.
USER root
RUN mkdir -p /opt/accel/src /opt/accel/spicepod /opt/accel/data /opt/accel/templates \
    && chown -R airflow:0 /opt/accel
USER airflow

# Only what the wheel needs: no .venv, tests or local demo state end up in the image.
COPY --chown=airflow:0 pyproject.toml README.md requirements.lock /opt/accel/src/
COPY --chown=airflow:0 airflow_provider_accel /opt/accel/src/airflow_provider_accel
# The demo spicepod template; airflow-init renders it into the spicepod volume on first start.
COPY --chown=airflow:0 examples/demo/spicepod.yaml /opt/accel/templates/spicepod.yaml
# ... and the dataset it appends that is accelerated into the compose file's accel-postgres.
COPY --chown=airflow:0 examples/demo/spicepod.postgres.yaml /opt/accel/templates/spicepod.postgres.yaml

# AIRFLOW_VERSION is set by the base image. Extras: fab for the compose file's auth manager,
# postgres for datasets read from PostgreSQL.
RUN pip install --no-cache-dir \
        --constraint /opt/accel/src/requirements.lock \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/opt/accel/src[fab,postgres]"
