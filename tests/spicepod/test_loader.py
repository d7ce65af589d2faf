"""The spicepod loader: what it accepts, the types it builds, and how it rejects bad input."""

from __future__ import annotations

import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.spicepod import (
    AccelerationMode,
    Engine,
    OnConflict,
    RefreshMode,
    Spicepod,
    TimeFormat,
    fields,
    load_spicepod,
    parse_spicepod,
)
from airflow_provider_accel.spicepod.fields import Use

from ._builders import make_dataset, make_pod, parse_dataset, reject

_TOP_LEVEL_IGNORED = [f.key for f in fields.TOP_LEVEL if f.use is Use.IGNORED]
#: A valid value for each ignored key that validates its value (any value for the others).
_IGNORED_SAMPLES: dict[str, Any] = {
    "access": "read_write",
    "mode": "read",
    "write_mode": "write_back",
    "storage_profile": "nvme",
    "snapshots": "enabled",
    "snapshots_compaction": "enabled",
    "snapshots_creation_policy": "on_change",
    "snapshots_reset_expiry_on_load": "disabled",
}
_DATASET_IGNORED = [f.key for f in fields.DATASET if f.use is Use.IGNORED]
_ACCELERATION_IGNORED = [f.key for f in fields.ACCELERATION if f.use is Use.IGNORED]


EXAMPLES = Path(__file__).parent / "examples"
# CI checks the repository out with shared/ beside it; on a laptop it may be absent.
SHARED_EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "examples" / "spicepods"
EXAMPLE_NAMES = ["spice-duckdb-acceleration.yaml", "spice-quickstart-data-refresh.yaml"]


class TestSharedExamples:
    """The spicepods real Spice users write parse as is."""

    @pytest.mark.parametrize("name", EXAMPLE_NAMES)
    def test_example_parses(self, name: str) -> None:
        """Each example spicepod loads without error and has one accelerated taxi_trips dataset."""
        pod = load_spicepod(EXAMPLES / name)
        assert [d.name for d in pod.accelerated_datasets] == ["taxi_trips"]
        assert pod.path == str(EXAMPLES / name)

    @pytest.mark.parametrize("name", EXAMPLE_NAMES)
    def test_copy_matches_shared(self, name: str) -> None:
        """The copies under tests/ are byte-identical to shared/ when shared/ is present."""
        shared = SHARED_EXAMPLES / name
        if not shared.exists():
            pytest.skip(f"{shared} not present; the copy in {EXAMPLES} is tested instead")
        assert (EXAMPLES / name).read_bytes() == shared.read_bytes()

    def test_duckdb_quickstart_fields(self) -> None:
        """The DuckDB quickstart yields a duckdb file acceleration with its refresh_sql kept verbatim."""
        pod = load_spicepod(EXAMPLES / "spice-duckdb-acceleration.yaml")
        assert (pod.name, pod.version, pod.kind) == ("duckdb-acceleration-qs", "v1", "Spicepod")
        ds = pod.datasets[0]
        assert ds.from_ == "s3://spiceai-demo-datasets/taxi_trips/2024/"
        assert ds.params == {"file_format": "parquet"}
        acc = ds.acceleration
        assert acc is not None
        assert (acc.enabled, acc.engine, acc.mode) == (True, Engine.DUCKDB, AccelerationMode.FILE)
        assert acc.refresh_sql == "select * from taxi_trips limit 1000"
        assert acc.refresh_mode is RefreshMode.FULL

    def test_data_refresh_quickstart_fields(self) -> None:
        """The v1beta1 data-refresh quickstart keeps its description and full refresh mode."""
        pod = load_spicepod(EXAMPLES / "spice-quickstart-data-refresh.yaml")
        assert pod.version == "v1beta1"
        ds = pod.datasets[0]
        assert ds.description == "taxi trips in s3"
        assert ds.acceleration is not None
        assert ds.acceleration.refresh_mode is RefreshMode.FULL
        assert ds.acceleration.refresh_sql == "select * from taxi_trips where passenger_count = 2"
        assert ds.acceleration.refresh_check_interval is None


class TestTopLevel:
    """version, kind, name and datasets at the top of the file."""

    @pytest.mark.parametrize("version", ["v1", "v1beta1", "v2"])
    def test_versions_accepted(self, version: str) -> None:
        """Every supported version string parses and is kept on the model."""
        assert parse_spicepod(make_pod(version=version)).version == version

    @pytest.mark.parametrize("version", ["v3", "1", 1, None, "V1"])
    def test_other_versions_rejected(self, version: Any) -> None:
        """Any other version is an error on field version listing the supported ones."""
        err = reject(make_pod(version=version))
        assert err.field == "version"
        assert "v1beta1" in str(err) and "v1" in str(err)

    @pytest.mark.parametrize("kind", ["spicepod", "Dataset", None])
    def test_kind_must_be_spicepod(self, kind: Any) -> None:
        """kind other than Spicepod is an error on field kind."""
        err = reject(make_pod(kind=kind))
        assert err.field == "kind"
        assert "Spicepod" in str(err)

    @pytest.mark.parametrize("name", [None, "", "  ", 5])
    def test_name_required(self, name: Any) -> None:
        """A missing, empty or non-string spicepod name is an error on field name."""
        data = make_pod()
        if name is None:
            del data["name"]
        else:
            data["name"] = name
        err = reject(data)
        assert (err.field, err.dataset) == ("name", None)
        assert "required" in str(err)

    @pytest.mark.parametrize("data", [None, [], "version: v1", 3])
    def test_root_must_be_mapping(self, data: Any) -> None:
        """A document that is empty or not a mapping is a SpicepodError, not a TypeError."""
        with pytest.raises(SpicepodError, match="mapping"):
            parse_spicepod(data)

    def test_no_datasets_is_empty(self) -> None:
        """A spicepod without datasets parses to an empty tuple of datasets."""
        data = make_pod()
        del data["datasets"]
        assert parse_spicepod(data).datasets == ()

    def test_datasets_must_be_list(self) -> None:
        """datasets given as a mapping is an error on field datasets."""
        err = reject(make_pod(datasets={"taxi_trips": {"from": "file:x.parquet"}}))
        assert err.field == "datasets"

    def test_dataset_entry_must_be_mapping(self) -> None:
        """A dataset entry that is a bare string is an error naming its position."""
        err = reject(make_pod(datasets=["taxi_trips"]))
        assert "datasets[0]" in str(err)

    def test_dataset_ref_rejected(self) -> None:
        """A `ref:` dataset (defined in another file) is a clear error, not silently dropped."""
        err = reject(make_pod(datasets=[{"ref": "datasets/taxi_trips"}]))
        assert err.field == "ref"
        assert "inline" in str(err)


class TestFieldTypes:
    """Every field lands in the model with its documented type and value."""

    FULL_ACCELERATION: dict[str, Any] = {
        "enabled": True,
        "engine": "duckdb",
        "mode": "file",
        "refresh_mode": "append",
        "refresh_check_interval": "10s",
        "refresh_sql": "SELECT * FROM taxi_trips WHERE passenger_count = 2",
        "refresh_data_window": "1d",
        "refresh_append_overlap": "10m",
        "refresh_retry_enabled": False,
        "refresh_retry_max_attempts": 3,
        "refresh_jitter_enabled": True,
        "refresh_jitter_max": "1s",
        "retention_check_enabled": True,
        "retention_period": "30d",
        "retention_check_interval": "1h",
        "primary_key": "(vendor_id, trip_id)",
        "on_conflict": {"(vendor_id, trip_id)": "upsert"},
        "params": {"duckdb_file": "/data/taxi.duckdb", "duckdb_memory_limit": "2GB"},
    }

    def parsed(self) -> Any:
        return parse_dataset(
            self.FULL_ACCELERATION,
            description="NYC taxi trips",
            time_column="tpep_pickup_datetime",
            time_format="timestamptz",
        ).datasets[0]

    def test_dataset_fields(self) -> None:
        """Dataset-level fields are kept with their str/dict/enum types."""
        ds = self.parsed()
        assert ds.from_ == "s3://spiceai-demo-datasets/taxi_trips/2024/"
        assert ds.name == "taxi_trips"
        assert ds.description == "NYC taxi trips"
        assert ds.params == {"file_format": "parquet"}
        assert ds.time_column == "tpep_pickup_datetime"
        assert ds.time_format is TimeFormat.TIMESTAMPTZ
        assert ds.dag_id == "accelerate_taxi_trips"

    def test_enums(self) -> None:
        """engine, mode and refresh_mode become their enum members."""
        acc = self.parsed().acceleration
        assert acc.engine is Engine.DUCKDB
        assert acc.mode is AccelerationMode.FILE
        assert acc.refresh_mode is RefreshMode.APPEND

    def test_durations(self) -> None:
        """Every duration field is a timedelta parsed from its Spice duration string."""
        acc = self.parsed().acceleration
        assert acc.refresh_check_interval == timedelta(seconds=10)
        assert acc.refresh_data_window == timedelta(days=1)
        assert acc.refresh_append_overlap == timedelta(minutes=10)
        assert acc.refresh_jitter_max == timedelta(seconds=1)
        assert acc.retention_period == timedelta(days=30)
        assert acc.retention_check_interval == timedelta(hours=1)

    def test_booleans_and_ints(self) -> None:
        """Booleans and the retry count keep the values written, not the defaults."""
        acc = self.parsed().acceleration
        assert acc.enabled is True
        assert acc.refresh_retry_enabled is False
        assert acc.refresh_retry_max_attempts == 3
        assert acc.refresh_jitter_enabled is True
        assert acc.retention_check_enabled is True

    def test_key_conflict_and_params(self) -> None:
        """A composite key becomes a tuple; on_conflict maps the key as written to an OnConflict."""
        acc = self.parsed().acceleration
        assert acc.primary_key == ("vendor_id", "trip_id")
        assert acc.on_conflict == {"(vendor_id, trip_id)": OnConflict.UPSERT}
        assert acc.conflict_action is OnConflict.UPSERT
        assert acc.params == {"duckdb_file": "/data/taxi.duckdb", "duckdb_memory_limit": "2GB"}
        assert acc.duckdb_file == "/data/taxi.duckdb"
        assert acc.refresh_sql == "SELECT * FROM taxi_trips WHERE passenger_count = 2"

    def test_refresh_cron(self) -> None:
        """refresh_cron is kept as a string (whitespace normalised) and leaves the interval unset."""
        acc = parse_dataset({"refresh_cron": "0  *  * * *"}).datasets[0].acceleration
        assert acc.refresh_cron == "0 * * * *"
        assert acc.refresh_check_interval is None

    @pytest.mark.parametrize("preset", ["@hourly", "@daily", "@quarterly"])
    def test_refresh_cron_presets(self, preset: str) -> None:
        """Airflow's cron presets are accepted and kept as written."""
        assert parse_dataset({"refresh_cron": preset}).datasets[0].acceleration.refresh_cron == preset

    @pytest.mark.parametrize(
        ("written", "expected"),
        [("id", ("id",)), ("(a, b)", ("a", "b")), ("(a,b,c)", ("a", "b", "c")), (["a", "b"], ("a", "b"))],
    )
    def test_primary_key_forms(self, written: Any, expected: tuple[str, ...]) -> None:
        """primary_key as a name, a parenthesised list or a YAML list is a tuple of names."""
        assert parse_dataset({"primary_key": written}).datasets[0].acceleration.primary_key == expected

    @pytest.mark.parametrize(
        ("pk", "key"), [("id", "id"), ("(a, b)", "(a,b)"), (["a", "b"], "(a, b)"), ("(a,b)", "(a, b)")]
    )
    def test_on_conflict_key_matches_primary_key(self, pk: Any, key: str) -> None:
        """on_conflict's key matches the primary key whatever the spacing or list form."""
        acc = parse_dataset({"primary_key": pk, "on_conflict": {key: "drop"}}).datasets[0].acceleration
        assert acc.on_conflict == {key: OnConflict.DROP}

    @pytest.mark.parametrize("written", ["ISO8601", "iso8601", "unix_seconds", "unix_millis", "date"])
    def test_time_formats(self, written: str) -> None:
        """time_format values match the enum case-insensitively (Spice docs write iso8601 both ways)."""
        ds = parse_dataset(time_column="ts", time_format=written).datasets[0]
        assert ds.time_format is not None and ds.time_format.value.casefold() == written.casefold()

    def test_param_scalars_kept(self) -> None:
        """Param values keep their YAML scalar types; nothing is stringified or resolved."""
        ds = parse_dataset(params={"pg_port": 5432, "ssl": True, "ratio": 0.5, "empty": None}).datasets[0]
        assert ds.params == {"pg_port": 5432, "ssl": True, "ratio": 0.5, "empty": None}

    def test_placeholders_kept_unresolved(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """${secrets:..} and ${env:..} stay verbatim in the model even when they could resolve."""
        monkeypatch.setenv("PG_PASS", "hunter2-secret")
        params = {"pg_pass": "${secrets:pg_pass}", "pg_user": "${env:PG_USER}", "dsn": "x=${ env:PG_PASS }"}
        ds = parse_dataset(params=params).datasets[0]
        assert ds.params == params
        assert "hunter2-secret" not in repr(ds)


class TestDefaults:
    """What a field is when the spicepod leaves it out."""

    def test_empty_acceleration_block(self) -> None:
        """An empty acceleration block is enabled, duckdb, file, full refresh, retries on, no schedule."""
        acc = parse_dataset({}).datasets[0].acceleration
        assert acc is not None
        assert acc.enabled is True
        assert (acc.engine, acc.mode, acc.refresh_mode) == (
            Engine.DUCKDB,
            AccelerationMode.FILE,
            RefreshMode.FULL,
        )
        assert acc.refresh_retry_enabled is True and acc.refresh_retry_max_attempts is None
        assert acc.refresh_jitter_enabled is False and acc.retention_check_enabled is False
        assert acc.refresh_check_interval is None and acc.refresh_cron is None
        assert acc.primary_key == () and acc.on_conflict == {} and acc.params == {}

    def test_no_acceleration(self) -> None:
        """A dataset without acceleration (or with `acceleration:` null) is not accelerated."""
        with_null = make_dataset()
        with_null["acceleration"] = None
        for data in (make_dataset(), with_null):
            ds = parse_spicepod(make_pod(data)).datasets[0]
            assert ds.acceleration is None and not ds.accelerated

    def test_disabled_acceleration(self) -> None:
        """enabled: false keeps the block but the dataset is not accelerated."""
        pod = parse_dataset({"enabled": False})
        assert pod.datasets[0].acceleration is not None
        assert pod.accelerated_datasets == ()

    def test_optional_dataset_fields(self) -> None:
        """description, time_column, time_format and params default to None / empty."""
        ds = parse_spicepod(make_pod({"from": "file:data.parquet", "name": "t"})).datasets[0]
        assert (ds.description, ds.time_column, ds.time_format, ds.params) == (None, None, None, {})


# (id, acceleration block or None, dataset-level overrides, expected .field, fragment of "what is allowed")
INVALID: list[tuple[str, Any, dict[str, Any], str, str]] = [
    ("interval-unit", {"refresh_check_interval": "10x"}, {}, "acceleration.refresh_check_interval", "500ms"),
    ("interval-int", {"refresh_check_interval": 10}, {}, "acceleration.refresh_check_interval", "duration"),
    ("interval-zero", {"refresh_check_interval": "0s"}, {}, "acceleration.refresh_check_interval", "zero"),
    (
        "window-bad",
        {"refresh_data_window": "abc"},
        {"time_column": "ts"},
        "acceleration.refresh_data_window",
        "duration",
    ),
    (
        "window-zero",
        {"refresh_data_window": "0d"},
        {"time_column": "ts"},
        "acceleration.refresh_data_window",
        "zero",
    ),
    ("overlap-neg", {"refresh_append_overlap": "-5m"}, {}, "acceleration.refresh_append_overlap", "duration"),
    ("jitter-words", {"refresh_jitter_max": "1 hour"}, {}, "acceleration.refresh_jitter_max", "duration"),
    ("jitter-zero", {"refresh_jitter_max": "0s"}, {}, "acceleration.refresh_jitter_max", "zero"),
    ("retention-bad", {"retention_period": "forever"}, {}, "acceleration.retention_period", "duration"),
    (
        "retention-int-zero",
        {"retention_check_interval": "0ms"},
        {},
        "acceleration.retention_check_interval",
        "zero",
    ),
    ("cron-words", {"refresh_cron": "every hour"}, {}, "acceleration.refresh_cron", "cron"),
    ("cron-range", {"refresh_cron": "61 * * * *"}, {}, "acceleration.refresh_cron", "cron"),
    ("cron-6-fields", {"refresh_cron": "0 0 * * * *"}, {}, "acceleration.refresh_cron", "5-field"),
    ("cron-preset", {"refresh_cron": "@fortnightly"}, {}, "acceleration.refresh_cron", "@hourly"),
    ("cron-int", {"refresh_cron": 5}, {}, "acceleration.refresh_cron", "cron"),
    ("mode-refresh", {"refresh_mode": "incremental"}, {}, "acceleration.refresh_mode", "full, append"),
    (
        "mode-cdc-after",
        {"refresh_mode": "changes_after_load"},
        {},
        "acceleration.refresh_mode",
        "full, append",
    ),
    ("engine-turso", {"engine": "turso"}, {}, "acceleration.engine", "duckdb, sqlite and postgres"),
    ("engine-postgres-no-host", {"engine": "postgres"}, {}, "acceleration.params.pg_host", "required"),
    ("engine-cayenne", {"engine": "cayenne"}, {}, "acceleration.engine", "duckdb, sqlite and postgres"),
    ("engine-int", {"engine": 3}, {}, "acceleration.engine", "duckdb, sqlite and postgres"),
    (
        "sqlite-busy",
        {"engine": "sqlite", "params": {"busy_timeout": "soon"}},
        {},
        "acceleration.params.busy_timeout",
        "duration",
    ),
    (
        "pg-port",
        {"engine": "postgres", "params": {"pg_host": "h", "pg_port": "x"}},
        {},
        "acceleration.params.pg_port",
        "port",
    ),
    ("accel-mode", {"mode": "disk"}, {}, "acceleration.mode", "file, memory"),
    ("enabled-str", {"enabled": "true"}, {}, "acceleration.enabled", "true or false"),
    ("enabled-int", {"enabled": 1}, {}, "acceleration.enabled", "true or false"),
    (
        "retry-str",
        {"refresh_retry_enabled": "yes"},
        {},
        "acceleration.refresh_retry_enabled",
        "true or false",
    ),
    ("jitter-int", {"refresh_jitter_enabled": 0}, {}, "acceleration.refresh_jitter_enabled", "true or false"),
    (
        "retention-str",
        {"retention_check_enabled": "false"},
        {},
        "acceleration.retention_check_enabled",
        "true or false",
    ),
    (
        "attempts-0",
        {"refresh_retry_max_attempts": 0},
        {},
        "acceleration.refresh_retry_max_attempts",
        "positive",
    ),
    (
        "attempts-neg",
        {"refresh_retry_max_attempts": -1},
        {},
        "acceleration.refresh_retry_max_attempts",
        "positive",
    ),
    (
        "attempts-float",
        {"refresh_retry_max_attempts": 2.5},
        {},
        "acceleration.refresh_retry_max_attempts",
        "positive",
    ),
    (
        "attempts-bool",
        {"refresh_retry_max_attempts": True},
        {},
        "acceleration.refresh_retry_max_attempts",
        "positive",
    ),
    (
        "attempts-str",
        {"refresh_retry_max_attempts": "3"},
        {},
        "acceleration.refresh_retry_max_attempts",
        "positive",
    ),
    ("pk-empty", {"primary_key": ""}, {}, "acceleration.primary_key", "column name"),
    ("pk-trailing-comma", {"primary_key": "(a, )"}, {}, "acceleration.primary_key", "composite"),
    ("pk-unclosed", {"primary_key": "(a, b"}, {}, "acceleration.primary_key", "composite"),
    ("pk-list-int", {"primary_key": ["a", 1]}, {}, "acceleration.primary_key", "YAML list"),
    ("pk-list-empty", {"primary_key": []}, {}, "acceleration.primary_key", "YAML list"),
    ("pk-mapping", {"primary_key": {"a": 1}}, {}, "acceleration.primary_key", "column name"),
    ("pk-twice", {"primary_key": "(a, a)"}, {}, "acceleration.primary_key", "twice"),
    (
        "conflict-action",
        {"primary_key": "id", "on_conflict": {"id": "replace"}},
        {},
        "acceleration.on_conflict.id",
        "drop, upsert",
    ),
    (
        "conflict-null",
        {"primary_key": "id", "on_conflict": {"id": None}},
        {},
        "acceleration.on_conflict.id",
        "drop, upsert",
    ),
    (
        "conflict-key",
        {"primary_key": "id", "on_conflict": {"other": "upsert"}},
        {},
        "acceleration.on_conflict",
        "primary key, id",
    ),
    (
        "conflict-composite",
        {"primary_key": "(a, b)", "on_conflict": {"a": "upsert"}},
        {},
        "acceleration.on_conflict",
        "(a, b)",
    ),
    (
        "conflict-two",
        {"primary_key": "id", "on_conflict": {"id": "upsert", "x": "drop"}},
        {},
        "acceleration.on_conflict",
        "one entry",
    ),
    (
        "conflict-str",
        {"primary_key": "id", "on_conflict": "upsert"},
        {},
        "acceleration.on_conflict",
        "one entry",
    ),
    ("conflict-no-pk", {"on_conflict": {"id": "upsert"}}, {}, "acceleration.on_conflict", "primary_key"),
    ("accel-params-str", {"params": "duckdb_file=x"}, {}, "acceleration.params", "mapping"),
    ("duckdb-file-int", {"params": {"duckdb_file": 5}}, {}, "acceleration.params.duckdb_file", "file path"),
    ("accel-not-mapping", "yes", {}, "acceleration", "mapping"),
    ("refresh-sql-int", {"refresh_sql": 5}, {}, "acceleration.refresh_sql", "SELECT * FROM taxi_trips"),
    ("params-str", None, {"params": "file_format=parquet"}, "params", "mapping"),
    ("params-nested", None, {"params": {"s3": {"region": "x"}}}, "params.s3", "strings or numbers"),
    ("params-list", None, {"params": {"files": ["a", "b"]}}, "params.files", "strings or numbers"),
    ("time-format", None, {"time_column": "ts", "time_format": "epoch"}, "time_format", "unix_seconds"),
    ("time-column-empty", None, {"time_column": ""}, "time_column", "column name"),
    ("time-column-int", None, {"time_column": 5}, "time_column", "column name"),
    ("from-empty", None, {"from": ""}, "from", "source URI"),
    ("from-int", None, {"from": 5}, "from", "source URI"),
    ("from-null", None, {"from": None}, "from", "source URI"),
    ("description-int", None, {"description": 5}, "description", "string"),
]


class TestInvalidValues:
    """Each invalid value is a SpicepodError naming the dataset, the field and what is allowed."""

    @pytest.mark.parametrize(
        ("acceleration", "fields", "field", "allowed"),
        [pytest.param(*row[1:], id=row[0]) for row in INVALID],
    )
    def test_rejected(self, acceleration: Any, fields: dict[str, Any], field: str, allowed: str) -> None:
        """The error carries .dataset/.field and its message says dataset, field and what is allowed."""
        err = reject(make_pod(make_dataset(acceleration, **fields)))
        assert err.dataset == "taxi_trips"
        assert err.field == field
        message = str(err)
        assert message.startswith("Dataset taxi_trips: ")
        assert field.split(".")[-1] in message
        assert allowed in message

    def test_exact_duration_message(self) -> None:
        """A malformed interval reads exactly as documented in the brief."""
        err = reject(make_pod(make_dataset({"refresh_check_interval": "10x"})))
        assert str(err) == (
            "Dataset taxi_trips: acceleration.refresh_check_interval '10x' is not a duration such as "
            "500ms, 10s, 5m, 1h, 1d or 1h30m."
        )

    def test_missing_dataset_name(self) -> None:
        """A dataset without name is an error on field name that points at its position."""
        err = reject(make_pod({"from": "file:x.parquet"}, {"from": "file:y.parquet"}))
        assert (err.dataset, err.field) == (None, "name")
        assert "datasets[0]" in str(err)

    def test_missing_from(self) -> None:
        """A dataset without from is an error on field from naming the dataset."""
        err = reject(make_pod({"name": "t"}))
        assert (err.dataset, err.field) == ("t", "from")

    def test_padded_name(self) -> None:
        """A dataset name with surrounding spaces is rejected instead of silently differing from SQL."""
        err = reject(make_pod(make_dataset(name=" taxi ")))
        assert err.field == "name"


class TestCrossFieldRules:
    """Rules that involve more than one field."""

    def test_interval_and_cron_together(self) -> None:
        """refresh_check_interval and refresh_cron together is an error naming both."""
        err = reject(make_pod(make_dataset({"refresh_check_interval": "10s", "refresh_cron": "0 * * * *"})))
        assert err.field == "acceleration.refresh_cron"
        assert "refresh_check_interval" in str(err) and "refresh_cron" in str(err)

    def test_append_needs_time_column(self) -> None:
        """refresh_mode append without time_column is rejected, pointing at the on-demand alternative."""
        err = reject(make_pod(make_dataset({"refresh_mode": "append"})))
        assert (err.dataset, err.field) == ("taxi_trips", "acceleration.refresh_mode")
        assert "time_column" in str(err) and "on-demand" in str(err)

    def test_append_with_time_column(self) -> None:
        """refresh_mode append with a time_column is accepted."""
        ds = parse_dataset({"refresh_mode": "append"}, time_column="ts").datasets[0]
        assert ds.acceleration.refresh_mode is RefreshMode.APPEND

    def test_data_window_needs_time_column(self) -> None:
        """refresh_data_window without time_column is an error on that field."""
        err = reject(make_pod(make_dataset({"refresh_data_window": "1d"})))
        assert err.field == "acceleration.refresh_data_window"
        assert "time_column" in str(err)

    @pytest.mark.parametrize(
        ("acceleration", "fields", "missing"),
        [
            ({"retention_check_enabled": True, "retention_period": "30d"}, {}, "time_column"),
            ({"retention_check_enabled": True}, {"time_column": "ts"}, "acceleration.retention_period"),
            ({"retention_check_enabled": True}, {}, "time_column and acceleration.retention_period"),
        ],
    )
    def test_retention_needs_time_column_and_period(
        self, acceleration: dict[str, Any], fields: dict[str, Any], missing: str
    ) -> None:
        """retention_check_enabled needs time_column and retention_period; the message names the missing."""
        err = reject(make_pod(make_dataset(acceleration, **fields)))
        assert err.field == "acceleration.retention_check_enabled"
        assert f"needs {missing}" in str(err)

    def test_retention_complete(self) -> None:
        """retention with time_column and retention_period parses."""
        acc = (
            parse_dataset(
                {"retention_check_enabled": True, "retention_period": "7d", "retention_check_interval": "1h"},
                time_column="ts",
            )
            .datasets[0]
            .acceleration
        )
        assert acc.retention_check_enabled and acc.retention_period == timedelta(days=7)

    def test_retention_settings_without_enable(self) -> None:
        """retention_period without retention_check_enabled is accepted (Spice ignores it too)."""
        acc = parse_dataset({"retention_period": "7d"}).datasets[0].acceleration
        assert acc.retention_check_enabled is False

    def test_zero_overlap_allowed(self) -> None:
        """refresh_append_overlap 0s is meaningful (no overlap) and accepted."""
        acc = parse_dataset({"refresh_append_overlap": "0s"}).datasets[0].acceleration
        assert acc.refresh_append_overlap == timedelta(0)


class TestEngineAndMode:
    """Only DuckDB files here; in-memory settings become DuckDB files with a notice."""

    @pytest.mark.parametrize(
        ("engine", "mode"), [("arrow", None), (None, "memory"), ("arrow", "memory"), ("duckdb", "memory")]
    )
    def test_in_memory_accepted_with_notice(
        self, engine: str | None, mode: str | None, caplog: pytest.LogCaptureFixture
    ) -> None:
        """arrow engine or memory mode parse, keep what was written, and log a lazy-formatted notice."""
        block = {k: v for k, v in (("engine", engine), ("mode", mode)) if v is not None}
        with caplog.at_level(logging.INFO, logger="airflow_provider_accel.spicepod.loader"):
            acc = parse_dataset(block).datasets[0].acceleration
        if engine:
            assert acc.engine.value == engine
        if mode:
            assert acc.mode.value == mode
        notices = [r for r in caplog.records if "DuckDB file" in r.getMessage()]
        assert len(notices) == 1
        assert notices[0].args and "%s" in str(notices[0].msg)  # lazy %s args, not an f-string
        assert "taxi_trips" in notices[0].getMessage()

    def test_duckdb_file_no_notice(self, caplog: pytest.LogCaptureFixture) -> None:
        """duckdb + file logs no in-memory notice."""
        with caplog.at_level(logging.INFO, logger="airflow_provider_accel.spicepod.loader"):
            parse_dataset({"engine": "duckdb", "mode": "file"})
        assert not [r for r in caplog.records if "DuckDB file" in r.getMessage()]

    @pytest.mark.parametrize("engine", ["turso", "cayenne"])
    def test_other_engines_rejected(self, engine: str) -> None:
        """turso and cayenne accelerators are errors naming the engines that are served."""
        err = reject(make_pod(make_dataset({"engine": engine})))
        assert err.field == "acceleration.engine"
        assert f"{engine!r}" in str(err) and "duckdb, sqlite and postgres" in str(err)

    def test_sqlite_engine_with_spice_params(self) -> None:
        """engine sqlite is served; busy_timeout is parsed as a duration and sqlite_file kept."""
        accel = (
            parse_dataset({"engine": "sqlite", "params": {"sqlite_file": "t.db", "busy_timeout": "250ms"}})
            .datasets[0]
            .acceleration
        )
        assert accel is not None and accel.engine.value == "sqlite"
        assert accel.params["sqlite_file"] == "t.db"
        assert accel.params["busy_timeout"].total_seconds() == 0.25

    def test_sqlite_memory_becomes_a_file_with_notice(self, caplog: pytest.LogCaptureFixture) -> None:
        """engine sqlite, mode memory logs that the dataset is accelerated as a SQLite file."""
        with caplog.at_level(logging.INFO, logger="airflow_provider_accel.spicepod.loader"):
            parse_dataset({"engine": "sqlite", "mode": "memory"})
        assert [r for r in caplog.records if "as a SQLite file" in r.getMessage()]

    @pytest.mark.parametrize("engine", ["sqlite", "postgres"])
    def test_indexes_and_retention_sql_load_without_a_notice(self, engine: str) -> None:
        """indexes and retention_sql on sqlite/postgres load as acted on: no "not acted on" notice."""
        accel = {
            "engine": engine,
            "params": {"pg_host": "db"} if engine == "postgres" else {},
            "indexes": {"id": "enabled"},
            "retention_sql": "DELETE FROM taxi_trips WHERE fare < 0",
        }
        pod = parse_dataset(accel)
        accel_parsed = pod.datasets[0].acceleration
        assert accel_parsed is not None and accel_parsed.indexes and accel_parsed.retention_sql
        assert not [notice for notice in pod.notices if "not acted on" in notice], pod.notices

    def test_postgres_engine_with_spice_params(self) -> None:
        """engine postgres is served with Spice's pg_* params; a string pg_port becomes a number."""
        params = {"pg_host": "db", "pg_port": "6543", "pg_db": "w", "pg_user": "u", "pg_sslmode": "disable"}
        accel = parse_dataset({"engine": "postgres", "params": params}).datasets[0].acceleration
        assert accel is not None and accel.engine.value == "postgres"
        assert accel.params["pg_port"] == 6543 and accel.params["pg_sslmode"] == "disable"


class TestUnknownKeys:
    """Spice's own keys are accepted and ignored; anything else is an error listing the allowed keys."""

    @pytest.mark.parametrize("key", sorted(_TOP_LEVEL_IGNORED))
    def test_spice_top_level_keys_ignored(self, key: str) -> None:
        """Top-level sections real Spice spicepods have do not stop the spicepod from loading."""
        assert parse_spicepod(make_pod(**{key: [] if key != "runtime" else {}})).name == "test"

    @pytest.mark.parametrize("key", sorted(_DATASET_IGNORED))
    def test_spice_dataset_keys_ignored(self, key: str) -> None:
        """Dataset keys real Spice spicepods have are accepted, with a notice naming the key."""
        pod = parse_dataset(**{key: _IGNORED_SAMPLES.get(key, "x")})
        assert pod.datasets[0].name == "taxi_trips"
        assert any(f"{key} is ignored" in notice for notice in pod.notices)

    @pytest.mark.parametrize("key", sorted(_ACCELERATION_IGNORED))
    def test_spice_acceleration_keys_ignored(self, key: str) -> None:
        """Acceleration keys real Spice spicepods have are accepted, with a notice naming the key."""
        pod = parse_dataset({key: _IGNORED_SAMPLES.get(key, "x")})
        assert pod.datasets[0].accelerated
        assert any(f"acceleration.{key} is ignored" in notice for notice in pod.notices)

    def test_realistic_spice_extras(self) -> None:
        """A spicepod using several Spice-only features side by side still loads."""
        data = make_pod(
            make_dataset(
                {
                    "indexes": {"id": "unique"},
                    "on_zero_results": "use_source",
                    "refresh_on_startup": "always",
                },
                columns=[{"name": "id", "description": "trip id"}],
                ready_state="on_registration",
                metadata={"owner": "data"},
            ),
            runtime={"results_cache": {"enabled": True}},
            secrets=[{"from": "env", "name": "env"}],
            models=[{"from": "openai:gpt-4o", "name": "gpt"}],
        )
        assert parse_spicepod(data).datasets[0].accelerated

    @pytest.mark.parametrize("key", ["definitions", "defaults", "common_config", "x-anchors"])
    def test_unknown_top_level_key_ignored_with_notice(self, key: str) -> None:
        """Spice ignores unknown top-level keys: the pod loads, a notice names the key, no false hint."""
        pod = parse_spicepod(make_pod(**{key: {"a": 1}}), strict=True)
        assert [d.name for d in pod.datasets] == ["taxi_trips"]
        [notice] = [n for n in pod.notices if repr(key) in n]
        assert "ignored" in notice and "Did you mean" not in notice

    def test_near_miss_of_datasets_hints(self) -> None:
        """A top-level `dataset:` (a typo) is ignored as in Spice, and the notice suggests datasets."""
        pod = parse_spicepod(make_pod(dataset=[]), strict=True)
        assert any("'dataset'" in n and "Did you mean 'datasets'?" in n for n in pod.notices)

    def test_unknown_dataset_key(self) -> None:
        """A misspelt dataset key is an error naming dataset, key, a suggestion and the allowed keys."""
        err = reject(make_pod(make_dataset(acceleraton={"enabled": True})))
        assert (err.dataset, err.field) == ("taxi_trips", "acceleraton")
        message = str(err)
        assert message.startswith("Dataset taxi_trips: unknown key 'acceleraton'")
        assert "Did you mean 'acceleration'?" in message
        assert "time_column" in message and "check_availability" in message

    def test_unknown_acceleration_key(self) -> None:
        """An unknown acceleration key is an error on acceleration.<key> listing acceleration's keys."""
        err = reject(make_pod(make_dataset({"refresh_interval": "10s"})))
        assert (err.dataset, err.field) == ("taxi_trips", "acceleration.refresh_interval")
        assert "refresh_check_interval" in str(err) and "primary_key" in str(err)

    def test_notices_are_logged_lazily(self, caplog: pytest.LogCaptureFixture) -> None:
        """Every notice is logged by the loader, lazy-formatted, naming the key."""
        with caplog.at_level(logging.INFO, logger="airflow_provider_accel.spicepod.loader"):
            parse_dataset({"on_zero_results": "use_source"})
        [record] = [r for r in caplog.records if "on_zero_results" in r.getMessage()]
        assert record.args and "%s" in str(record.msg)


class TestUniqueness:
    """Dataset names and the DAG ids derived from them are unique."""

    def test_duplicate_name(self) -> None:
        """Two datasets with the same name are rejected."""
        err = reject(make_pod(make_dataset(), make_dataset()))
        assert (err.dataset, err.field) == ("taxi_trips", "name")

    def test_duplicate_name_case_insensitive(self) -> None:
        """Names differing only in case are duplicates (Spice matches names case-insensitively)."""
        err = reject(make_pod(make_dataset(), make_dataset(name="Taxi_Trips")))
        assert "taxi_trips" in str(err) and "Taxi_Trips" in str(err)
        assert "case-insensitively" in str(err)

    def test_dag_id_collision(self) -> None:
        """a-b and a_b map to the same DAG id: an error naming both and the DAG id."""
        err = reject(make_pod(make_dataset(name="a-b"), make_dataset(name="a_b")))
        assert err.field == "name"
        message = str(err)
        assert "a-b" in message and "a_b" in message and "accelerate_a_b" in message

    def test_distinct_names(self) -> None:
        """Distinct names parse and keep their order."""
        pod = parse_spicepod(make_pod(make_dataset(name="b"), make_dataset(name="a")))
        assert [d.name for d in pod.datasets] == ["b", "a"]
        assert pod.dataset("B") is pod.datasets[0]


class TestRefreshSql:
    """refresh_sql goes through the shared validator; its rejection becomes a SpicepodError."""

    def test_other_table_rejected(self) -> None:
        """A refresh_sql reading another table is a SpicepodError on acceleration.refresh_sql."""
        err = reject(make_pod(make_dataset({"refresh_sql": "SELECT * FROM other_table"})))
        assert (err.dataset, err.field) == ("taxi_trips", "acceleration.refresh_sql")
        assert str(err).startswith("Dataset taxi_trips: acceleration.refresh_sql is not allowed: ")
        assert len(str(err)) > len("Dataset taxi_trips: acceleration.refresh_sql is not allowed: ")

    def test_validator_error_chained(self) -> None:
        """The validator's RefreshSqlError is the cause, so its full detail is not lost."""
        from airflow_provider_accel.exceptions import RefreshSqlError

        err = reject(make_pod(make_dataset({"refresh_sql": "SELECT * FROM other_table"})))
        assert isinstance(err.__cause__, RefreshSqlError)
        assert str(err.__cause__) in str(err)

    def test_filter_on_dataset_accepted(self) -> None:
        """A filter on the dataset itself is accepted and kept verbatim."""
        sql = "select * from taxi_trips where passenger_count = 2"
        assert parse_dataset({"refresh_sql": sql}).datasets[0].acceleration.refresh_sql == sql


class TestLoadSpicepod:
    """Reading the file: every failure is a SpicepodError saying which file and what to do."""

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file names the path and the setting to change."""
        path = tmp_path / "nope.yaml"
        with pytest.raises(SpicepodError) as info:
            load_spicepod(path)
        assert str(path) in str(info.value) and "spicepod_path" in str(info.value)

    def test_directory(self, tmp_path: Path) -> None:
        """A directory instead of a file is a SpicepodError naming it."""
        with pytest.raises(SpicepodError, match="directory"):
            load_spicepod(tmp_path)

    def test_yaml_syntax_error(self, tmp_path: Path) -> None:
        """Broken YAML names the file and keeps the parser's line information."""
        path = tmp_path / "spicepod.yaml"
        path.write_text("version: v1\nkind: Spicepod\nname: x\ndatasets:\n  - from: [unclosed\n")
        with pytest.raises(SpicepodError) as info:
            load_spicepod(path)
        assert str(path) in str(info.value) and "line" in str(info.value)

    def test_duplicate_yaml_key(self, tmp_path: Path) -> None:
        """A key repeated in one mapping is an error (as in Spice), not silently last-wins."""
        path = tmp_path / "spicepod.yaml"
        path.write_text(
            "version: v1\nkind: Spicepod\nname: x\ndatasets:\n  - from: file:x.parquet\n    name: t\n"
            "    acceleration: {enabled: true}\n    acceleration: {enabled: false}\n"
        )
        with pytest.raises(SpicepodError, match="duplicate key 'acceleration'"):
            load_spicepod(path)

    def test_yaml_merge_keys(self, tmp_path: Path) -> None:
        """Anchors and `<<:` merges work; an explicit key overrides a merged one."""
        path = tmp_path / "spicepod.yaml"
        path.write_text(
            "version: v1\nkind: Spicepod\nname: x\n"
            "x-defaults: &accel {enabled: true, refresh_check_interval: 1h}\n"
            "datasets:\n  - from: file:x.parquet\n    name: t\n"
            "    acceleration:\n      <<: *accel\n      refresh_check_interval: 5m\n"
        )
        acc = load_spicepod(path).datasets[0].acceleration  # an unknown top-level key is ignored
        assert acc.refresh_check_interval == timedelta(minutes=5)

    def test_yaml_tags_refused(self, tmp_path: Path) -> None:
        """Python-object YAML tags are refused: the loader stays a safe loader."""
        path = tmp_path / "spicepod.yaml"
        path.write_text("version: !!python/object/apply:os.getcwd []\nkind: Spicepod\nname: x\n")
        with pytest.raises(SpicepodError, match="not valid YAML"):
            load_spicepod(path)

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A binary file is a SpicepodError, not a UnicodeDecodeError."""
        path = tmp_path / "spicepod.yaml"
        path.write_bytes(b"\xff\xfe\x00bad")
        with pytest.raises(SpicepodError, match="cannot be read"):
            load_spicepod(path)

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty file is a SpicepodError saying it is empty."""
        path = tmp_path / "spicepod.yaml"
        path.write_text("")
        with pytest.raises(SpicepodError, match="empty"):
            load_spicepod(path)

    def test_validation_error_notes_file(self, tmp_path: Path) -> None:
        """A strict validation error from a file keeps its message and gains a note with the file path."""
        path = tmp_path / "spicepod.yaml"
        path.write_text(
            "version: v1\nkind: Spicepod\nname: x\ndatasets:\n"
            "  - from: file:x.parquet\n    name: t\n    acceleration:\n      refresh_check_interval: 10x\n"
        )
        with pytest.raises(SpicepodError) as info:
            load_spicepod(path, strict=True)
        assert str(info.value).startswith("Dataset t: acceleration.refresh_check_interval '10x'")
        assert any(str(path) in note for note in info.value.__notes__)

    def test_path_recorded(self, tmp_path: Path) -> None:
        """The model records where it was read from; str and PathLike paths both work."""
        path = tmp_path / "spicepod.yaml"
        shutil.copy(EXAMPLES / EXAMPLE_NAMES[0], path)
        assert load_spicepod(path).path == str(path)
        assert load_spicepod(str(path)).path == str(path)

    def test_parse_without_path(self) -> None:
        """parse_spicepod on a mapping leaves path unset."""
        pod = parse_spicepod(make_pod())
        assert isinstance(pod, Spicepod) and pod.path is None
