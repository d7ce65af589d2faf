"""Which refresh modes exist, and what each one may do: the one table every module reads.

The loader, the on-demand overrides, the trigger form, the DAG factory, the operator and the hook
all ask this table instead of restating the rules. It is plain data (standard library only), so the
DAG file and the API can import it at parse time without DuckDB.

A mode's behaviour (what to fetch, how to reconcile with the live table) lives in
:mod:`.strategies`, one strategy per mode that :attr:`ModeRules.refetches`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class RefreshMode(StrEnum):
    FULL = "full"
    APPEND = "append"
    CHANGES = "changes"
    CACHING = "caching"
    DISABLED = "disabled"
    SNAPSHOT = "snapshot"  # a read replica: follows the published acceleration snapshots


@dataclass(frozen=True)
class ModeRules:
    """What a refresh mode may do in this provider."""

    #: An on-demand refresh (API, DAG run conf, trigger form) may ask for it.
    on_demand: bool
    #: Scheduled runs fetch from the source again; otherwise only the initial full load runs.
    refetches: bool
    #: Why a mode that does not re-fetch stops after its initial load (shown in logs and status).
    initial_load_only_reason: str | None = None
    #: A manual run (API, trigger form) of a dataset configured with this mode does its work, even
    #: when an override may not ask for the mode (``on_demand``): a replica follows its snapshots.
    manual_runs: bool | None = None

    @property
    def serves_manual_runs(self) -> bool:
        """A manual run of a dataset in this mode is served (by default: when it may be asked for)."""
        return self.on_demand if self.manual_runs is None else self.manual_runs


REFRESH_MODES: Mapping[RefreshMode, ModeRules] = MappingProxyType(
    {
        RefreshMode.FULL: ModeRules(on_demand=True, refetches=True),
        RefreshMode.APPEND: ModeRules(on_demand=True, refetches=True),
        RefreshMode.CHANGES: ModeRules(
            on_demand=False,
            refetches=False,
            initial_load_only_reason="changes streams a source's change feed (CDC), which no source of "
            "this provider offers",
        ),
        RefreshMode.CACHING: ModeRules(
            on_demand=False,
            refetches=False,
            initial_load_only_reason="caching fills the acceleration from the queries Spice serves, and "
            "this provider serves no queries",
        ),
        RefreshMode.DISABLED: ModeRules(
            on_demand=False,
            refetches=False,
            initial_load_only_reason="refreshes are disabled",
        ),
        # Never fetches from the source: each run follows the published snapshots (snapshots/),
        # which the operator handles before any strategy; its runs may be triggered on demand.
        RefreshMode.SNAPSHOT: ModeRules(on_demand=False, refetches=False, manual_runs=True),
    }
)

#: Modes an on-demand refresh may ask for, in the table's order.
ON_DEMAND_MODES: tuple[RefreshMode, ...] = tuple(m for m, rules in REFRESH_MODES.items() if rules.on_demand)
#: Modes whose scheduled runs fetch from the source again.
REFETCHING_MODES: tuple[RefreshMode, ...] = tuple(m for m, rules in REFRESH_MODES.items() if rules.refetches)


def rules_for(mode: RefreshMode) -> ModeRules:
    """The rules of ``mode``."""
    return REFRESH_MODES[mode]


__all__ = ["ON_DEMAND_MODES", "REFETCHING_MODES", "REFRESH_MODES", "ModeRules", "RefreshMode", "rules_for"]
