"""Real disks that fail under a running FleetPulse, made by the test (root, `mount` and loop
devices; without them the test is `missing`).

- `tmpfs`: a tmpfs with the mount options a test asks for (`ro`, `nr_inodes=1`, ...).
- `SmallDisk`: a tmpfs a few MB large. `fill()` writes a ballast file until the kernel
  answers ENOSPC, so every file on it is full for real; `free()` deletes the ballast.
- `Ext4Disk`: an ext4 image on a loop device, mounted `errors=remount-ro` as Debian mounts
  its disks. `fail()` makes the kernel meet an ext4 error (`trigger_fs_error` in sysfs), and
  the kernel turns the file system read-only under the open files, as after a real disk
  fault. The way back is the operator's: `repair()` detaches it (`umount -l`, as it is busy),
  checks a copy of the image with `e2fsck` and mounts that copy where the old one was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.support.require import missing


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")


def _mount_or_missing(*argv: str) -> None:
    try:
        _run(*argv)
    except (RuntimeError, FileNotFoundError) as exc:
        missing(f"cannot mount a test disk here (root, mount and loop devices needed): {exc}")


class SmallDisk:
    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.ballast = mountpoint / "ballast"

    def fill(self) -> None:
        chunk = b"\0" * (64 << 10)
        with self.ballast.open("ab") as out:
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
            # the last partial chunk may still sit in the buffer: fill to the byte
            with contextlib.suppress(OSError):
                os.write(out.fileno(), chunk[: 4 << 10])

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)


class Ext4Disk:
    def __init__(self, folder: Path, size_mb: int) -> None:
        self.folder = folder
        self.mountpoint = folder / "mnt"
        self.image = folder / "disk.img"
        self.size_mb = size_mb

    def mount(self, image: Path) -> None:
        _mount_or_missing(
            "mount", "-t", "ext4", "-o", "loop,errors=remount-ro", str(image), str(self.mountpoint)
        )

    def create(self) -> None:
        self.mountpoint.mkdir()
        with self.image.open("wb") as out:
            out.truncate(self.size_mb << 20)
        try:
            _run("mkfs.ext4", "-q", "-F", str(self.image))
        except (RuntimeError, FileNotFoundError) as exc:
            missing(f"cannot make an ext4 file system here (e2fsprogs): {exc}")
        self.mount(self.image)

    def device(self) -> str:
        found = subprocess.run(
            ["findmnt", "-n", "-o", "SOURCE", str(self.mountpoint)],
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(found.stdout.strip().splitlines()[-1]).name

    def fail(self) -> None:
        """An ext4 error: with errors=remount-ro the kernel stops every write to it."""
        trigger = Path("/sys/fs/ext4") / self.device() / "trigger_fs_error"
        if not trigger.exists():
            missing(f"this kernel has no {trigger}")
        trigger.write_text("fleetpulse test: disk fault\n")

    def repair(self) -> None:
        """What an operator does: unmount, check the file system, mount it again. The copy
        stands in for the checked disk, since the old mount lives on while files are open."""
        _run("umount", "-l", str(self.mountpoint))
        repaired = self.folder / "repaired.img"
        _run("cp", "--sparse=always", str(self.image), str(repaired))
        done = subprocess.run(["e2fsck", "-f", "-y", str(repaired)], capture_output=True)
        if done.returncode not in (0, 1):  # 1: errors were corrected
            raise RuntimeError(f"e2fsck: {done.stdout.decode()} {done.stderr.decode()}")
        self.mount(repaired)


def _unmount_all(mountpoint: Path) -> None:
    # lazily: a store's threads may still hold files while the fixture ends
    while subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True).returncode == 0:
        pass


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at `folder` (made if missing) with mount `options` (`size=1m,ro`)."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount_or_missing("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder))
    try:
        yield folder
    finally:
        _unmount_all(folder)


@contextlib.contextmanager
def small_disk(folder: Path, size_mb: int = 8) -> Iterator[SmallDisk]:
    with tmpfs(folder, f"size={size_mb}m"):
        yield SmallDisk(folder)


@contextlib.contextmanager
def ext4_disk(folder: Path, size_mb: int = 32) -> Iterator[Ext4Disk]:
    folder.mkdir(parents=True, exist_ok=True)
    disk = Ext4Disk(folder, size_mb)
    disk.create()
    try:
        yield disk
    finally:
        _unmount_all(disk.mountpoint)
