"""Demo helpers: locally generated data for the example spicepod (no network needed at run time)."""

from __future__ import annotations
