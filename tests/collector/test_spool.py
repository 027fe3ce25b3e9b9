"""The on-disk write spool: order, restarts, the size bound and damaged files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from collector.storage.spool import Spool

MIB = 1024 * 1024


def batch(start: int, count: int = 10) -> list[str]:
    return [
        f"m,host=web-{i % 3} value={i}.0 {1_764_237_600_000 + i}"
        for i in range(start, start + count)
    ]


def drain(spool: Spool) -> list[str]:
    out = []
    while (entry := spool.peek()) is not None:
        out += spool.read(entry)
        spool.remove(entry)
    return out


def test_batches_come_back_oldest_first_with_their_tier(tmp_path: Path) -> None:
    spool = Spool.open(tmp_path, MIB)
    spool.append("raw", batch(0))
    spool.append("daily", ['alert_events,host=a state="firing" 1'])
    spool.append("raw", batch(10))
    assert (len(spool), spool.lines) == (3, 21)
    tiers = []
    lines = []
    while (entry := spool.peek()) is not None:
        tiers.append(entry.tier)
        lines += spool.read(entry)
        spool.remove(entry)
    assert tiers == ["raw", "daily", "raw"]
    assert lines == [*batch(0), 'alert_events,host=a state="firing" 1', *batch(10)]
    assert spool.size_bytes == 0 and list(tmp_path.iterdir()) == []


def test_spool_survives_a_restart_and_keeps_numbering_after_it(tmp_path: Path) -> None:
    first = Spool.open(tmp_path, MIB)
    first.append("raw", batch(0))
    first.append("raw", batch(10))
    (tmp_path / "000000000099-raw-10.lp.gz.tmp").write_bytes(b"half a batch")  # a crash mid-write

    second = Spool.open(tmp_path, MIB)
    assert (len(second), second.lines) == (2, 20)
    assert not list(tmp_path.glob("*.tmp"))
    second.append("raw", batch(20))
    assert drain(second) == batch(0) + batch(10) + batch(20)


def test_past_the_bound_the_oldest_batches_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="collector.storage.spool")
    probe = Spool.open(tmp_path / "probe", MIB)
    size = probe.append("raw", batch(0, 200)).size
    spool = Spool.open(tmp_path / "bounded", int(size * 2.5))
    for i in range(5):
        spool.append("raw", batch(i * 200, 200))
    assert len(spool) == 2
    assert spool.dropped_batches == 3 and spool.dropped_lines == 600
    assert spool.size_bytes <= spool.max_bytes
    assert drain(spool) == batch(600, 200) + batch(800, 200)
    dropped = [r.getMessage() for r in caplog.records if "dropped oldest" in r.getMessage()]
    assert len(dropped) == 3 and "samples=200" in dropped[-1]
    assert "dropped_samples_total=600" in dropped[-1]


def test_a_damaged_batch_is_dropped_and_counted_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool.open(tmp_path, MIB)
    entry = spool.append("raw", batch(0))
    spool.append("raw", batch(10))
    (tmp_path / entry.filename).write_bytes(b"not gzip")
    assert drain(spool) == batch(10)
    assert spool.dropped_lines == 10
    assert any("unreadable" in r.getMessage() for r in caplog.records)
