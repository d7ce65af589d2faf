"""The routes: Spice's ``/v1/datasets`` API over the refresh DAGs (mounted at ``/v1`` by the plugin)."""

from __future__ import annotations

import csv
import io
import json
import logging
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

# FastAPI resolves the route annotations at runtime: these imports must not be TYPE_CHECKING-only.
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.models.variable import Variable
from airflow.utils.session import create_session
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from airflow_provider_accel.plugin.api import operations, service
from airflow_provider_accel.plugin.api.auth import (
    RUN,
    authenticated_caller,
    may_edit,
    may_trigger,
    readable_dag_ids,
    requires_dag_listing,
    requires_dataset_access,
)
from airflow_provider_accel.plugin.api.datasets import current_spicepod, find_accelerated_dataset
from airflow_provider_accel.plugin.api.errors import REFRESH_INTERNAL_ERROR, ApiError, MessageErrorRoute
from airflow_provider_accel.plugin.api.schemas import (
    DATASET_CSV_COLUMNS,
    REFRESH_OVERRIDES_EXAMPLE,
    AccelerationDetails,
    ComponentStatusItem,
    DatasetItem,
    RefreshSqlResponse,
    RefreshStatusResponse,
    RefreshTriggeredResponse,
    error_responses,
)
from airflow_provider_accel.spicepod.model import RefreshMode, dag_id_for
from airflow_provider_accel.spicepod.overrides import (
    OverridesError,
    parse_overrides,
    refresh_sql_variable_key,
)

if TYPE_CHECKING:
    from airflow_provider_accel.spicepod.model import Dataset

log = logging.getLogger(__name__)

router = APIRouter(route_class=MessageErrorRoute, tags=["Datasets"])


_responses = partial(
    error_responses,
    described={409: "The dataset's DAG is paused", 503: "The dataset's DAG is not parsed yet; retry"},
)


async def _raw_body(request: Request) -> bytes:
    # Read here (async) so that the route itself can be sync and run its DB work in a thread.
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _json_body(raw: bytes) -> Any:
    """The body as JSON; an empty body is ``None`` (a plain refresh, as in Spice)."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
        raise ApiError(400, f"The request body is not valid JSON: {err}") from None
    except RecursionError:
        # Python's JSON decoder recurses once per nesting level: a body nested deeper than the
        # interpreter's recursion limit is hostile, never a refresh request.
        raise ApiError(400, "The request body is not valid JSON: it is nested too deeply.") from None


def _refresh_sql_request_body(schema_ref: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "description": "On-demand refresh request for a specific dataset.",
            "required": False,
            "content": {
                "application/json": {
                    "schema": {"$ref": f"#/components/schemas/{schema_ref}"},
                    "example": REFRESH_OVERRIDES_EXAMPLE,
                }
            },
        }
    }


@router.post(
    "/datasets/{name}/acceleration/refresh",
    operation_id="post_dataset_refresh",
    status_code=201,
    response_model=RefreshTriggeredResponse,
    summary="Trigger an on-demand refresh for an accelerated dataset.",
    description="Queues a run of the dataset's refresh DAG with the overrides as its conf (only `full` "
    "and `append` can be refreshed on demand). While an identical request is still queued, a new one "
    "joins its run. Poll `GET /v1/datasets/{name}/acceleration/refresh/{dag_run_id}` for the outcome.",
    responses={
        201: {
            "description": "Dataset refresh triggered successfully",
            "content": {
                "application/json": {
                    "example": {
                        "message": "Dataset refresh triggered for taxi_trips.",
                        "dataset": "taxi_trips",
                        "dag_id": "accelerate_taxi_trips",
                        "dag_run_id": "manual__2026-01-01T00:00:00.000000+00:00",
                        "state": "queued",
                        "joined": False,
                    }
                }
            },
        },
        **_responses(400, 401, 403, 404, 409, 500, 503),
    },
    openapi_extra={
        **_refresh_sql_request_body("RefreshOverrides"),
        "x-internal-error-message": REFRESH_INTERNAL_ERROR,
    },
)
def post_dataset_refresh(
    name: str,
    request: Request,
    raw_body: RawBody,
    user: Annotated[BaseUser, Depends(requires_dataset_access("POST", RUN))],
) -> JSONResponse:
    dataset = find_accelerated_dataset(name)
    try:
        overrides = parse_overrides(_json_body(raw_body), dataset.name)
    except OverridesError as err:
        raise ApiError(400, str(err)) from None
    operations.replace_active_refreshes(
        dataset, user, request.app.state.dag_bag
    )  # on_demand_refresh: replace
    result = service.trigger_refresh(
        dataset=dataset,
        conf=overrides.to_conf(),
        user_name=user.get_name(),
        dag_bag=request.app.state.dag_bag,
    )
    body = RefreshTriggeredResponse(
        message=f"Dataset refresh triggered for {name}.",
        dataset=dataset.name,
        dag_id=dataset.dag_id,
        dag_run_id=result.dag_run_id,
        state=result.state,  # type: ignore[arg-type]
        joined=result.joined,
    )
    return JSONResponse(status_code=201, content=body.model_dump())


@router.get(
    "/datasets/{name}/acceleration/refresh/{dag_run_id}",
    operation_id="get_dataset_refresh",
    response_model=RefreshStatusResponse,
    summary="The state and outcome of one triggered refresh.",
    responses=_responses(400, 401, 403, 404, 500),
)
def get_dataset_refresh(
    name: str,
    dag_run_id: str,
    session: SessionDep,
    user: Annotated[BaseUser, Depends(requires_dataset_access("GET", RUN))],
) -> dict[str, Any]:
    dataset = find_accelerated_dataset(name)
    return service.refresh_status(session, dataset, dag_run_id)


def _csv(header: tuple[str, ...], rows: list[list[Any]]) -> PlainTextResponse:
    """CSV as Spice writes it (Rust's csv crate: a header row, ``true``/``false``, text/plain)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["true" if v is True else "false" if v is False else v for v in row])
    return PlainTextResponse(out.getvalue())


def source_of(from_: str) -> str:
    """The connector of a ``from:`` as Spice's ``?source=`` filter sees it (``s3`` of ``s3://...``).

    Spice's rule: the text before the first ``:``; ``sink`` for an empty ``from``, ``spice.ai`` when
    there is no ``:`` at all.
    """
    connector, sep, _ = from_.partition(":")
    if sep:
        return connector
    return "sink" if from_ in ("", "sink") else "spice.ai"


def _refresh_note(dataset: Dataset) -> str | None:
    mode = dataset.acceleration.refresh_mode if dataset.acceleration is not None else None
    if mode is RefreshMode.CHANGES:
        return (
            "initial load only: refresh_mode changes applies a change-data-capture stream, which this "
            "accelerator does not consume; the data is what the first load fetched. Use full or append "
            "to keep it current."
        )
    if mode is RefreshMode.CACHING:
        return (
            "initial load only: refresh_mode caching is Spice's HTTP response cache, which this "
            "accelerator does not implement; the data is what the first load fetched. Use full or "
            "append to keep it current."
        )
    return None


@router.get(
    "/datasets",
    operation_id="get_datasets",
    response_model=list[DatasetItem],
    response_model_exclude_none=True,
    response_model_by_alias=True,
    summary="List the spicepod's datasets (Spice's shape).",
    description="With `status=true` each item also has `status` from the dataset's latest refresh run: "
    "`Initializing` (no run yet), `Refreshing` (queued or running), `Ready` (succeeded, and its file "
    "reads back), `Error` (failed, its file was damaged or lost since, or the dataset cannot be served: "
    "then `error` says why); `Disabled` for a dataset without "
    "acceleration; `refresh_note` for `changes`/`caching` datasets (initial load only). "
    "`source=<connector>` keeps the datasets whose `from:` uses that connector (`s3`, `postgres`, "
    "`file` ...), as Spice does; `format=csv` answers CSV with Spice's columns. Datasets whose refresh "
    "DAG the user may not read are left out. With `details=true` (an addition, used by the UI page) "
    "each accelerated dataset also has `acceleration`: its DAG, mode, schedule, whether the caller may "
    "refresh it, the run in progress and the latest finished refresh. With either, an accelerated "
    "dataset's `properties` (Spice's map of custom properties) name its `engine` and `location`.",
    responses={
        200: {"content": {"text/plain": {"example": "from,name,replication_enabled,acceleration_enabled\n"}}},
        **_responses(400, 401, 403, 500),
    },
)
def get_datasets(
    session: SessionDep,
    user: Annotated[BaseUser, Depends(requires_dag_listing())],
    status: Annotated[bool, Query(description="Include each dataset's status.")] = False,
    source: Annotated[
        str | None, Query(description="Only datasets whose `from:` connector is this (`s3`, `postgres`).")
    ] = None,
    format: Annotated[Literal["json", "csv"], Query(description="`json` (default) or `csv`.")] = "json",
    details: Annotated[
        bool, Query(description="Include each accelerated dataset's refresh details (not in Spice).")
    ] = False,
) -> Any:
    spicepod = current_spicepod()
    datasets = list(spicepod.datasets)
    errors = list(spicepod.dataset_errors)
    if source is not None:
        datasets = [d for d in datasets if source_of(d.from_) == source]
        errors = [e for e in errors if source_of(e.from_) == source]
    readable = readable_dag_ids(
        user, {d.dag_id for d in datasets if d.accelerated} | {dag_id_for(e.name) for e in errors}
    )
    visible = [d for d in datasets if not d.accelerated or d.dag_id in readable]
    visible_errors = [e for e in errors if dag_id_for(e.name) in readable]
    accelerated_ids = [d.dag_id for d in visible if d.accelerated]
    states = service.latest_run_states(session, accelerated_ids) if status else {}
    extra: dict[str, dict[str, Any]] = {}
    if details:
        accelerated = [d for d in visible if d.accelerated]
        may_refresh = {d.dag_id: may_trigger(user, d.dag_id) for d in accelerated}
        may_rollback = {d.dag_id: may_edit(user, d.dag_id) for d in accelerated}
        extra = service.acceleration_details(session, accelerated, may_refresh, may_rollback)
    items = []
    for d in visible:
        item = DatasetItem.model_validate(
            {
                "from": d.from_,
                "name": d.name,
                "replication_enabled": False,
                "acceleration_enabled": d.accelerated,
            }
        )
        if status:
            item.status = service.dataset_status(states.get(d.dag_id)) if d.accelerated else "Disabled"  # type: ignore[assignment]
            item.refresh_note = _refresh_note(d) if d.accelerated else None
            if item.status == "Ready" and (damaged := service.file_error(d)) is not None:
                item.status, item.error = "Error", damaged  # the file broke after its last refresh
        if d.dag_id in extra:
            item.acceleration = AccelerationDetails.model_validate(extra[d.dag_id])
        if (status or details) and d.accelerated:
            item.properties = service.engine_properties(d)
        items.append(item)
    for e in visible_errors:
        # Declared with acceleration but not servable: no DAG, so Spice's status for it is Error.
        item = DatasetItem.model_validate(
            {"from": e.from_, "name": e.name, "replication_enabled": False, "acceleration_enabled": True}
        )
        if status:
            item.status = "Error"
            item.error = e.reason
        items.append(item)
    if format == "csv":
        header = DATASET_CSV_COLUMNS + (("status",) if status else ())
        rows = [
            [i.from_, i.name, i.replication_enabled, i.acceleration_enabled] + ([i.status] if status else [])
            for i in items
        ]
        return _csv(header, rows)
    return items


@router.get(
    "/ready",
    operation_id="ready",
    tags=["Probes"],
    response_class=PlainTextResponse,
    summary="Readiness, as Spice's: `ready` once every accelerated dataset has loaded (or failed to).",
    description="Unauthenticated, like Spice's. 200 `ready` when every accelerated dataset's refresh DAG "
    "has a finished first run (succeeded or failed; a dataset that cannot be served counts as failed) "
    "and the metadata database answers; otherwise 503 `not ready`.",
    responses={
        200: {"content": {"text/plain": {"example": "ready"}}},
        503: {"content": {"text/plain": {"example": "not ready"}}},
    },
)
def get_ready() -> PlainTextResponse:
    try:
        accelerated = list(current_spicepod().accelerated_datasets)
        with create_session(scoped=False) as session:
            waiting = service.datasets_awaiting_first_load(session, accelerated)
    except Exception:
        log.exception("Readiness check failed: the spicepod or the metadata database cannot be read")
        return PlainTextResponse("not ready", status_code=503)
    if waiting:
        log.debug("Not ready: datasets without a finished first load: %s", ", ".join(waiting))
        return PlainTextResponse("not ready", status_code=503)
    return PlainTextResponse("ready")


@router.get(
    "/status",
    operation_id="status",
    tags=["Probes"],
    response_model=list[ComponentStatusItem],
    summary="Component status, in Spice's shape (`spice status`).",
    description="One entry per component: `http` (this api-server), `scheduler`, `dag-processor`, "
    "`triggerer`, `metadatabase`, from Airflow's own health check (`/api/v2/monitor/health`): `Ready` "
    "(healthy), `Error` (unhealthy), `Disabled` (never started). Any authenticated caller (API key or "
    "Airflow user); `format=csv` answers CSV (`name,endpoint,status`).",
    responses={
        200: {"content": {"text/plain": {"example": "name,endpoint,status\nhttp,127.0.0.1:8080,Ready\n"}}},
        **_responses(400, 401, 500),
    },
)
def get_status(
    request: Request,
    user: Annotated[BaseUser, Depends(authenticated_caller)],
    format: Annotated[Literal["json", "csv"], Query(description="`json` (default) or `csv`.")] = "json",
) -> Any:
    entries = service.component_statuses(request.url.netloc)
    if format == "csv":
        return _csv(
            ("name", "endpoint", "status"), [[e["name"], e["endpoint"], e["status"]] for e in entries]
        )
    return entries


@router.patch(
    "/datasets/{name}/acceleration",
    operation_id="patch_dataset_acceleration",
    response_model=RefreshSqlResponse,
    summary="Change the refresh SQL of a dataset for every later refresh.",
    description="Validated like any refresh_sql, persisted as an Airflow Variable (it survives restarts) "
    "and used by every later refresh, scheduled or on demand, unless a run's own override says otherwise. "
    "`null` or an empty string clears it (the spicepod's refresh_sql applies again).",
    responses=_responses(400, 401, 403, 404, 500),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/RefreshSqlBody"},
                    "example": {"refresh_sql": "SELECT * FROM taxi_trips WHERE passenger_count = 2"},
                }
            },
        }
    },
)
def patch_dataset_acceleration(
    name: str,
    raw_body: RawBody,
    user: Annotated[BaseUser, Depends(requires_dataset_access("PUT"))],
) -> RefreshSqlResponse:
    dataset = find_accelerated_dataset(name)
    body = _json_body(raw_body)
    if not isinstance(body, dict):
        raise ApiError(400, 'The request body must be a JSON object such as {"refresh_sql": "SELECT ..."}.')
    unknown = sorted(str(k) for k in body if k != "refresh_sql")
    if unknown:
        raise ApiError(400, f"Unknown field(s) {', '.join(unknown)}; the only field is refresh_sql.")
    if "refresh_sql" not in body:
        raise ApiError(400, "refresh_sql is required: the new SQL, or null to clear it.")
    try:
        # The shared validator; only refresh_sql is set, so only it is checked.
        sql = parse_overrides({"refresh_sql": body["refresh_sql"]}, dataset.name).refresh_sql
    except OverridesError as err:
        raise ApiError(400, str(err)) from None

    key = refresh_sql_variable_key(dataset.name)
    if sql is None:
        Variable.delete(key)
        log.info("refresh_sql of dataset %s cleared by %s", dataset.name, user.get_name())
        message = f"refresh_sql of dataset {name} cleared; later refreshes use the spicepod's."
    else:
        Variable.set(
            key,
            sql,
            description=f"refresh_sql of accelerated dataset {dataset.name}, set through "
            f"PATCH /v1/datasets/{dataset.name}/acceleration (airflow-provider-accel).",
        )
        log.info("refresh_sql of dataset %s set by %s: %s", dataset.name, user.get_name(), sql)
        message = f"refresh_sql of dataset {name} updated; later refreshes use it."
    with create_session(scoped=False) as session:
        service.record_audit(
            session,
            event="accel.patch_refresh_sql",
            dag_id=dataset.dag_id,
            owner=user.get_name(),
            extra={"dataset": dataset.name, "refresh_sql": sql, "via": "accel REST API"},
        )
    return RefreshSqlResponse(message=message, dataset=dataset.name, refresh_sql=sql)
