"""A `--data-dir` that cannot be made or written stops `up`, `collector` and `alerting` at
start with one line: the folder, the cause and what to do next (issue #15).

The failures are real: tmpfs mounts this test makes read-only or without a free inode (as
root), and root without CAP_DAC_OVERRIDE (which then obeys file modes like any user) under a
folder owned by user 65534."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fleetpulse.app.datadir import check_data_dir
from tests.support.cli import run_cli, without_dac_override
from tests.support.disks import tmpfs as mount_tmpfs
from tests.support.require import missing

COMMANDS = ("up", "collector", "alerting")
NOT_ROOT = 65534


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
    with contextlib.ExitStack() as mounts:
        yield lambda name, options: mounts.enter_context(mount_tmpfs(tmp_path / name, options))


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
def not_root_s_folder() -> Iterator[Path]:
    """A folder owned by user 65534, mode 0755: root without CAP_DAC_OVERRIDE (a systemd
    CapabilityBoundingSet, a hardened container) obeys its mode bits like anyone and may not
    write in it. Outside pytest's tmp_path, whose 0700 root folder would refuse even reads."""
    if os.geteuid() != 0:
        missing("taking CAP_DAC_OVERRIDE away from root needs root")
    folder = Path(tempfile.mkdtemp(prefix="fleetpulse-data-dir-"))
    try:
        folder.chmod(0o755)
        os.chown(folder, NOT_ROOT, NOT_ROOT)
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_data_dir_the_user_may_not_create_is_refused_at_start(
    command: str, not_root_s_folder: Path
) -> None:
    data = not_root_s_folder / "data"

    code, out, err = await run_cli(
        command, "--data-dir", str(data), cwd=not_root_s_folder, prefix=without_dac_override()
    )

    assert_one_line(
        code,
        out,
        err,
        str(data),
        f"permission denied in {not_root_s_folder}",
        f"give the user running FleetPulse (root) write access to {not_root_s_folder}",
    )
    assert not data.exists()


async def test_an_existing_data_dir_the_user_may_not_write_is_refused_at_start(
    not_root_s_folder: Path,
) -> None:
    data = not_root_s_folder / "data"
    data.mkdir(mode=0o755)
    os.chown(data, NOT_ROOT, NOT_ROOT)

    code, out, err = await run_cli(
        "alerting", "--data-dir", str(data), cwd=data, prefix=without_dac_override()
    )

    assert_one_line(code, out, err, f"{data}: permission denied in {data};")
    assert list(data.iterdir()) == []


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
