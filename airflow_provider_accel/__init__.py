"""Spice.ai-style dataset acceleration for Apache Airflow.

Datasets declared in a ``spicepod.yaml`` are materialised from their sources into local DuckDB
files and kept fresh by one Airflow DAG per accelerated dataset.
"""

from __future__ import annotations

__version__ = "0.1.0"
