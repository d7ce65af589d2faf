"""Refresh one dataset on an engine, announcing ``start`` first (the SIGKILL tests kill it midway).

Usage: engine_refresh.py ENGINE DATA_DIR PARQUET MODE [PG_SCHEMA]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/, for the shared builders

from accelerator._helpers import make_dataset
from accelerator.engines import EngineUnderTest

from airflow_provider_accel.spicepod.model import RefreshMode

engine_name, data_dir, parquet, mode = sys.argv[1:5]
schema = sys.argv[5] if len(sys.argv) > 5 else None
engine = EngineUnderTest(engine_name, Path(data_dir), pg_schema=schema)
dataset = engine.on(make_dataset("ids", parquet, mode=RefreshMode(mode)))
print("start", flush=True)
result = engine.hook(dataset).refresh(dataset)
print(f"done {result.total_rows}", flush=True)
