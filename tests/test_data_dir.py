"""A `--data-dir` that cannot be made or written stops `up`, `collector` and `alerting` at
start with one line: the folder, the cause and what to do next (issue #15).

The failures are real: tmpfs mounts this test makes read-only or without a free inode (as
root), the CLI run as the unprivileged user 65534 under a folder owned by root (`missing`
when that user cannot run this venv), and root without CAP_DAC_OVERRIDE under a folder owned
by 65534."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetpulse.app.datadir import check_data_dir
from tests.support.cli import run_cli
from tests.support.require import missing

COMMANDS = ("up", "collector", "alerting")
NOBODY = 65534


# a routine log line at start, e.g. `alerting.reload: rules loaded` (the rules are checked
# before the data dir, so that a bad rule file leaves no folder behind)
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT[\d:]{8} (DEBUG|INFO) ")


def assert_one_line(code: int, out: str, err: str, *words: str) -> None:
    """Exit 1 and one error line on stderr, the last, besides routine log lines."""
    assert code == 1, err
    assert out == ""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not LOG_LINE.match(line)]
    assert len(lines) == 1, err
    line = lines[0]
    assert err.splitlines()[-1] == line, err
    assert line.startswith("error: cannot use the data dir "), line
    for word in words:
        assert word in line, (word, line)
    assert "choose another --data-dir" in line


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """mount(name, options): a tmpfs at tmp_path/name (needs root and mount; else `missing`),
    unmounted after the test."""
    points: list[Path] = []

    def mount(name: str, options: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            check=False,
        )
        if mounted.returncode != 0:
            missing(f"cannot mount a tmpfs ({options}) here: {mounted.stderr.decode().strip()}")
        points.append(folder)
        return folder

    yield mount
    for point in reversed(points):
        subprocess.run(["umount", str(point)], check=False)


@pytest.fixture
def read_only(tmpfs: Callable[[str, str], Path]) -> Path:
    return tmpfs("ro", "size=1m,ro")


@pytest.fixture
def remounted_data(tmpfs: Callable[[str, str], Path]) -> Path:
    """A data dir made on a tmpfs that is then remounted read-only."""
    data = tmpfs("disk", "size=1m") / "data"
    data.mkdir()
    remounted = subprocess.run(
        ["mount", "-o", "remount,ro", str(data.parent)], capture_output=True, check=False
    )
    assert remounted.returncode == 0, remounted.stderr
    return data


@pytest.fixture
def full_disk(tmpfs: Callable[[str, str], Path]) -> Path:
    # one inode, the root folder's: the kernel answers ENOSPC to any new file or folder
    return tmpfs("full", "size=1m,nr_inodes=1")


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_data_dir_on_a_read_only_file_system_is_refused_at_start(
    command: str, tmp_path: Path, read_only: Path
) -> None:
    data = read_only / "data"

    code, out, err = await run_cli(command, "--data-dir", str(data), cwd=tmp_path)

    assert_one_line(
        code, out, err, str(data), f"read-only file system at {read_only}", "remount it read-write"
    )
    assert not data.exists()


async def test_an_existing_data_dir_remounted_read_only_is_refused_at_start(
    tmp_path: Path, remounted_data: Path
) -> None:
    data = remounted_data

    code, out, err = await run_cli("up", "--data-dir", str(data), cwd=tmp_path)

    assert_one_line(code, out, err, f"{data}: read-only file system at {data};")


async def test_a_data_dir_on_a_disk_without_room_for_a_file_is_refused_at_start(
    tmp_path: Path, full_disk: Path
) -> None:
    data = full_disk / "data"

    code, out, err = await run_cli("collector", "--data-dir", str(data), cwd=tmp_path)

    assert_one_line(code, out, err, str(data), f"disk full at {full_disk}", "free space there")


@pytest.fixture
def root_owned_folder() -> Iterator[Path]:
    """A folder owned by root, mode 0755, that user 65534 can reach but not write, outside
    pytest's tmp_path (its root folder is 0700: 65534 could not even look in)."""
    if os.geteuid() != 0:
        missing("running the CLI as user 65534 needs root")
    folder = Path(tempfile.mkdtemp(prefix="fleetpulse-data-dir-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder)


def require_runnable_as_nobody(cwd: Path) -> None:
    """User 65534 must be able to run this interpreter and import this repository's fleetpulse
    (a venv or checkout under a folder it may not read is a missing part, not a pass).

    `setpriv --reuid` is no proof: it keeps root's capabilities up to the exec, so it starts
    an interpreter under a folder 65534 may not read, which then runs on whatever libpython
    and standard library 65534 can find."""
    interpreter = os.path.realpath(sys.executable)
    try:
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, fleetpulse.app.cli; print(fleetpulse.app.cli.__file__); "
                "print(*sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            cwd=cwd,
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            timeout=60,
            check=False,
        )
    except OSError as exc:
        missing(
            f"user {NOBODY} cannot run this venv's interpreter {sys.executable} "
            f"(-> {interpreter}): {exc.strerror}; install the venv where that user may read it"
        )
    if probe.returncode != 0:
        missing(
            f"user {NOBODY} cannot run {sys.executable} and import fleetpulse: "
            f"{probe.stderr.strip().splitlines()[-1:] or probe.returncode}"
        )
    where, version = probe.stdout.splitlines()
    import fleetpulse.app.cli

    if Path(where) != Path(fleetpulse.app.cli.__file__):
        missing(f"user {NOBODY} imports another fleetpulse ({where})")
    if version != f"{sys.version_info[0]} {sys.version_info[1]}":
        missing(f"user {NOBODY} gets Python {version} from {sys.executable}, not this venv's")


@pytest.fixture
def nobody_cannot_write(root_owned_folder: Path) -> Path:
    """`root_owned_folder`, once user 65534 is known to run this venv's fleetpulse."""
    require_runnable_as_nobody(root_owned_folder)
    return root_owned_folder


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_data_dir_the_user_may_not_create_is_refused_at_start(
    command: str, nobody_cannot_write: Path
) -> None:
    root_owned_folder = nobody_cannot_write
    data = root_owned_folder / "data"

    code, out, err = await run_cli(
        command, "--data-dir", str(data), cwd=root_owned_folder, uid=NOBODY
    )

    name = pwd.getpwuid(NOBODY).pw_name
    assert_one_line(
        code,
        out,
        err,
        str(data),
        f"permission denied in {root_owned_folder}",
        f"give the user running FleetPulse ({name}) write access to {root_owned_folder}",
    )
    assert not data.exists()


async def test_an_existing_data_dir_the_user_may_not_write_is_refused_at_start(
    nobody_cannot_write: Path,
) -> None:
    data = nobody_cannot_write / "data"
    data.mkdir(mode=0o755)

    code, out, err = await run_cli("alerting", "--data-dir", str(data), cwd=data, uid=NOBODY)

    assert_one_line(code, out, err, f"{data}: permission denied in {data};")
    assert list(data.iterdir()) == []


async def test_a_data_dir_root_may_not_create_without_dac_override_is_refused_at_start(
    root_owned_folder: Path,
) -> None:
    # root without CAP_DAC_OVERRIDE (a systemd CapabilityBoundingSet, a hardened container)
    # obeys the mode bits like anyone: a folder owned by 65534, mode 0755, refuses it
    if shutil.which("setpriv") is None:
        missing("setpriv (util-linux) is not installed")
    os.chown(root_owned_folder, NOBODY, NOBODY)
    data = root_owned_folder / "data"
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]

    code, out, err = await run_cli(
        "up", "--data-dir", str(data), cwd=root_owned_folder, prefix=drop
    )

    assert_one_line(
        code,
        out,
        err,
        str(data),
        f"permission denied in {root_owned_folder}",
        f"give the user running FleetPulse (root) write access to {root_owned_folder}",
    )
    assert not data.exists()


async def test_a_file_where_the_data_dir_should_be_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder\n")

    code, out, err = await run_cli("up", "--data-dir", "data/sub", cwd=tmp_path)

    blocker = tmp_path / "data"
    assert_one_line(code, out, err, f"not a folder: {blocker} is a file", f"move {blocker} aside")


def test_a_usable_data_dir_is_made_and_left_empty(tmp_path: Path) -> None:
    data = tmp_path / "a" / "data"
    check_data_dir(data)
    check_data_dir(data)  # again, on the folder it made
    assert data.is_dir()
    assert list(data.iterdir()) == []
