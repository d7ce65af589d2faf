"""Operators that refresh an accelerated dataset and apply its retention.

They stay thin: they resolve what to do for this run (the spicepod's settings, a PATCHed
refresh_sql, the DAG run's on-demand overrides), wait out jitter without holding a worker slot,
and hand the work to :class:`~airflow_provider_accel.accelerator.hook.DuckDBAcceleratorHook`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSkipException

from airflow_provider_accel import snapshots
from airflow_provider_accel.accelerator.layout import dataset_file
from airflow_provider_accel.accelerator.modes import RefreshMode, rules_for
from airflow_provider_accel.accelerator.pool import lock_wait
from airflow_provider_accel.exceptions import RefreshError, RefreshSqlError, SpicepodError
from airflow_provider_accel.operators.retry import SpiceRetryPolicy
from airflow_provider_accel.spicepod.durations import format_duration, parse_duration
from airflow_provider_accel.spicepod.overrides import (
    OverridesError,
    parse_overrides,
    refresh_sql_variable_key,
)
from airflow_provider_accel.spicepod.store import current_spicepod
from airflow_provider_accel.sql.refresh_sql import validate_refresh_sql

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_accel.accelerator.engines import AcceleratorHook
    from airflow_provider_accel.spicepod.model import Dataset

#: XCom key under which a failed refresh leaves its error message (read by the status API).
ERROR_XCOM_KEY = "error"


def dataset_asset(dataset_name: str) -> Asset:
    """The Airflow Asset updated by every successful refresh of a dataset."""
    return Asset(name=f"accel_{dataset_name.lower()}", uri=f"accel://datasets/{dataset_name.lower()}")


@dataclass(frozen=True)
class RefreshRequest:
    """What this run does, after the spicepod, a persisted refresh_sql and the overrides are merged."""

    mode: RefreshMode
    refresh_sql: str | None
    jitter_max_seconds: float
    on_demand: bool

    def to_kwargs(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "refresh_sql": self.refresh_sql,
            "jitter_max_seconds": self.jitter_max_seconds,
            "on_demand": self.on_demand,
        }

    @classmethod
    def from_kwargs(cls, data: dict[str, Any]) -> RefreshRequest:
        return cls(
            mode=RefreshMode(data["mode"]),
            refresh_sql=data.get("refresh_sql"),
            jitter_max_seconds=float(data.get("jitter_max_seconds") or 0),
            on_demand=bool(data.get("on_demand")),
        )


class _DatasetOperator(BaseOperator):
    """Shared plumbing: find the dataset in the spicepod and build the accelerator hook.

    It defines no ``__init__`` on purpose: Airflow wraps every operator class's ``__init__`` in
    ``apply_defaults``, which deep-copies the DAG's params each time, so one level less is a third
    less of that per task in every parse (a 1,000-dataset pod builds 1,333 of them).
    """

    dataset_name: str
    spicepod_path: str | None
    duckdb_conn_id: str | None
    data_dir: str | None

    def _init_dataset(
        self, dataset_name: str, spicepod_path: str | None, duckdb_conn_id: str | None, data_dir: str | None
    ) -> None:
        self.dataset_name = dataset_name
        self.spicepod_path = spicepod_path
        self.duckdb_conn_id = duckdb_conn_id
        self.data_dir = data_dir

    def get_dataset(self) -> Dataset:
        try:
            spicepod = current_spicepod(self.spicepod_path)
        except SpicepodError as err:
            raise AirflowFailException(str(err)) from err
        dataset = spicepod.dataset(self.dataset_name)
        if dataset is None and (unservable := spicepod.dataset_error(self.dataset_name)) is not None:
            raise AirflowFailException(unservable.reason)
        if dataset is None:
            raise AirflowFailException(
                f"Dataset {self.dataset_name} not found in the spicepod {spicepod.path}; "
                "it may have been removed since this DAG was parsed."
            )
        if not dataset.accelerated:
            raise AirflowFailException(f"Dataset {dataset.name} does not have acceleration enabled")
        return dataset

    def get_hook(self, dataset: Dataset | None = None) -> AcceleratorHook:
        """The hook of the dataset's engine (DuckDB when no dataset is given)."""
        # Imported here, not at the top: the DAG file imports this module on every parse, and the hook
        # brings DuckDB's relational API, pyarrow and the official DuckDB provider (~1 s of imports).
        if dataset is not None:
            from airflow_provider_accel.accelerator.engines import hook_for

            return hook_for(dataset, self.duckdb_conn_id, data_dir=self.data_dir)
        from airflow_provider_accel.accelerator.hook import DuckDBAcceleratorHook

        return DuckDBAcceleratorHook(self.duckdb_conn_id, data_dir=self.data_dir)


class AccelerationRefreshOperator(_DatasetOperator):
    """Refresh one accelerated dataset of the spicepod into its DuckDB file.

    For an on-demand run (a DAG run whose ``conf`` carries Spice's ``RefreshOverrides``:
    ``refresh_mode``, ``refresh_sql``, ``refresh_jitter_max``) the overrides win for that run only.
    Jitter is waited out in the triggerer, so no worker slot is held.

    :param dataset_name: the dataset's ``name`` in the spicepod (matched case-insensitively).
    :param spicepod_path: the spicepod; defaults to ``[accel] spicepod_path``.
    :param refresh_mode: ``full`` or ``append`` instead of the spicepod's mode (templated).
    :param refresh_sql: a refresh_sql instead of the spicepod's (templated).
    :param refresh_jitter_max: a duration such as ``10s`` (templated).
    :param duckdb_conn_id: connection with DuckDB settings; defaults to ``[accel] duckdb_conn_id``.
    :param data_dir: directory of dataset files; defaults to ``[accel] data_dir``.
    """

    template_fields: Sequence[str] = ("dataset_name", "refresh_mode", "refresh_sql", "refresh_jitter_max")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        dataset_name: str,
        spicepod_path: str | None = None,
        duckdb_conn_id: str | None = None,
        data_dir: str | None = None,
        refresh_mode: str | None = None,
        refresh_sql: str | None = None,
        refresh_jitter_max: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", SpiceRetryPolicy())
        kwargs.setdefault("outlets", [dataset_asset(dataset_name)] if dataset_name else [])
        super().__init__(**kwargs)
        self._init_dataset(dataset_name, spicepod_path, duckdb_conn_id, data_dir)
        self.refresh_mode = refresh_mode
        self.refresh_sql = refresh_sql
        self.refresh_jitter_max = refresh_jitter_max

    # -- what this run does ------------------------------------------------------------------

    def resolve_request(self, context: Context, dataset: Dataset) -> RefreshRequest:
        acceleration = dataset.acceleration
        assert acceleration is not None
        dag_run = context.get("dag_run")
        conf = dict(getattr(dag_run, "conf", None) or {})
        try:
            overrides = parse_overrides(conf, dataset.name)
        except OverridesError as err:
            raise AirflowFailException(f"Dataset {dataset.name}: invalid refresh overrides: {err}") from err
        on_demand = bool(conf) or str(getattr(dag_run, "run_type", "")).endswith("manual")

        mode_text = overrides.refresh_mode.value if overrides.refresh_mode else self.refresh_mode
        mode = RefreshMode(mode_text) if mode_text else acceleration.refresh_mode
        if on_demand and not rules_for(mode).serves_manual_runs:
            raise AirflowFailException(
                f"Dataset {dataset.name}: refresh_mode {mode.value} cannot be refreshed on demand; "
                "use full or append."
            )

        refresh_sql = overrides.refresh_sql or self._persisted_refresh_sql(dataset) or self.refresh_sql
        refresh_sql = refresh_sql or acceleration.refresh_sql
        if refresh_sql:
            try:
                validate_refresh_sql(refresh_sql, dataset.name)
            except RefreshSqlError as err:
                raise AirflowFailException(f"Dataset {dataset.name}: {err}") from err

        if overrides.refresh_jitter_max is not None:
            jitter = overrides.refresh_jitter_max
        elif self.refresh_jitter_max:
            try:
                jitter = parse_duration(self.refresh_jitter_max)
            except ValueError as err:
                raise AirflowFailException(f"Dataset {dataset.name}: refresh_jitter_max: {err}") from err
        else:
            jitter = acceleration.effective_jitter_max() or dt.timedelta(0)
        return RefreshRequest(
            mode=mode, refresh_sql=refresh_sql, jitter_max_seconds=jitter.total_seconds(), on_demand=on_demand
        )

    @staticmethod
    def _persisted_refresh_sql(dataset: Dataset) -> str | None:
        """The refresh_sql set through ``PATCH /v1/datasets/{name}/acceleration``, if any."""
        from airflow.sdk import Variable

        try:
            value = Variable.get(refresh_sql_variable_key(dataset.name), default=None)
        except Exception:  # no Variable store reachable (plain library use): nothing persisted
            return None
        return value or None

    # -- execution ---------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        dataset = self.get_dataset()
        request = self.resolve_request(context, dataset)
        # A task rescheduled while its file was busy (see _wait_for_writer) already waited its jitter.
        if request.jitter_max_seconds > 0 and not context.get("task_reschedule_count"):
            delay = random.uniform(0, request.jitter_max_seconds)
            self.log.info(
                "Dataset %s: waiting %.2fs of jitter (max %s) before refreshing, in the triggerer",
                dataset.name,
                delay,
                format_duration(dt.timedelta(seconds=request.jitter_max_seconds)),
            )
            self.defer(
                trigger=DateTimeTrigger(moment=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)),
                method_name="execute_after_jitter",
                kwargs={"request": request.to_kwargs()},
            )
        return self._refresh(context, dataset, request)

    def execute_after_jitter(
        self,
        context: Context,
        event: Any = None,
        request: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Resume after the jitter delay and refresh."""
        dataset = self.get_dataset()
        resolved = RefreshRequest.from_kwargs(request) if request else self.resolve_request(context, dataset)
        return self._refresh(context, dataset, resolved)

    def _wait_for_writer(self, context: Context, dataset: Dataset, path: Any, lock_timeout: float) -> None:
        """Reschedule (no worker, no pool slot held) while another refresh holds the file's writer lock.

        For ``lock_timeout`` in all from the first reschedule; after it the refresh fails at once with
        the transient SourceLockedError, which the retry policy retries later (accelerator.pool.lock_wait).
        """
        ti = context.get("ti")
        first = (
            ti.get_first_reschedule_date(context)
            if ti is not None and context.get("task_reschedule_count")
            else None
        )
        try:
            again = lock_wait(path, lock_timeout, first, dataset=dataset.name)
        except RefreshError as err:
            if ti is not None:
                ti.xcom_push(key=ERROR_XCOM_KEY, value=str(err))
            raise
        if again is not None:
            self.log.info(
                "Dataset %s: another refresh is writing %s; rescheduled until %s (holding no worker or "
                "pool slot meanwhile)",
                dataset.name,
                path,
                again.isoformat(timespec="seconds"),
            )
            raise AirflowRescheduleException(again)  # type: ignore[no-untyped-call]

    def _refresh(self, context: Context, dataset: Dataset, request: RefreshRequest) -> dict[str, Any]:
        acceleration = dataset.acceleration
        assert acceleration is not None
        from airflow_provider_accel.accelerator.engines import has_data

        hook = self.get_hook(dataset)
        path = dataset_file(dataset, hook.data_dir)
        if acceleration.refresh_mode is RefreshMode.SNAPSHOT:  # a read replica: never queries the source
            try:
                return self._finish(
                    context, snapshots.follow_snapshots(dataset, path, lock_timeout=hook.lock_timeout)
                )
            except RefreshError as err:
                context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=str(err))
                raise
        if not rules_for(request.mode).refetches:
            if has_data(hook, dataset):
                raise AirflowSkipException(
                    f"Dataset {dataset.name}: refresh_mode {request.mode.value} has nothing to re-fetch; "
                    "the initial load is done."
                )
            self.log.info(
                "Dataset %s: refresh_mode %s; running its initial full load",
                dataset.name,
                request.mode.value,
            )
            request = RefreshRequest(RefreshMode.FULL, request.refresh_sql, 0, request.on_demand)
        from airflow_provider_accel.accelerator.engines import local_file

        live_file = local_file(hook, dataset)
        if live_file is not None:  # a server engine's writers queue on its lock, bounded by lock_timeout
            self._wait_for_writer(context, dataset, live_file, hook.lock_timeout)
        self.log.info(
            "Refreshing dataset %s (%s%s) from %s",
            dataset.name,
            request.mode.value,
            ", on demand" if request.on_demand else "",
            dataset.from_,
        )
        from airflow_provider_accel.operators import metrics
        from airflow_provider_accel.operators.cancellation import discard_staging_on_termination

        self._lineage_request = (dataset, request.refresh_sql)
        try:
            # A cancel leaves no staging file: the engine's own file (a .sqlite one too).
            with discard_staging_on_termination(live_file):
                bootstrapped = snapshots.before_refresh(dataset, path, lock_timeout=hook.lock_timeout)
                result = hook.refresh(dataset, mode=request.mode, refresh_sql=request.refresh_sql)
        except RefreshError as err:
            metrics.emit_refresh_error(dataset.name)
            context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=str(err))
            raise
        except SpicepodError as err:  # e.g. an unsupported from: — a configuration error, not retried
            metrics.emit_refresh_error(dataset.name)
            context["ti"].xcom_push(key=ERROR_XCOM_KEY, value=str(err))
            raise AirflowFailException(str(err)) from err
        self._lineage_result = result
        metrics.emit_refresh_success(result)
        self.log.info("%s", result.message)
        summary = result.summary()
        run_id = getattr(context.get("dag_run"), "run_id", None)
        published = snapshots.after_refresh(
            dataset, path, lock_timeout=hook.lock_timeout, watermark=result.watermark, dag_run_id=run_id
        )
        if bootstrapped is not None or published is not None:
            summary["snapshot"] = {"bootstrap": bootstrapped, "publish": published}
        return self._finish(context, summary)

    def _finish(self, context: Context, summary: dict[str, Any]) -> dict[str, Any]:
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                context["outlet_events"][outlet].extra = dict(summary)
        return summary

    # -- OpenLineage (the provider's listener calls these; see operators/lineage.py) -------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Source in, accelerated table out, with schema, row count, size, SQL and watermark."""
        from airflow_provider_accel.operators.lineage import lineage_on_complete

        result = getattr(self, "_lineage_result", None)
        if result is None:  # skipped (nothing to re-fetch): no data moved
            return None
        return lineage_on_complete(self._lineage_request[0], result, self.data_dir)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """What the failed refresh read and meant to write; the listener adds the error."""
        from airflow_provider_accel.operators.lineage import lineage_on_failure

        requested = getattr(self, "_lineage_request", None)
        if requested is None:
            return None
        return lineage_on_failure(requested[0], requested[1], self.data_dir)


class AccelerationRetentionOperator(_DatasetOperator):
    """Delete accelerated rows older than ``retention_period`` (Spice's retention check)."""

    template_fields: Sequence[str] = ("dataset_name",)
    ui_color = "#fdf3e8"

    def __init__(
        self,
        *,
        dataset_name: str,
        spicepod_path: str | None = None,
        duckdb_conn_id: str | None = None,
        data_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retry_policy", SpiceRetryPolicy())
        super().__init__(**kwargs)
        self._init_dataset(dataset_name, spicepod_path, duckdb_conn_id, data_dir)

    def execute(self, context: Context) -> dict[str, Any]:
        dataset = self.get_dataset()
        result = self.get_hook(dataset).apply_retention(dataset)
        self.log.info(
            "Retention for dataset %s deleted %s rows older than %s; %s rows remain.",
            dataset.name,
            f"{result.deleted_rows:,}",
            result.cutoff,
            f"{result.total_rows:,}",
        )
        return result.summary()
