"""Spice's connectors as data: which ``from:`` forms exist, which this provider serves, with what extra.

Pure data and string matching, no driver imports: the spicepod loader and the API use it to report a
dataset that cannot be served (status ``Error``, with the reason) instead of building a DAG that can
only fail at its first run.
"""

from __future__ import annotations


def unservable_reason(from_: str) -> str | None:
    """Why a dataset reading ``from_`` cannot be served here, or ``None`` when it can."""
    return None
