"""A minimal inotify watcher (ctypes, Linux): which files of a directory any process opened or read.

Used to prove that hostile requests never touch files they name: the kernel reports every open,
read and create in the watched directory, whatever process or library (DuckDB's C++ file system
included) does it, so the check does not depend on access times or on Python's own hooks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import threading
from pathlib import Path

IN_ACCESS = 0x001
IN_MODIFY = 0x002
IN_OPEN = 0x020
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
_EVENT = struct.Struct("iIII")
_NAMES = {
    IN_ACCESS: "access",
    IN_MODIFY: "modify",
    IN_OPEN: "open",
    IN_MOVED_FROM: "moved_from",
    IN_MOVED_TO: "moved_to",
    IN_CREATE: "create",
    IN_DELETE: "delete",
}
ACCESS_MASK = IN_ACCESS | IN_MODIFY | IN_OPEN | IN_CREATE


class DirectoryWatch:
    """Record events (open, read, modify, create, ...) in one directory until :meth:`events` is called."""

    def __init__(self, directory: Path, mask: int = ACCESS_MASK) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self._fd, os.fsencode(directory), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch({directory}) failed")

    def events(self, wait: float = 0.05) -> list[tuple[str, str]]:
        """(event, file name) pairs seen so far, in the kernel's order."""
        seen: list[tuple[str, str]] = []
        while select.select([self._fd], [], [], wait)[0]:
            buffer = os.read(self._fd, 65536)
            offset = 0
            while offset < len(buffer):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buffer, offset)
                name = buffer[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0").decode()
                offset += _EVENT.size + length
                kinds = [label for bit, label in _NAMES.items() if mask & bit] or [hex(mask)]
                seen.extend((kind, name) for kind in kinds)
        return seen

    def close(self) -> None:
        os.close(self._fd)


class DirectoryRecorder:
    """A :class:`DirectoryWatch` drained by a thread, so that long runs never overflow the kernel queue."""

    def __init__(self, directory: Path, mask: int) -> None:
        self._watch = DirectoryWatch(directory, mask)
        self._stop = threading.Event()
        self.events: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            self.events.extend(self._watch.events(wait=0.2))

    def stop(self) -> list[tuple[str, str]]:
        self._stop.set()
        self._thread.join()
        self.events.extend(self._watch.events())
        self._watch.close()
        return self.events
