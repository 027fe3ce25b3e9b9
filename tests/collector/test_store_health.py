"""The SQLite store's health on real failures: a full database (`tests/support/sqlite_full`:
SQLite answers SQLITE_FULL exactly as on a full disk), a read-only file system (a small
tmpfs this test mounts read-only, as root) and an ext4 disk the kernel turns read-only under
the running store (`tests/support/disks`)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import StorageUnavailable
from fleetpulse.core.storehealth import Cause
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.disks import ext4_disk, tmpfs
from tests.support.poll import eventually
from tests.support.sqlite_full import fill, free


def samples(count: int, start: int = 0) -> list[Sample]:
    t = now_ms()
    return [
        Sample("host_disk_usage_percent", make_labels({"host": f"h{i}", "job": "j"}), 1.0, t)
        for i in range(start, start + count)
    ]


async def test_a_full_database_names_its_cause_once_and_recovers_by_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
    try:
        await store.write(samples(10))
        await fill(store)
        for attempt in range(3):
            with pytest.raises(StorageUnavailable) as failed:
                await store.write(samples(5000, start=1000 * (attempt + 1)))
            assert failed.value.cause == Cause.DISK_FULL
            # SQLite rolled the transaction back itself; the ROLLBACK after it must not
            # replace the reason
            assert "database or disk is full" in str(failed.value)
            assert "no transaction is active" not in str(failed.value)
        health = store.health()
        assert health.write is not None and health.write.cause == Cause.DISK_FULL
        assert health.as_json()["status"] == "degraded"
        assert "free space" in health.as_json()["write"]["error"]
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "cause=disk_full" in errors[0], errors  # once per outage
        assert store.health().writes_missing(health.write.since_ms, now_ms())

        await free(store)
        await store.write(samples(5000, start=9000))
        # a write that succeeds right after failures may have fit in a freed page: the
        # outage ends after HEALTH_SETTLE seconds of writes without a failure
        assert store.health().write is not None

        async def recovered() -> bool:
            await store.write(samples(10, start=20_000))
            return store.health().ok

        await eventually(recovered, what="the outage over", every=0.5)
        outage = store.health().last_write_outage
        assert outage is not None and outage[0] == health.write.since_ms
        assert any("writes recovered cause=disk_full" in r.getMessage() for r in caplog.records)
    finally:
        await store.close()


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs, mounted read-only (needs root and mount; else `missing`)."""
    with tmpfs(tmp_path / "ro", "size=1m,ro") as folder:
        yield folder


async def test_a_store_on_a_read_only_file_system_says_so_at_open(read_only_folder: Path) -> None:
    with pytest.raises(StorageUnavailable) as failed:
        await SqliteStorage.open(read_only_folder / "data" / "metrics.db", RetentionSettings())
    assert failed.value.cause == Cause.READ_ONLY
    assert "read-only file system" in str(failed.value) and "--data-dir" in str(failed.value)


async def test_a_disk_turned_read_only_under_the_store_is_named_and_a_remount_reopens_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The kernel turns ext4 read-only under the open file (errors=remount-ro): SQLite only
    says "disk I/O error", the folder says why. The repaired disk mounted at the same place
    is a new file, which the store reopens by itself."""
    with ext4_disk(tmp_path / "disk") as disk:
        store = await SqliteStorage.open(disk.mountpoint / "metrics.db", RetentionSettings())
        try:
            await store.write(samples(3))
            disk.fail()
            with pytest.raises(StorageUnavailable) as failed:
                await store.write(samples(3, start=10))
            assert failed.value.cause == Cause.READ_ONLY
            assert "read-only file system" in str(failed.value)
            health = store.health()
            assert health.write is not None and health.write.cause == Cause.READ_ONLY

            disk.repair()
            await store.write(samples(3, start=20))  # no failure: reopened and written
            found = await store.query_latest(Selector("host_disk_usage_percent"), 0)
            assert {"h20", "h21", "h22"} <= {dict(v.labels)["host"] for v in found}
            assert "is a new one (remounted or restored): reopening" in caplog.text
        finally:
            await store.close()
