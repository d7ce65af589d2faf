"""The refresh-mode table is the one source of which modes exist, re-fetch and run on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_accel.accelerator.modes import ON_DEMAND_MODES, REFRESH_MODES, RefreshMode
from airflow_provider_accel.accelerator.strategies import STRATEGIES, strategy_for
from airflow_provider_accel.exceptions import TerminalRefreshError
from airflow_provider_accel.spicepod import model
from airflow_provider_accel.spicepod.overrides import OverridesError, parse_overrides

from ._helpers import make_dataset


def test_every_mode_has_rules() -> None:
    """Each RefreshMode value has one row in the table."""
    assert set(REFRESH_MODES) == set(RefreshMode)


def test_strategies_exist_exactly_for_refetching_modes() -> None:
    """A strategy exists for a mode if and only if the table says the mode re-fetches."""
    assert set(STRATEGIES) == {m for m, rules in REFRESH_MODES.items() if rules.refetches}


def test_model_reads_the_table() -> None:
    """spicepod.model's ON_DEMAND_MODES is the table's, not a copy."""
    assert model.ON_DEMAND_MODES is ON_DEMAND_MODES
    assert model.RefreshMode is RefreshMode


@pytest.mark.parametrize("mode", [m for m, rules in REFRESH_MODES.items() if not rules.on_demand])
def test_overrides_refuse_modes_the_table_keeps_off_demand(mode: RefreshMode) -> None:
    """An override asking for a mode the table keeps off demand is refused, naming the allowed ones."""
    with pytest.raises(OverridesError, match="full, append"):
        parse_overrides({"refresh_mode": mode.value}, "ds")


@pytest.mark.parametrize("mode", [m for m, rules in REFRESH_MODES.items() if not rules.refetches])
def test_hook_has_no_strategy_for_initial_load_only_modes(mode: RefreshMode, tmp_path: Path) -> None:
    """A mode that does not re-fetch has no strategy: a terminal error naming full or append."""
    with pytest.raises(TerminalRefreshError, match="use full or append"):
        strategy_for(make_dataset("ds", tmp_path / "x.parquet"), mode)
