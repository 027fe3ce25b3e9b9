"""The embedded store on a real SQLite file: writes, range and latest queries, other readers."""

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collector.storage.sqlite import SqliteStorage
from collector.storage.sqlite.catchup import catch_up
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.selector import Selector, parse_selector
from fleetpulse.core.storage import RangeQuery, StorageError
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms

WEB = make_labels({"host": "web-1", "job": "fleetpulse"})


def disk(mount: str, host: str = "web-1") -> tuple[tuple[str, str], ...]:
    return make_labels({"host": host, "job": "fleetpulse", "mountpoint": mount})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    """The shared fixture's store, but in a data folder that does not exist yet, as a first
    `fleetpulse collector --data-dir data` finds it."""
    storage = await SqliteStorage.open(tmp_path / "data" / "metrics.db", RetentionSettings())
    yield storage
    await storage.close()


async def test_written_points_come_back_per_series_in_order(store: SqliteStorage) -> None:
    t0 = now_ms() - 60_000
    await store.write(
        [
            Sample("host_disk_usage_percent", disk(m), v + i, t0 + i * 1000)
            for i in range(5)
            for m, v in (("/", 10.0), ("/data", 50.0))
        ]
    )
    result = await store.query_range(
        RangeQuery(parse_selector('host_disk_usage_percent{host="web-1"}'), t0, t0 + 10_000)
    )
    assert result.tier == "raw"
    assert {dict(s.labels)["mountpoint"]: s.points for s in result.series} == {
        "/": [(t0 + i * 1000, 10.0 + i) for i in range(5)],
        "/data": [(t0 + i * 1000, 50.0 + i) for i in range(5)],
    }


async def test_rewriting_the_same_samples_does_not_duplicate(store: SqliteStorage) -> None:
    t0 = now_ms() - 10_000
    batch = [Sample("up", WEB, 1.0, t0 + i) for i in range(3)]
    await store.write(batch)
    await store.write(batch)
    result = await store.query_range(RangeQuery(Selector("up"), t0 - 1, t0 + 10))
    assert result.series[0].points == [(t0, 1.0), (t0 + 1, 1.0), (t0 + 2, 1.0)]


async def test_step_buckets_aggregate_by_mean_min_max_last(store: SqliteStorage) -> None:
    t0 = (now_ms() // 60_000 - 5) * 60_000
    await store.write([Sample("m", WEB, float(i), t0 + i * 10_000) for i in range(12)])
    selector = Selector("m")
    expected = {
        "mean": [2.5, 8.5],
        "min": [0.0, 6.0],
        "max": [5.0, 11.0],
        "last": [5.0, 11.0],
        "count": [6.0, 6.0],
        "sum": [15.0, 51.0],
    }
    for aggregate, values in expected.items():
        result = await store.query_range(RangeQuery(selector, t0, t0 + 119_999, 60_000, aggregate))
        assert result.series[0].points == [(t0, values[0]), (t0 + 60_000, values[1])], aggregate


async def test_regex_and_negative_matchers_select_series(store: SqliteStorage) -> None:
    t = now_ms()
    await store.write([Sample("d", disk(m), 1.0, t) for m in ("/", "/data", "/boot")])
    latest = await store.query_latest(parse_selector('d{mountpoint=~"/d.*|/", mountpoint!="/"}'), 0)
    assert [dict(v.labels)["mountpoint"] for v in latest] == ["/data"]


async def test_latest_and_last_seen(store: SqliteStorage) -> None:
    t = now_ms()
    await store.write([Sample("up", WEB, 1.0, t - 2000), Sample("up", WEB, 0.0, t - 1000)])
    (latest,) = await store.query_latest(Selector("up"), t - 60_000)
    assert (latest.ts_ms, latest.value) == (t - 1000, 0.0)
    assert await store.last_seen("web-1") == t - 2000
    assert await store.last_seen("nobody") is None
    assert await store.query_latest(Selector("up"), t) == []


async def test_nan_values_are_stored_as_gaps(store: SqliteStorage) -> None:
    t = now_ms()
    await store.write([Sample("g", WEB, float("nan"), t - 1), Sample("g", WEB, 2.0, t)])
    result = await store.query_range(RangeQuery(Selector("g"), t - 10, t))
    assert result.series[0].points == [(t, 2.0)]


async def test_another_process_reads_while_the_collector_writes(
    store: SqliteStorage, tmp_path: Path
) -> None:
    t = now_ms()
    await store.write([Sample("up", WEB, 1.0, t)])
    script = (
        "import sqlite3, sys, json; "
        "c = sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); "
        "print(json.dumps(c.execute('select count(*) from raw').fetchone()[0]))"
    )
    for i in range(3):
        await store.write([Sample("up", WEB, 1.0, t + 1 + i)])
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", script, str(store.path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(out.stdout) == 2 + i


async def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="not a database"):
        await SqliteStorage.open(path, RetentionSettings())


async def test_events_are_stored_once_and_filtered_by_labels(store: SqliteStorage) -> None:
    from fleetpulse.core.storage import ALERT_EVENTS, Event

    t = now_ms()
    events = [
        Event(
            t - 2000,
            make_labels({"host": "web-1", "alertname": "HostDown", "state": "firing"}),
            (("value", 0.0), ("summary", "web-1 is down")),
        ),
        Event(
            t - 1000,
            make_labels({"host": "db-1", "alertname": "HostDown", "state": "firing"}),
            (("value", 0.0),),
        ),
    ]
    await store.write_events(ALERT_EVENTS, events)
    await store.write_events(ALERT_EVENTS, events[:1])  # a replay keeps one copy
    every = await store.query_events(ALERT_EVENTS, t - 10_000, t)
    assert [e.ts_ms for e in every] == [t - 2000, t - 1000]
    (web,) = await store.query_events(
        ALERT_EVENTS, t - 10_000, t, parse_selector('x{host="web-1"}')
    )
    assert web.field("summary") == "web-1 is down"
    with pytest.raises(StorageError, match="unknown event measurement"):
        await store.write_events("nope", events)


READER = """
import sqlite3, sys, json, os
path, stop = sys.argv[1], sys.argv[2]
reads = errors = 0
last = 0
went_back = False
while True:
    done = os.path.exists(stop)
    try:
        c = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        n = c.execute("select count(*) from raw").fetchone()[0]
        c.execute("select count(*) from hourly").fetchone()
        c.close()
        went_back = went_back or n < last
        last = n
        reads += 1
    except sqlite3.Error as exc:
        errors += 1
        print(exc, file=sys.stderr)
    if done:
        break
print(json.dumps({"reads": reads, "errors": errors, "last": last, "went_back": went_back}))
"""


async def test_a_reader_process_works_through_writes_and_rollups(
    store: SqliteStorage, tmp_path: Path
) -> None:
    await store.write([Sample("up", WEB, 1.0, now_ms() - 3 * 3_600_000)])
    stop = tmp_path / "stop"
    reader = await asyncio.create_subprocess_exec(
        sys.executable, "-c", READER, str(store.path), str(stop),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    t0 = now_ms() - 2 * 3_600_000
    for batch in range(40):
        await store.write(
            [Sample("g", disk(f"/m{i}"), float(i), t0 + batch * 15_000) for i in range(500)]
        )
        if batch % 10 == 0:
            await catch_up(store, now_ms())
    stop.touch()
    async with asyncio.timeout(60):
        out, err = await reader.communicate()
    report = json.loads(out)
    assert report["errors"] == 0, err.decode()
    assert report["reads"] > 0 and not report["went_back"]
    assert report["last"] == 1 + 40 * 500


async def test_series_written_before_a_restart_keep_their_ids(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    t = now_ms() - 60_000
    first = await SqliteStorage.open(path, RetentionSettings())
    await first.write([Sample("up", WEB, 1.0, t), Sample("load", WEB, 0.5, t)])
    await first.close()
    # a fresh store knows no ids: it finds the existing series and registers the new one
    second = await SqliteStorage.open(path, RetentionSettings())
    try:
        await second.write(
            [Sample("up", WEB, 1.0, t + 1000), Sample("up", disk("/"), 1.0, t + 1000)]
        )
        result = await second.query_range(RangeQuery(Selector("up"), t, t + 1000))
    finally:
        await second.close()
    assert {s.labels: s.points for s in result.series} == {
        WEB: [(t, 1.0), (t + 1000, 1.0)],
        disk("/"): [(t + 1000, 1.0)],
    }
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM series").fetchone() == (3,)


async def test_label_values_needing_escapes_are_stored_as_canonical_json(
    store: SqliteStorage,
) -> None:
    odd = make_labels({"host": "web-1", "path": 'C:\\dir "x"\n', "name": "größe ✓\t\x01"})
    t = now_ms()
    await store.write([Sample("odd", odd, 1.0, t)])
    (series,) = (await store.query_range(RangeQuery(Selector("odd"), t - 1, t))).series
    assert series.labels == odd
    with sqlite3.connect(store.path) as conn:
        (text,) = conn.execute("SELECT labels FROM series WHERE metric = 'odd'").fetchone()
    # files written before the label cache must keep matching: same text as json.dumps
    assert text == json.dumps(dict(odd), separators=(",", ":"), ensure_ascii=False)


async def test_an_expired_series_is_registered_again_when_it_comes_back(
    store: SqliteStorage,
) -> None:
    old = now_ms() - 800 * 86_400_000
    await store.write([Sample("gone", WEB, 1.0, old)])
    await store.rollup("hourly", old // 3_600_000 * 3_600_000)
    await store.rollup("daily", old // 86_400_000 * 86_400_000)
    assert (await store.expire(now_ms()))["series"] == 1
    t = now_ms()
    await store.write([Sample("gone", WEB, 2.0, t)])
    (series,) = (await store.query_range(RangeQuery(Selector("gone"), t - 1, t))).series
    assert series.points == [(t, 2.0)]


async def test_one_query_reads_many_series_with_matchers_rates_and_latest(
    store: SqliteStorage,
) -> None:
    t0 = now_ms() - 600_000
    hosts = [f"h{i}" for i in range(30)]
    await store.write(
        [
            Sample("req_total", make_labels({"host": h, "code": c}), float(i * 10), t0 + i * 10_000)
            for h in hosts
            for c in ("200", "500")
            for i in range(10)
        ]
    )
    rates = await store.query_range(
        RangeQuery(parse_selector('req_total{code="500"}'), t0 + 50_000, t0 + 90_000, None, "rate")
    )
    assert len(rates.series) == 30
    # the point before the range counts: 5 intervals of 10 per 10 s
    assert all(s.points == [(t0 + i * 10_000, 1.0) for i in range(5, 10)] for s in rates.series)
    latest = await store.query_latest(parse_selector('req_total{host=~"h1.*"}'), t0)
    assert sorted((dict(v.labels)["host"], v.value) for v in latest) == sorted(
        (h, 90.0) for h in hosts if h.startswith("h1") for _ in ("200", "500")
    )


async def test_equal_label_tuples_that_are_different_objects_are_one_series(
    store: SqliteStorage,
) -> None:
    """The writer's cache is keyed by the labels' value: equal copies are one series."""
    t = now_ms()
    first = make_labels({"host": "web-1", "job": "fleetpulse", "mode": "idle"})
    copy = tuple((key, value) for key, value in first)  # equal, but distinct objects
    assert copy == first and copy is not first
    await store.write(
        [Sample("cpu_total", first, 1.0, t - 2), Sample("cpu_total", copy, 2.0, t - 1)]
    )
    await store.write([Sample("cpu_total", tuple(list(first)), 3.0, t)])
    result = await store.query_range(RangeQuery(Selector("cpu_total"), t - 10, t))
    (series,) = result.series
    assert series.points == [(t - 2, 1.0), (t - 1, 2.0), (t, 3.0)]


async def test_a_series_that_expired_is_registered_anew_with_its_own_points(
    tmp_path: Path,
) -> None:
    retention = RetentionSettings(raw=3600.0, hourly=7200.0, daily=10800.0)
    store = await SqliteStorage.open(tmp_path / "m.db", retention)
    try:
        now = now_ms()
        old = make_labels({"host": "web-1", "job": "fleetpulse"})
        await store.write([Sample("gone", old, 1.0, now - 5 * 3_600_000)])
        await catch_up(store, now)  # rolls up, then expires past every tier's retention
        assert await store.query_latest(Selector("gone"), 0) == []
        other = make_labels({"host": "web-2", "job": "fleetpulse"})
        await store.write([Sample("fresh", other, 7.0, now), Sample("gone", old, 2.0, now)])
        latest = {
            (v.name, dict(v.labels)["host"]): v.value
            for n in ("gone", "fresh")
            for v in await store.query_latest(Selector(n), now - 1000)
        }
        assert latest == {("gone", "web-1"): 2.0, ("fresh", "web-2"): 7.0}
    finally:
        await store.close()


async def test_reads_in_flight_together_each_get_their_own_answer(store: SqliteStorage) -> None:
    t = now_ms()
    await store.write([Sample(f"m{i}", WEB, float(i), t) for i in range(200)])
    answers = await asyncio.gather(
        *(store.query_latest(Selector(f"m{i}"), t - 1000) for i in range(200))
    )
    assert [a[0].value for a in answers] == [float(i) for i in range(200)]


async def test_a_failing_read_in_a_batch_fails_alone() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from collector.storage.sqlite.reads import ReadBatcher

    def boom() -> int:
        raise ValueError("bad read")

    with ThreadPoolExecutor(max_workers=1) as pool:
        batcher = ReadBatcher(pool)
        loop = asyncio.get_running_loop()
        futures = [
            batcher.submit(loop, lambda: 1),
            batcher.submit(loop, boom),
            batcher.submit(loop, lambda: 3),
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], ValueError)
