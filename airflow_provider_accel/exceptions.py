"""Errors of the provider, classified so that retry policy follows the type, not the message.

* :class:`SpicepodError` and :class:`RefreshSqlError` are configuration or request errors: they are
  raised before any data moves and are never retried.
* :class:`TransientRefreshError` is a failure that may succeed on its own if tried again later
  (connection refused, timeout, a locked file). The operator retries it with Fibonacci backoff.
* :class:`TerminalRefreshError` is a failure that will fail again until someone changes something
  (bad SQL, missing column, schema mismatch, bad credentials). It fails the task at once.
"""

from __future__ import annotations


class AccelError(Exception):
    """Base class of every error raised by airflow-provider-accel."""


class SpicepodError(AccelError, ValueError):
    """The spicepod is invalid: the message names the dataset, the field and what is allowed."""

    def __init__(self, message: str, *, dataset: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.field = field


class RefreshSqlError(AccelError, ValueError):
    """A ``refresh_sql`` was rejected by the validator; the message says which rule it broke."""


class RefreshError(AccelError):
    """A refresh of a dataset failed. Subclasses say whether trying again can help."""

    #: Whether the operator may retry the refresh.
    transient: bool = False

    def __init__(self, message: str, *, dataset: str | None = None) -> None:
        super().__init__(message)
        self.dataset = dataset


class TransientRefreshError(RefreshError):
    """A refresh failure that may go away on its own: retried with backoff."""

    transient = True


class TerminalRefreshError(RefreshError):
    """A refresh failure that needs a change to the data, the source or the spicepod: not retried."""

    transient = False


class SourceLockedError(TransientRefreshError):
    """The DuckDB file is locked by another process (a reader or a writer); retry shortly."""
