"""The DAG factory: one refresh DAG per accelerated dataset, shaped from the spicepod."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from airflow_provider_accel.dags.factory import build_dags
from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.operators.retry import UNLIMITED_RETRIES
from airflow_provider_accel.spicepod.loader import parse_spicepod
from airflow_provider_accel.spicepod.model import dag_id_for


def _spicepod(datasets: list[dict]) -> dict:
    return {"version": "v1", "kind": "Spicepod", "name": "factory", "datasets": datasets}


def _dataset(name: str, **acceleration: object) -> dict:
    block = {"enabled": True, **acceleration}
    return {"from": "file:/data/x.parquet", "name": name, "acceleration": block}


class TestDagIds:
    def test_one_dag_per_accelerated_dataset(self) -> None:
        """Accelerated datasets get a DAG each; no acceleration block or enabled: false get none."""
        pod = parse_spicepod(
            _spicepod(
                [
                    _dataset("taxi_trips"),
                    {"from": "file:/data/y.parquet", "name": "plain"},
                    {"from": "file:/data/z.parquet", "name": "off", "acceleration": {"enabled": False}},
                ]
            )
        )
        assert sorted(build_dags(pod)) == ["accelerate_taxi_trips"]

    @pytest.mark.parametrize(
        ("name", "dag_id"),
        [("Taxi-Trips", "accelerate_taxi_trips"), ("a.b c", "accelerate_a_b_c"), ("ÜBER", "accelerate__ber")],
    )
    def test_dag_id_is_lowercased_and_sanitised(self, name: str, dag_id: str) -> None:
        """Names are lowercased and characters outside [a-z0-9_] become underscores."""
        assert dag_id_for(name) == dag_id

    def test_dag_id_collision_is_an_error(self) -> None:
        """Two datasets mapping to the same dag_id: strict refuses, naming both; else the second errors."""
        pod = _spicepod([_dataset("a-b"), _dataset("a_b")])
        with pytest.raises(SpicepodError, match=r"a-b.*a_b|a_b.*a-b"):
            build_dags(parse_spicepod(pod, strict=True))
        lenient = parse_spicepod(pod, strict=False)
        assert sorted(build_dags(lenient)) == ["accelerate_a_b"]
        [error] = lenient.dataset_errors
        assert error.name == "a_b" and "a-b" in error.reason


class TestDagShape:
    def test_interval_schedule_single_run_no_catchup_unpaused_tagged(self) -> None:
        """refresh_check_interval becomes the schedule; one run at a time, no catch-up, unpaused, tagged."""
        dag = build_dags(parse_spicepod(_spicepod([_dataset("t", refresh_check_interval="10m")])))[
            "accelerate_t"
        ]
        assert dag.timetable.delta == dt.timedelta(minutes=10)
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        assert dag.is_paused_upon_creation is False
        assert "accel" in dag.tags and "spicepod:factory" in dag.tags and "mode:full" in dag.tags

    def test_cron_schedule(self) -> None:
        """refresh_cron becomes a cron schedule."""
        dag = build_dags(parse_spicepod(_spicepod([_dataset("t", refresh_cron="0 * * * *")])))["accelerate_t"]
        assert dag.timetable.expression == "0 * * * *"

    def test_no_schedule_means_initial_load_only(self) -> None:
        """Without interval or cron the DAG runs once (the initial load), then only on demand."""
        dag = build_dags(parse_spicepod(_spicepod([_dataset("t")])))["accelerate_t"]
        assert type(dag.timetable).__name__ == "OnceTimetable"

    def test_trigger_form_params_are_typed(self) -> None:
        """The trigger form offers mode as a choice of full/append and optional SQL and jitter strings."""
        dag = build_dags(parse_spicepod(_spicepod([_dataset("t", refresh_mode="full")])))["accelerate_t"]
        schema = {name: param.schema for name, param in dag.params.items()}
        assert schema["refresh_mode"]["enum"] == ["full", "append"]
        assert dag.params["refresh_mode"] == "full"
        assert schema["refresh_sql"]["type"] == ["null", "string"]
        assert schema["refresh_jitter_max"]["type"] == ["null", "string"]
        assert dag.params["refresh_sql"] is None

    @pytest.mark.parametrize(
        ("settings", "retries"),
        [
            ({}, UNLIMITED_RETRIES),
            ({"refresh_retry_max_attempts": 3}, 2),
            ({"refresh_retry_enabled": False, "refresh_retry_max_attempts": 3}, 0),
        ],
    )
    def test_retries_follow_the_spicepod(self, settings: dict, retries: int) -> None:
        """Airflow retries = max attempts - 1; disabled means none; absent means unlimited as in Spice."""
        task = build_dags(parse_spicepod(_spicepod([_dataset("t", **settings)])))["accelerate_t"].get_task(
            "refresh"
        )
        assert task.retries == retries
        assert task.retry_policy is not None

    def test_retention_gets_its_own_dag(self) -> None:
        """retention_check_enabled adds accelerate_<name>__retention on retention_check_interval."""
        dataset = _dataset(
            "t", retention_check_enabled=True, retention_period="30d", retention_check_interval="1h"
        )
        dataset["time_column"] = "ts"
        dags = build_dags(parse_spicepod(_spicepod([dataset])))
        assert sorted(dags) == ["accelerate_t", "accelerate_t__retention"]
        retention = dags["accelerate_t__retention"]
        assert retention.get_task("retention").dataset_name == "t"
        assert retention.max_active_runs == 1
        assert retention.timetable.delta == dt.timedelta(hours=1)


class TestDagFile:
    BAD_DATASET = textwrap.dedent(
        """
        version: v1
        kind: Spicepod
        name: bad
        datasets:
          - from: file:/x.parquet
            name: trips
            acceleration:
              refresh_check_interval: 10x
          - from: file:/y.parquet
            name: zones
            acceleration: {enabled: true}
        """
    )

    def test_strict_spicepod_makes_a_bad_dataset_an_import_error(
        self, airflow_db: Path, accel_dag_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """With [accel] strict_spicepod the DAG file raises on a bad dataset: an import error naming it."""
        from airflow.dag_processing.dagbag import DagBag

        bad = tmp_path / "spicepod.yaml"
        bad.write_text(self.BAD_DATASET)
        monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(bad))
        monkeypatch.setenv("AIRFLOW__ACCEL__STRICT_SPICEPOD", "true")
        bag = DagBag(dag_folder=accel_dag_file.parent)
        assert not bag.dags
        [error] = bag.import_errors.values()
        assert "trips" in error and "refresh_check_interval" in error

    def test_bad_dataset_gets_no_dag_and_is_logged(
        self,
        airflow_db: Path,
        accel_dag_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """By default a bad dataset gets no DAG and a warning with its reason; the others get theirs."""
        import logging

        from airflow.dag_processing.dagbag import DagBag

        bad = tmp_path / "spicepod.yaml"
        bad.write_text(self.BAD_DATASET)
        monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(bad))
        monkeypatch.setenv("AIRFLOW__ACCEL__STRICT_SPICEPOD", "false")
        with caplog.at_level(logging.WARNING, logger="airflow_provider_accel.dags.factory"):
            bag = DagBag(dag_folder=accel_dag_file.parent)
        assert not bag.import_errors
        assert sorted(bag.dag_ids) == ["accelerate_zones"]
        [warning] = [r.getMessage() for r in caplog.records if "trips" in r.getMessage()]
        assert "gets no DAG" in warning and "refresh_check_interval" in warning

    def test_valid_spicepod_parses_into_dags(
        self, airflow_db: Path, accel_dag_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The DAG file yields one DAG per accelerated dataset of the configured spicepod."""
        from airflow.dag_processing.dagbag import DagBag

        pod = tmp_path / "spicepod.yaml"
        pod.write_text(
            "version: v1beta1\nkind: Spicepod\nname: ok\ndatasets:\n"
            "  - {from: 'file:/x.parquet', name: Trips, acceleration: {enabled: true}}\n"
            "  - {from: 'file:/y.parquet', name: zones}\n"
        )
        monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(pod))
        bag = DagBag(dag_folder=accel_dag_file.parent)
        assert not bag.import_errors
        assert sorted(bag.dag_ids) == ["accelerate_trips"]


class TestParsingContext:
    POD = (
        "version: v1\nkind: Spicepod\nname: ctx\ndatasets:\n"
        "  - {from: 'file:/a.parquet', name: a, acceleration: {enabled: true}}\n"
        "  - {from: 'file:/b.parquet', name: b, time_column: ts, acceleration: {enabled: true, "
        "retention_check_enabled: true, retention_period: 7d, retention_check_interval: 1h}}\n"
        "  - {from: 'file:/c.parquet', name: c, acceleration: {enabled: true}}\n"
    )

    @pytest.mark.parametrize(
        ("dag_id", "expected"),
        [
            ("accelerate_b", ["accelerate_b", "accelerate_b__retention"]),
            ("accelerate_b__retention", ["accelerate_b", "accelerate_b__retention"]),
            ("accelerate_gone", ["accelerate_a", "accelerate_b", "accelerate_b__retention", "accelerate_c"]),
        ],
    )
    def test_task_parse_builds_only_its_datasets_dags(
        self,
        airflow_db: Path,
        accel_dag_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        dag_id: str,
        expected: list[str],
    ) -> None:
        """With Airflow's parsing context naming a DAG, the file builds only that dataset's DAGs."""
        from airflow.dag_processing.dagbag import DagBag
        from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager

        pod = tmp_path / "spicepod.yaml"
        pod.write_text(self.POD)
        monkeypatch.setenv("AIRFLOW__ACCEL__SPICEPOD_PATH", str(pod))
        with _airflow_parsing_context_manager(dag_id=dag_id, task_id="refresh"):
            bag = DagBag(dag_folder=accel_dag_file.parent)
        assert not bag.import_errors
        assert sorted(bag.dag_ids) == expected
