"""Fixtures of the durability tests: a size-limited tmpfs as the data directory, hooks, datasets."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from accelerator.conftest import data_dir, hook, src  # noqa: F401  (the accelerator suite's fixtures)
from servers import services_required


def _skip_or_fail(reason: str) -> None:
    if services_required():
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted for this test (needs root: CI runs as root; skipped loudly elsewhere)."""
    if os.geteuid() != 0:
        _skip_or_fail(
            "!!! mounting a size-limited tmpfs needs root (CI runs as root): disk-full test skipped"
        )
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        _skip_or_fail(f"!!! could not mount a tmpfs at {mount}: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
