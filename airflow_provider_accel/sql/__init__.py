"""The refresh_sql validator: Spice's rules, and a security boundary."""

from airflow_provider_accel.sql.refresh_sql import RefreshFilter, quote_identifier, validate_refresh_sql

__all__ = ["RefreshFilter", "quote_identifier", "validate_refresh_sql"]
