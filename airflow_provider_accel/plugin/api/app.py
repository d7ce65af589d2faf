"""The FastAPI app of the ``accel`` plugin, built by the plugin on the first request it gets."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.common.dagbag import create_dag_bag
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from airflow_provider_accel import __version__
from airflow_provider_accel.plugin.api.errors import install_error_handlers
from airflow_provider_accel.plugin.api.operations import router as operations_router
from airflow_provider_accel.plugin.api.routes import router
from airflow_provider_accel.plugin.api.schemas import RefreshOverrides, RefreshSqlBody
from airflow_provider_accel.plugin.api.snapshots import router as snapshots_router

#: Request bodies are parsed by the shared validator, so FastAPI does not see these models: they are
#: added to the OpenAPI components by hand, referenced from the routes' ``openapi_extra``.
_REQUEST_MODELS = (RefreshOverrides, RefreshSqlBody)

MOUNT_PATH = "/v1"


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            servers=[{"url": "/", "description": "The Airflow api-server"}],
        )
        # Paths as clients call them on the api-server (the contract's /v1/datasets/...), not
        # relative to the mount point.
        document["paths"] = {MOUNT_PATH + path: item for path, item in document.get("paths", {}).items()}
        # Request validation errors answer 400 {"message": ...} here, never FastAPI's 422.
        for item in document["paths"].values():
            for operation in item.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        for model in _REQUEST_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = document
    return app.openapi_schema


def create_app() -> FastAPI:
    app = FastAPI(
        title="Dataset acceleration API (Spice.ai-compatible)",
        description="Spice.ai's dataset refresh API served by Airflow: on-demand refreshes run as runs "
        "of each dataset's refresh DAG. Authenticate with a Spice API key (`X-API-Key`, from the "
        "spicepod's `runtime.auth.api-key` or `[accel] api_keys`; judged alone when present) or as for "
        "Airflow's own API (a JWT from `POST /auth/token` as `Authorization: Bearer ...`). "
        "`/v1/ready` and `/health` need neither.",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        # The document's paths already carry /v1 (see _openapi_document): no mount path in servers.
        root_path_in_servers=False,
    )
    # The api-server's own DagBag lives on its root app; a mounted app has its own state.
    app.state.dag_bag = create_dag_bag()
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(operations_router)
    app.include_router(snapshots_router)
    app.openapi = lambda: _openapi_document(app)  # type: ignore[method-assign]
    return app
