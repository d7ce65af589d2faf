"""Pydantic models of the API's bodies, shaped like Spice's own (``RefreshOverrides``, ``MessageResponse``).

The request models document the API (OpenAPI) and nothing else: request bodies are validated by
:func:`airflow_provider_accel.spicepod.overrides.parse_overrides`, the one validator every entry point shares,
so that the 400 messages are the same here, in a DAG run conf and in the trigger form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from airflow_provider_accel.spicepod import fields

#: An example body, from the declared examples of the on-demand fields.
REFRESH_OVERRIDES_EXAMPLE: dict[str, Any] = {
    field.key: fields.on_demand(field).example for field in fields.on_demand_fields()
}

RefreshState = Literal["queued", "running", "success", "failed"]
DatasetStatus = Literal["Initializing", "Ready", "Refreshing", "Error", "Disabled"]


def _refresh_overrides_model() -> type[BaseModel]:
    """Spice's ``RefreshOverrides``, one optional property per on-demand field of the declarations."""
    declared = fields.on_demand_fields()
    properties: dict[str, Any] = {
        field.key: (
            fields.on_demand(field).api_type | None,
            Field(
                default=None,
                description=fields.on_demand(field).api_help,
                examples=[fields.on_demand(field).example],
            ),
        )
        for field in declared
    }
    model: type[BaseModel] = create_model(
        "RefreshOverrides",
        __config__=ConfigDict(
            title="RefreshOverrides",
            extra="forbid",
            json_schema_extra={"example": REFRESH_OVERRIDES_EXAMPLE},
        ),
        __doc__="[`RefreshOverrides`] specifies the configurable options for a individual run of a refresh "
        "task.",
        **properties,
    )
    return model


RefreshOverrides = _refresh_overrides_model()


class MessageResponse(BaseModel):
    """Every response of the API carries ``message``; every error body is exactly this."""

    model_config = ConfigDict(title="MessageResponse")

    message: str = Field(description="The message describing the result of the request")


ERROR_DESCRIPTIONS: Mapping[int, str] = {
    400: "Invalid request",
    401: "Not authenticated",
    403: "Not allowed to do this on the dataset's DAG",
    404: "Dataset not found",
    500: "Internal server error",
}


def error_responses(
    *codes: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error codes, each answered with a :class:`MessageResponse` body.

    ``described`` adds or rewords the descriptions a router means by a code (a 409 differs per route).
    """
    texts = {**ERROR_DESCRIPTIONS, **(described or {})}
    return {code: {"model": MessageResponse, "description": texts[code]} for code in codes}


class RefreshTriggeredResponse(MessageResponse):
    """201 of ``POST .../refresh``: Spice's message, plus the DAG run that serves the request."""

    model_config = ConfigDict(title="RefreshTriggeredResponse")

    dataset: str = Field(description="The dataset name as defined in the spicepod.")
    dag_id: str = Field(description="The refresh DAG of the dataset.")
    dag_run_id: str = Field(description="The DAG run serving this request; poll its status route.")
    state: RefreshState = Field(description="State of that run when the request was accepted.")
    joined: bool = Field(
        description="True when an identical request was still queued and this one joined its run."
    )


class RefreshStatusResponse(MessageResponse):
    """The state and outcome of one triggered refresh (one DAG run of the dataset's DAG)."""

    model_config = ConfigDict(title="RefreshStatusResponse")

    dataset: str
    dag_id: str
    dag_run_id: str
    state: RefreshState
    run_type: str | None = None
    conf: dict[str, Any] | None = Field(
        default=None, description="The overrides of this run (its DAG run conf)."
    )
    queued_at: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    mode: str | None = Field(default=None, description="Refresh mode the run used.")
    rows: int | None = Field(default=None, description="Rows loaded by the refresh.")
    bytes: int | None = Field(default=None, description="Bytes loaded by the refresh.")
    duration_ms: float | None = Field(default=None, description="Duration of the load in milliseconds.")
    watermark: str | int | float | None = Field(default=None, description="Append watermark after the run.")
    total_rows: int | None = Field(default=None, description="Rows in the accelerated table after the run.")
    error: str | None = Field(default=None, description="Why the refresh failed (failed runs only).")
    snapshot: dict[str, Any] | None = Field(default=None, description="Snapshot bootstrap and publish.")


class RunRef(BaseModel):
    """A refresh run that is queued or running."""

    model_config = ConfigDict(title="RunRef")

    dag_run_id: str
    state: RefreshState
    queued_at: str | None = None
    start_date: str | None = None


class AccelerationDetails(BaseModel):
    """Only with ``?details=true`` (an addition to Spice's shape, used by the UI page)."""

    model_config = ConfigDict(title="AccelerationDetails")

    dag_id: str = Field(description="The dataset's refresh DAG.")
    refresh_mode: str = Field(description="The configured refresh mode.")
    schedule: str = Field(
        description="`every <duration>` (refresh_check_interval), `cron <expr>` (refresh_cron) or "
        "`on demand` (one initial load, then on demand only)."
    )
    refresh_sql: str | None = Field(default=None, description="The spicepod's refresh_sql, if any.")
    can_refresh: bool = Field(description="Whether the calling user may trigger a refresh of it.")
    can_rollback: bool = Field(
        default=False, description="Whether the calling user may roll its snapshots back (edit its DAG)."
    )
    snapshots: bool = Field(
        default=False, description="Whether it publishes or follows acceleration snapshots."
    )
    current_run: RunRef | None = Field(default=None, description="The latest run, while queued or running.")
    last_refresh: RefreshStatusResponse | None = Field(
        default=None, description="The latest finished refresh (succeeded or failed), with its outcome."
    )


class DatasetItem(BaseModel):
    """One item of ``GET /v1/datasets``, in Spice's shape."""

    model_config = ConfigDict(title="DatasetItem", populate_by_name=True)

    from_: str = Field(alias="from", serialization_alias="from")
    name: str
    replication_enabled: bool = False
    acceleration_enabled: bool
    status: DatasetStatus | None = Field(
        default=None, description="Only with ?status=true: from the dataset's latest refresh."
    )
    error: str | None = Field(
        default=None,
        description="Only with ?status=true, for a dataset the spicepod declares but that cannot be "
        "served (status `Error`, no refresh DAG), or whose accelerated file was damaged or lost after its "
        "last refresh (status `Error`): what is wrong and what to do (not part of Spice's API).",
    )
    refresh_note: str | None = Field(
        default=None,
        description="Only with ?status=true, for `refresh_mode: changes` or `caching`: the dataset gets "
        "its initial load only, and why (not part of Spice's API).",
    )
    acceleration: AccelerationDetails | None = Field(
        default=None,
        description="Only with ?details=true, for accelerated datasets: schedule, permission and the "
        "latest refreshes (not part of Spice's API).",
    )
    properties: dict[str, Any] | None = Field(
        default=None,
        description="Spice's map of custom dataset properties. With ?status=true or ?details=true, for "
        "accelerated datasets: `engine` (`duckdb`, `sqlite`, `postgres`) and `location`, where the data "
        "lives (the file path, or `host:port/db.schema.table` for postgres; never a password), or "
        "`location_error` when it cannot be told (an Airflow connection that does not exist).",
    )


#: ``GET /v1/datasets?format=csv`` columns: Spice's, in its order (``status`` only with ?status=true).
DATASET_CSV_COLUMNS = ("from", "name", "replication_enabled", "acceleration_enabled")

ComponentStatus = Literal["Initializing", "Ready", "Disabled", "Error", "Refreshing"]


class ComponentStatusItem(BaseModel):
    """One item of ``GET /v1/status``, in Spice's shape (what ``spice status`` prints)."""

    model_config = ConfigDict(title="ConnectionDetails")

    name: str = Field(
        description="`http` (this api-server), `scheduler`, `dag-processor`, `triggerer`, `metadatabase`."
    )
    endpoint: str = Field(description="Where it listens; `N/A` for the Airflow processes without one.")
    status: ComponentStatus


class RefreshSqlBody(BaseModel):
    """Body of ``PATCH /v1/datasets/{name}/acceleration``."""

    model_config = ConfigDict(title="RefreshSqlBody", extra="forbid")

    refresh_sql: str | None = Field(
        description="The refresh SQL every later refresh of the dataset uses (scheduled or on demand, "
        "unless a run's own override says otherwise). null or an empty string clears it, so the "
        "spicepod's refresh_sql applies again."
    )


class RefreshSqlResponse(MessageResponse):
    """200 of ``PATCH /v1/datasets/{name}/acceleration``."""

    model_config = ConfigDict(title="RefreshSqlResponse")

    dataset: str
    refresh_sql: str | None = Field(description="The persisted refresh_sql; null when cleared.")
