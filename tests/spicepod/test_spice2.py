"""Spice 2.x spicepods load as written: its keys and values, ``ref:`` datasets, per-dataset isolation."""

from __future__ import annotations

import logging
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod import fields, load_spicepod, loader, parse_spicepod
from airflow_provider_accel.spicepod.fields import SpiceVersion, Use
from airflow_provider_accel.spicepod.model import (
    AccelerationMode,
    IndexKind,
    OnConflict,
    OnSchemaChange,
    RefreshMode,
)

from ._builders import make_dataset, make_pod, parse_dataset, reject


def served_and_errors(*datasets: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    pod = parse_spicepod(make_pod(*datasets), strict=False)
    return [d.name for d in pod.datasets], {e.name: e.reason for e in pod.dataset_errors}


class TestSpice2Keys:
    """Keys and values Spice 2.x accepts are accepted; acted-on ones land in the model."""

    def test_version_v2(self) -> None:
        """version: v2 is a supported spicepod version."""
        assert parse_spicepod(make_pod(version="v2"), strict=True).version == "v2"

    @pytest.mark.parametrize("value", list(OnSchemaChange))
    def test_on_schema_change_parsed(self, value: OnSchemaChange) -> None:
        """on_schema_change takes Spice's five values into Dataset.on_schema_change (default block)."""
        assert parse_dataset(on_schema_change=value.value).datasets[0].on_schema_change is value
        assert parse_dataset().datasets[0].on_schema_change is OnSchemaChange.BLOCK

    def test_on_schema_change_invalid(self) -> None:
        """An unknown on_schema_change value is refused, listing Spice's values."""
        err = reject(make_pod(make_dataset(on_schema_change="ignore")))
        assert err.field == "on_schema_change" and "append_new_columns" in str(err)

    @pytest.mark.parametrize("mode", ["file_create", "file_update"])
    def test_file_create_and_update_modes(self, mode: str) -> None:
        """acceleration.mode file_create and file_update parse into AccelerationMode."""
        assert parse_dataset({"mode": mode}).datasets[0].acceleration.mode is AccelerationMode(mode)

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("write_mode", "write_back"),
            ("storage_profile", "ebs"),
            ("maintained_aggregates", [{"name": "daily", "sql": "SELECT 1"}]),
            ("snapshots_reset_expiry_on_load", "enabled"),
        ],
    )
    def test_acceleration_2x_keys_accepted_with_notice(self, key: str, value: Any) -> None:
        """Spice 2.x acceleration keys load and say, naming the key, that they are ignored and why."""
        pod = parse_dataset({key: value})
        [notice] = [n for n in pod.notices if f"acceleration.{key}" in n]
        assert "ignored" in notice and fields.ACCELERATION.get(key).notice in notice

    @pytest.mark.parametrize(("key", "value"), [("write_mode", "write_later"), ("storage_profile", "floppy")])
    def test_acceleration_2x_values_checked(self, key: str, value: str) -> None:
        """An ignored key with a documented value set still refuses a value Spice does not know."""
        err = reject(make_pod(make_dataset({key: value})))
        assert err.field == f"acceleration.{key}"

    @pytest.mark.parametrize(
        ("key", "value"),
        [("access", "read_write"), ("access", "read_write_create"), ("schema_inference", {})],
    )
    def test_dataset_2x_keys_accepted_with_notice(self, key: str, value: Any) -> None:
        """Dataset access (which replaced mode) and schema_inference load with a notice naming them."""
        pod = parse_dataset(**{key: value})
        assert any(n.startswith(f"Dataset taxi_trips: {key} is ignored") for n in pod.notices)

    def test_access_value_checked(self) -> None:
        """access only takes Spice's values."""
        assert reject(make_pod(make_dataset(access="write"))).field == "access"

    @pytest.mark.parametrize("action", ["upsert_dedup", "upsert_dedup_by_row_id"])
    def test_upsert_dedup_accepted(self, action: str) -> None:
        """on_conflict takes upsert_dedup and upsert_dedup_by_row_id (the engine applies them)."""
        acc = parse_dataset({"primary_key": "id", "on_conflict": {"id": action}}).datasets[0].acceleration
        assert acc.conflict_action is OnConflict(action)

    def test_several_drop_targets(self) -> None:
        """Several on_conflict targets are valid when every one is drop (the key and a unique index)."""
        acc = (
            parse_dataset(
                {
                    "primary_key": "hash",
                    "indexes": {"(number, timestamp)": "unique"},
                    "on_conflict": {"hash": "drop", "(number, timestamp)": "drop"},
                }
            )
            .datasets[0]
            .acceleration
        )
        assert acc.conflict_action is OnConflict.DROP and len(acc.on_conflict) == 2

    def test_several_targets_need_drop(self) -> None:
        """Several targets with an upsert among them are refused, saying drop is the exception."""
        err = reject(
            make_pod(
                make_dataset(
                    {
                        "primary_key": "hash",
                        "indexes": {"n": "unique"},
                        "on_conflict": {"hash": "upsert", "n": "drop"},
                    }
                )
            )
        )
        assert err.field == "acceleration.on_conflict" and "drop" in str(err)

    def test_composite_primary_key_without_parentheses(self) -> None:
        """primary_key 'a, b' is the composite key (a, b), and on_conflict may name it either way."""
        acc = (
            parse_dataset({"primary_key": "a, b", "on_conflict": {"(a, b)": "upsert"}})
            .datasets[0]
            .acceleration
        )
        assert acc.primary_key == ("a", "b") and acc.conflict_action is OnConflict.UPSERT
        acc = (
            parse_dataset({"primary_key": "(a, b)", "on_conflict": {"a, b": "upsert"}})
            .datasets[0]
            .acceleration
        )
        assert acc.conflict_action is OnConflict.UPSERT

    def test_retention_sql_without_period(self) -> None:
        """retention_sql alone is a complete retention policy, parsed into Acceleration.retention_sql."""
        acc = (
            parse_dataset(
                {"retention_check_enabled": True, "retention_sql": "DELETE FROM taxi_trips WHERE fare < 0"}
            )
            .datasets[0]
            .acceleration
        )
        assert acc.retention_sql == "DELETE FROM taxi_trips WHERE fare < 0" and acc.retention_period is None

    @pytest.mark.parametrize(
        ("sql", "fragment"),
        [
            ("DELETE FROM other WHERE fare < 0", "must be the dataset"),
            ("SELECT * FROM taxi_trips", "only a DELETE"),
            ("DELETE FROM taxi_trips WHERE fare IN (SELECT 1)", "subqueries"),
            ("DELETE FROM taxi_trips WHERE fare < 0; DROP TABLE taxi_trips", "single SQL statement"),
            ("DELETE FROM taxi_trips", "WHERE"),
        ],
    )
    def test_retention_sql_is_a_delete_filter_on_the_dataset(self, sql: str, fragment: str) -> None:
        """retention_sql must be DELETE FROM <dataset> WHERE <filter>, under refresh_sql's safety rules."""
        err = reject(make_pod(make_dataset({"retention_sql": sql})))
        assert err.field == "acceleration.retention_sql" and fragment in str(err)

    def test_indexes_parsed(self) -> None:
        """indexes map a column or '(a, b)' to enabled or unique."""
        acc = parse_dataset({"indexes": {"id": "unique", "(a, b)": "enabled"}}).datasets[0].acceleration
        assert acc.indexes == {"id": IndexKind.UNIQUE, "(a, b)": IndexKind.ENABLED}

    def test_indexes_kind_checked(self) -> None:
        """An index kind other than enabled/unique is refused."""
        assert reject(make_pod(make_dataset({"indexes": {"id": "btree"}}))).field == "acceleration.indexes.id"

    def test_time_column_last_modified(self) -> None:
        """time_column: last_modified (file sources' modification time) with append is accepted."""
        ds = parse_dataset({"refresh_mode": "append"}, time_column="last_modified").datasets[0]
        assert ds.time_column == "last_modified" and ds.acceleration.refresh_mode is RefreshMode.APPEND

    def test_snapshot_refresh_mode_needs_a_snapshot_location(self) -> None:
        """refresh_mode snapshot parses; without a snapshots block that dataset errors alone, saying why."""
        served, errors = served_and_errors(
            make_dataset({"refresh_mode": "snapshot"}), make_dataset(name="zones")
        )
        assert served == ["zones"]
        assert "needs the spicepod's top-level snapshots block" in errors["taxi_trips"]

    @pytest.mark.parametrize("engine", ["sqlite", "postgres"])
    @pytest.mark.parametrize("snapshot_keys", [{"snapshots": "enabled"}, {"refresh_mode": "snapshot"}])
    def test_snapshots_refused_on_sqlite_and_postgres(
        self, engine: str, snapshot_keys: dict[str, str]
    ) -> None:
        """Snapshots on engine sqlite or postgres: that dataset errors alone, naming the engine and fix."""
        params = {"pg_host": "db"} if engine == "postgres" else {}
        store = {"enabled": True, "location": "file:///tmp/snapshots/"}
        dataset = make_dataset({"engine": engine, "params": params, **snapshot_keys})
        pod = parse_spicepod(make_pod(dataset, make_dataset(name="zones"), snapshots=store), strict=False)
        errors = {e.name: e.reason for e in pod.dataset_errors}
        assert [d.name for d in pod.datasets] == ["zones"]
        assert f"not supported for engine {engine}" in errors["taxi_trips"]
        assert "use engine duckdb, or set acceleration.snapshots to disabled" in errors["taxi_trips"]


class TestDuckDBParams:
    """The documented DuckDB acceleration.params are validated (the accelerator acts on them)."""

    GOOD: dict[str, Any] = {
        "duckdb_memory_limit": "2GB",
        "duckdb_preserve_insertion_order": "false",
        "on_refresh_sort_columns": "pickup ASC, fare DESC",
        "on_refresh_recompute_statistics": "disabled",
        "on_full_refresh": "replace_file",
    }

    def test_documented_values_accepted_and_kept(self) -> None:
        """Valid values load and stay in params as written, for the engine."""
        assert parse_dataset({"params": self.GOOD}).datasets[0].acceleration.params == self.GOOD

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("duckdb_memory_limit", "lots"),
            ("duckdb_preserve_insertion_order", "sometimes"),
            ("on_refresh_sort_columns", "pickup SIDEWAYS"),
            ("on_refresh_recompute_statistics", "maybe"),
            ("on_full_refresh", "shred"),
        ],
    )
    def test_bad_values_refused(self, key: str, value: str) -> None:
        """A bad value is refused naming acceleration.params.<key> and what is allowed."""
        err = reject(make_pod(make_dataset({"params": {key: value}})))
        assert err.field == f"acceleration.params.{key}" and repr(value) in str(err)

    def test_sort_columns_not_with_primary_key(self) -> None:
        """on_refresh_sort_columns with primary_key is refused, as Spice refuses it."""
        err = reject(
            make_pod(make_dataset({"primary_key": "id", "params": {"on_refresh_sort_columns": "a"}}))
        )
        assert err.field == "acceleration.params"

    def test_unknown_param_noticed(self) -> None:
        """A param no DuckDB accelerator here reads is kept but noticed by name."""
        pod = parse_dataset({"params": {"my_tuning": "1"}})
        assert any("acceleration.params.my_tuning" in n for n in pod.notices)


class TestIsolation:
    """One dataset that cannot be served does not sink the pod (unless [accel] strict_spicepod)."""

    @pytest.mark.parametrize("engine", ["turso", "cayenne"])
    def test_other_engine_errors_alone(self, engine: str) -> None:
        """A dataset on another engine gets 'not supported yet'; the DuckDB dataset beside it is served."""
        served, errors = served_and_errors(make_dataset({"engine": engine}), make_dataset({}, name="zones"))
        assert served == ["zones"]
        assert f"engine {engine!r} is not supported yet" in errors["taxi_trips"]

    def test_strict_refuses_the_pod(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """[accel] strict_spicepod = true turns the same dataset into an error of the whole pod."""
        monkeypatch.setenv("AIRFLOW__ACCEL__STRICT_SPICEPOD", "true")
        with pytest.raises(SpicepodError, match="not supported yet"):
            parse_spicepod(make_pod(make_dataset({"engine": "turso"}), make_dataset(name="zones")))

    def test_bad_field_isolated(self) -> None:
        """A bad field errors its dataset with the field named; error records name, from and field."""
        pod = parse_spicepod(
            make_pod(make_dataset({"refresh_check_interval": "10x"}), make_dataset(name="zones")),
            strict=False,
        )
        [error] = pod.dataset_errors
        assert (error.name, error.from_, error.field) == (
            "taxi_trips",
            "s3://spiceai-demo-datasets/taxi_trips/2024/",
            "acceleration.refresh_check_interval",
        )
        assert pod.dataset_error("TAXI_TRIPS") is error and pod.dataset("taxi_trips") is None

    def test_unservable_connector_errors_with_registry_reason(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The connector registry's reason (unknown connector, missing extra) errors the dataset at load."""
        reason = "connector databricks is not served here; supported: file, s3, postgres"
        monkeypatch.setattr(
            loader, "unservable_reason", lambda from_: reason if from_.startswith("databricks") else None
        )
        served, errors = served_and_errors(
            make_dataset(**{"from": "databricks:cat.sch.t"}), make_dataset(name="zones")
        )
        assert served == ["zones"] and errors == {"taxi_trips": f"Dataset taxi_trips: {reason}"}


class TestRefDatasets:
    """``- ref: datasets/x`` reads datasets/x/dataset.yaml next to the spicepod, never outside it."""

    def write_pod(self, root: Path, ref: str) -> Path:
        pod = root / "spicepod.yaml"
        pod.write_text(f"version: v1\nkind: Spicepod\nname: refs\ndatasets:\n  - ref: {ref}\n")
        return pod

    def test_ref_resolved_relative_to_the_spicepod(self, tmp_path: Path) -> None:
        """The referenced dataset.yaml (or .yml) is loaded as if written inline."""
        (tmp_path / "datasets" / "trips").mkdir(parents=True)
        (tmp_path / "datasets" / "trips" / "dataset.yml").write_text(
            textwrap.dedent(
                """
                from: file:trips.parquet
                name: trips
                acceleration: {enabled: true, refresh_check_interval: 1h}
                """
            )
        )
        pod = load_spicepod(self.write_pod(tmp_path, "datasets/trips"), strict=True)
        [ds] = pod.datasets
        assert ds.name == "trips" and ds.acceleration.refresh_check_interval == timedelta(hours=1)

    @pytest.mark.parametrize("ref", ["../outside", "/etc", "datasets/../../outside"])
    def test_path_traversal_refused(self, tmp_path: Path, ref: str) -> None:
        """A ref leaving the spicepod's directory is refused, naming it."""
        root = tmp_path / "pod"
        root.mkdir()
        (tmp_path / "outside").mkdir()
        (tmp_path / "outside" / "dataset.yaml").write_text("from: file:x.parquet\nname: x\n")
        pod = load_spicepod(self.write_pod(root, ref), strict=False)
        [error] = pod.dataset_errors
        assert error.field == "ref" and "outside the spicepod's directory" in error.reason

    def test_symlink_out_refused(self, tmp_path: Path) -> None:
        """A ref through a symlink that points outside is refused too."""
        root = tmp_path / "pod"
        (root / "datasets").mkdir(parents=True)
        (tmp_path / "outside").mkdir()
        (tmp_path / "outside" / "dataset.yaml").write_text("from: file:x.parquet\nname: x\n")
        (root / "datasets" / "x").symlink_to(tmp_path / "outside")
        [error] = load_spicepod(self.write_pod(root, "datasets/x"), strict=False).dataset_errors
        assert "outside the spicepod's directory" in error.reason

    def test_missing_ref_says_which_file(self, tmp_path: Path) -> None:
        """A ref without its dataset.yaml errors that dataset, naming the file to create."""
        [error] = load_spicepod(self.write_pod(tmp_path, "datasets/none"), strict=False).dataset_errors
        assert "dataset.yaml" in error.reason and error.name == "datasets/none"


class TestDeclarations:
    """The field tables are the single source the other entry points derive from."""

    def test_every_ignored_field_has_a_notice(self) -> None:
        """An ignored key always says why it has no effect."""
        for section in fields.SECTIONS:
            for field in section:
                assert field.use is Use.ACTED_ON or field.notice, (section.name, field.key)

    def test_spice_2x_keys_are_marked(self) -> None:
        """The keys Spice 2.x introduced are declared as such."""
        v2 = {f.key for s in fields.SECTIONS for f in s if f.since is SpiceVersion.V2}
        assert {"access", "on_schema_change", "schema_inference", "write_mode", "storage_profile"} <= v2
        assert {"maintained_aggregates", "snapshots_reset_expiry_on_load"} <= v2

    def test_overrides_api_model_and_form_follow_the_declarations(self) -> None:
        """Override parser, API model and trigger form offer exactly the declared on-demand fields."""
        from airflow_provider_accel.dags.factory import trigger_params
        from airflow_provider_accel.plugin.api.schemas import RefreshOverrides
        from airflow_provider_accel.spicepod.overrides import OVERRIDE_FIELDS

        declared = [f.key for f in fields.on_demand_fields()]
        assert list(OVERRIDE_FIELDS) == declared == ["refresh_sql", "refresh_mode", "refresh_jitter_max"]
        assert list(RefreshOverrides.model_fields) == declared
        assert list(trigger_params(parse_dataset({}).datasets[0])) == declared

    def test_acted_on_fields_are_model_attributes(self) -> None:
        """Every acted-on dataset and acceleration field has its model attribute."""
        from airflow_provider_accel.spicepod.model import Acceleration, Dataset

        for section, model in ((fields.DATASET, Dataset), (fields.ACCELERATION, Acceleration)):
            for field in section.acted_on():
                assert field.attribute in model.__dataclass_fields__, field.key


def test_initial_load_only_modes_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """changes and caching datasets are logged by the DAG file as an initial load only, with why."""
    from airflow_provider_accel.dags.factory import log_spicepod

    pod = parse_spicepod(
        make_pod(
            make_dataset({"refresh_mode": "changes"}, name="cdc"),
            make_dataset({"refresh_mode": "caching"}, name="cache"),
            make_dataset({"engine": "turso"}, name="bad"),
        ),
        strict=False,
    )
    with caplog.at_level(logging.INFO, logger="airflow_provider_accel.dags.factory"):
        log_spicepod(pod)
    messages = [r.getMessage() for r in caplog.records]
    assert any("cdc" in m and "initial load only" in m and "change feed" in m for m in messages)
    assert any("cache" in m and "initial load only" in m and "serves no queries" in m for m in messages)
    assert any("bad" in m and "gets no DAG" in m and "turso" in m for m in messages)


class TestFormerlyPendingKeys:
    """Keys the engine now applies load without an "accepted but not acted on" notice."""

    @pytest.mark.parametrize(
        ("dataset_keys", "acceleration_keys", "path"),
        [
            ({"on_schema_change": "append_new_columns"}, {}, "on_schema_change"),
            ({}, {"indexes": {"id": "unique"}}, "acceleration.indexes"),
            (
                {},
                {"params": {"on_refresh_sort_columns": "id"}},
                "acceleration.params.on_refresh_sort_columns",
            ),
            ({}, {"params": {"on_full_refresh": "replace_file"}}, "acceleration.params.on_full_refresh"),
            ({}, {"params": {"on_full_refresh": "checkpoint_file"}}, "acceleration.params.on_full_refresh"),
            ({}, {"params": {"duckdb_preserve_insertion_order": "true"}}, "duckdb_preserve_insertion_order"),
            (
                {},
                {"params": {"on_refresh_recompute_statistics": "disabled"}},
                "on_refresh_recompute_statistics",
            ),
            (
                {},
                {"retention_check_enabled": True, "retention_sql": "DELETE FROM taxi_trips WHERE id < 0"},
                "acceleration.retention_sql",
            ),
        ],
    )
    def test_acted_on_key_has_no_pending_notice(
        self, dataset_keys: dict[str, Any], acceleration_keys: dict[str, Any], path: str
    ) -> None:
        """Setting such a key loads the dataset, and no notice names it as not acted on."""
        raw = make_dataset({"enabled": True, **acceleration_keys}, **dataset_keys)
        pod = parse_spicepod(make_pod(raw), strict=True)
        assert pod.datasets, pod.dataset_errors
        assert not any(path in n for n in pod.notices), pod.notices

    def test_on_full_refresh_values_are_spices(self) -> None:
        """on_full_refresh takes Spice's reuse_file, replace_file and checkpoint_file, and refuses others."""
        err = reject(make_pod(make_dataset({"params": {"on_full_refresh": "rename"}})))
        assert "reuse_file" in str(err) and "checkpoint_file" in str(err)
