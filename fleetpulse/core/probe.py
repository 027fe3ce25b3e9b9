"""Whether a folder takes a new file: the one question that names a disk's failure when the
error at hand does not (SQLite's "disk I/O error"), or before anything is written there."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def refusal(folder: Path) -> OSError | None:
    """The error creating a file in `folder` meets (EROFS, EACCES, ENOSPC, ...), or None when
    it takes one; the file is removed again."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".fleetpulse-probe.", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def exists(path: Path) -> bool:
    """Whether `path` exists as far as this user can tell (Path.exists raises on EACCES)."""
    try:
        path.stat()
    except OSError:
        return False
    return True


def nearest_existing(path: Path) -> Path:
    """`path` if it exists, else its nearest ancestor this user can see: the folder that
    decides whether anything below it can be made."""
    folder = path.absolute()
    while not exists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder
