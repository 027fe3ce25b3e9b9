"""What a failed SQLite call means for an operator: its cause and what to do next.

SQLite reports a full disk with its own code (`sqlite_errorcode`), but not always the others:
a file system the kernel turned read-only under a running store (ext4's errors=remount-ro)
answers SQLITE_IOERR_WRITE ("disk I/O error"), and a read-only file system and a file the
user may not write both answer SQLITE_READONLY. For those, the folder itself is asked: a file
created there fails with the errno that names the cause (EROFS, EACCES, ENOSPC).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fleetpulse.core.probe import nearest_existing, refusal
from fleetpulse.core.storage import StorageError, StorageUnavailable
from fleetpulse.core.storehealth import Cause, cause_of_errno

_BY_CODE = {
    sqlite3.SQLITE_FULL: Cause.DISK_FULL,
    sqlite3.SQLITE_READONLY: Cause.READ_ONLY,
    sqlite3.SQLITE_PERM: Cause.PERMISSION_DENIED,
    sqlite3.SQLITE_CANTOPEN: Cause.PERMISSION_DENIED,
    sqlite3.SQLITE_AUTH: Cause.PERMISSION_DENIED,
    sqlite3.SQLITE_BUSY: Cause.LOCKED,
    sqlite3.SQLITE_LOCKED: Cause.LOCKED,
    sqlite3.SQLITE_CORRUPT: Cause.CORRUPT,
    sqlite3.SQLITE_NOTADB: Cause.CORRUPT,
}


def folder_refuses(path: Path) -> Cause | None:
    """Why the nearest existing folder of `path` refuses a new file, or None if it takes one.

    Asked, not read from the mount flags: those miss ext4's emergency read-only state, which
    keeps `rw` in them."""
    refused = refusal(nearest_existing(path if path.is_dir() else path.parent))
    cause = None if refused is None else cause_of_errno(refused.errno)
    return None if cause == Cause.OTHER else cause


def cause_of(exc: sqlite3.Error | OSError, path: Path) -> Cause:
    if isinstance(exc, OSError):
        return cause_of_errno(exc.errno)
    # extended codes (SQLITE_READONLY_DBMOVED, SQLITE_IOERR_…) keep the primary in the low
    # byte
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    cause = _BY_CODE.get(code, Cause.OTHER)
    if cause in (Cause.READ_ONLY, Cause.PERMISSION_DENIED) or code == sqlite3.SQLITE_IOERR:
        refused = folder_refuses(path)
        if refused is not None:
            return refused
        if code == sqlite3.SQLITE_IOERR:
            return Cause.DISK_FULL if "full" in str(exc) else Cause.OTHER
        # the folder takes new files, so it is the database file's own mode
        return Cause.PERMISSION_DENIED
    return cause


_ADVICE = {
    Cause.DISK_FULL: "the disk holding it is full; free space there (writes resume by "
    "themselves) or shorten storage.retention",
    Cause.READ_ONLY: "its folder is on a read-only file system; remount it read-write or "
    "choose another --data-dir",
    Cause.PERMISSION_DENIED: "permission denied; give the user running FleetPulse read and "
    "write access to the file and its folder, or choose another --data-dir",
    Cause.LOCKED: "another process holds a lock on it; run one collector per SQLite file",
    Cause.CORRUPT: "it is damaged or not a database; move it aside to start a fresh one",
}


def storage_error(exc: sqlite3.Error | OSError, path: Path) -> StorageError:
    """The StorageError to raise for `exc`: its cause, SQLite's words and what to do next.

    A corrupt file is a StorageError (retrying will not help); everything else may pass by
    itself (space freed, the lock released, the mount fixed) and is StorageUnavailable."""
    cause = cause_of(exc, path)
    words = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    advice = _ADVICE.get(cause)
    message = f"sqlite store {path}: {words}" + (f"; {advice}" if advice else "")
    if cause == Cause.CORRUPT or not isinstance(exc, sqlite3.OperationalError | OSError):
        return StorageError(message, cause)
    return StorageUnavailable(message, cause)
