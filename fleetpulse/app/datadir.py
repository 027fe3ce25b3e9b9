"""The `--data-dir` check at start: the folder is made if missing and must take a new file.

`up`, `collector` and `alerting` keep their store, spool, alert state and log cursors there.
Without this check, a folder that cannot be made or written surfaces later as a raw
`[Errno 30] Read-only file system`; with it, the command exits at once with one line that
names the folder, the cause and what to do next.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from fleetpulse.core.errors import FleetPulseError
from fleetpulse.core.probe import exists, nearest_existing, refusal
from fleetpulse.core.storehealth import Cause, cause_of_errno

OTHER_DIR = "choose another --data-dir"


class DataDirError(FleetPulseError):
    """The data directory cannot be made or written; the message says why and what to do."""


def check_data_dir(path: Path) -> None:
    """Make `path` (and its parents) if missing, then create and remove a file in it.

    Raises DataDirError naming the folder, the cause and what to do next."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataDirError(data_dir_problem(path, exc)) from exc
    refused = refusal(path)
    if refused is not None:
        raise DataDirError(data_dir_problem(path, refused)) from refused


def data_dir_problem(path: Path, exc: OSError) -> str:
    """One line for `exc`, met making or writing the data directory `path`."""
    where = f"cannot use the data dir {path.absolute()}"
    if isinstance(exc, FileExistsError | NotADirectoryError):
        blocker = _file_in_the_way(path)
        return f"{where}: not a folder: {blocker} is a file; {OTHER_DIR}, or move {blocker} aside"
    folder = nearest_existing(path)
    cause = cause_of_errno(exc.errno)
    if cause == Cause.READ_ONLY:
        return f"{where}: read-only file system at {folder}; remount it read-write, or {OTHER_DIR}"
    if cause == Cause.PERMISSION_DENIED:
        return (
            f"{where}: permission denied in {folder}; {OTHER_DIR}, or give the user running "
            f"FleetPulse ({_user()}) write access to {folder}"
        )
    if cause == Cause.DISK_FULL:
        return f"{where}: disk full at {folder}; free space there, or {OTHER_DIR}"
    return f"{where}: {exc.strerror or exc}; {OTHER_DIR}"


def _file_in_the_way(path: Path) -> Path:
    """The first of `path`'s ancestors (or itself) that exists and is not a folder."""
    absolute = path.absolute()
    for candidate in [*reversed(absolute.parents), absolute]:
        if exists(candidate) and not candidate.is_dir():
            return candidate
    return absolute


def _user() -> str:
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"
