"""The connector registry: Spice's connectors recognised in both forms, what is served, what is missing."""

from __future__ import annotations

import sys

import pytest

from airflow_provider_accel.exceptions import SpicepodError
from airflow_provider_accel.sources import source_class_for, source_for
from airflow_provider_accel.sources.file import FileSource
from airflow_provider_accel.sources.object_store import ObjectStoreSource
from airflow_provider_accel.sources.postgres import PostgresSource
from airflow_provider_accel.sources.registry import connector_for, unservable_reason

from ._helpers import dataset


@pytest.mark.parametrize(
    "from_",
    [
        "databricks:spiceai.datasets.taxi",
        "spice.ai:spiceai/quickstart/datasets/taxi_trips",
        "spice.ai/spiceai/quickstart/datasets/taxi_trips",
        "spark:db.t",
        "github:github.com/spiceai/spiceai/issues",
        "dremio:datasets.taxi",
        "snowflake:db.schema.t",
        "mssql:dbo.t",
        "clickhouse:db.t",
        "abfs://container/path/",
    ],
)
def test_unserved_connectors_name_themselves_and_the_served_list(from_: str) -> None:
    """An unserved Spice connector is recognised (x: and x/ forms); the reason lists what is served."""
    reason = unservable_reason(from_)
    assert reason is not None
    assert "does not serve" in reason and "postgres" in reason and "file" in reason
    assert "file_format" not in reason  # spice.ai/... is not read as a local path


@pytest.mark.parametrize(
    "from_",
    ["postgres:public.t", "mysql:db.t", "sqlite:t", "duckdb:t", "s3://b/k.parquet", "https://h/x.csv",
     "airflow:conn/t", "file:data/x.parquet", "data/x.parquet", "/abs/dir/", "./databricks/x.parquet"],
)  # fmt: skip
def test_served_forms_have_no_reason(from_: str) -> None:
    """Served connectors and plain paths (even under a directory named like a connector) are servable."""
    assert unservable_reason(from_) is None


def test_unknown_prefix_is_reported() -> None:
    """A prefix no Spice connector has gets a reason naming the served connectors."""
    reason = unservable_reason("nosuchthing:t")
    assert reason is not None and "does not name a connector" in reason and "mysql" in reason


def test_source_for_uses_the_same_table() -> None:
    """source_for picks the class the registry names and refuses an unserved one with its reason."""
    assert source_class_for("s3://bucket/key.parquet") is ObjectStoreSource
    assert source_class_for("postgres:t") is PostgresSource
    assert source_class_for("data/x.parquet") is FileSource
    assert connector_for("spice.ai/org/app/datasets/t").name == "spice.ai"  # type: ignore[union-attr]
    with pytest.raises(SpicepodError, match="databricks connector, which this provider does not serve"):
        source_for(dataset("databricks:a.b.c", {}))


def test_missing_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the driver module hidden, the reason says which extra to install, before any run."""
    monkeypatch.setitem(sys.modules, "adbc_driver_postgresql", None)
    reason = unservable_reason("postgres:public.orders")
    assert reason is not None
    assert "pip install 'airflow-provider-accel[postgres]'" in reason and "adbc_driver_postgresql" in reason
    with pytest.raises(SpicepodError, match=r"airflow-provider-accel\[postgres\]"):
        source_for(dataset("postgres:public.orders", {}))
    monkeypatch.setitem(sys.modules, "pymysql", None)
    assert "[mysql]" in (unservable_reason("mysql:db.t") or "")


def test_source_examples_load_and_are_servable() -> None:
    """Every spicepod under examples/sources loads, and each of its datasets is servable here."""
    from pathlib import Path

    from airflow_provider_accel.spicepod.loader import load_spicepod

    examples = sorted((Path(__file__).parents[2] / "examples" / "sources").glob("*.yaml"))
    assert examples
    for path in examples:
        for ds in load_spicepod(path).datasets:
            assert unservable_reason(ds.from_) is None, (path.name, ds.name)
