"""SQLite rollups raw → hourly → daily over simulated days, checked against values worked out
by hand, plus rates across a counter reset, expiry and a restart in the middle."""

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from collector.rollup import run_rollups
from collector.storage.sqlite import SqliteStorage
from collector.storage.sqlite.catchup import catch_up
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import AGENT_LOGS, ALERT_EVENTS, Event, RangeQuery, StorageError
from fleetpulse.core.tiers import DAY_MS, HOUR_MS, RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.poll import eventually

WEB = make_labels({"host": "web-1", "job": "fleetpulse"})
QUARTER = 15 * 60_000
# Five real days ago, so range queries from it are answered by the hourly tier.
D0 = (now_ms() // DAY_MS - 5) * DAY_MS
POINTS = 2 * 24 * 4  # two days, one point every 15 minutes
RESET_AT = 42  # hour 10, second quarter: the counter restarts from 30


def gauge_value(k: int) -> float:
    return float(10 * (k // 4) + k % 4)  # hour h holds 10h, 10h+1, 10h+2, 10h+3


def counter_value(k: int) -> float:
    return float(60 * k if k < RESET_AT else 30 + 60 * (k - RESET_AT))


def simulated_days() -> list[Sample]:
    samples = []
    for k in range(POINTS):
        ts = D0 + k * QUARTER
        samples.append(Sample("g", WEB, gauge_value(k), ts))
        samples.append(Sample("c_total", WEB, counter_value(k), ts))
    return samples


async def open_store(path: Path, retention: RetentionSettings | None = None) -> SqliteStorage:
    return await SqliteStorage.open(path, retention or RetentionSettings())


def rows(path: Path, table: str, metric: str) -> dict[int, tuple[Any, ...]]:
    """Each period's row; the cells (float or None) are Any, as tests compare them with
    pytest.approx."""
    with sqlite3.connect(path) as conn:
        return {
            int(r[0]): tuple(r[1:])
            for r in conn.execute(
                f"SELECT t.ts, t.mean, t.min, t.max, t.count, t.last, t.rate_mean, t.rate_max "
                f"FROM {table} t JOIN series s ON s.id = t.series_id WHERE s.metric = ? "
                "ORDER BY t.ts",
                (metric,),
            )
        }


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


END = D0 + 2 * DAY_MS + HOUR_MS  # the simulated "now": both days are complete and settled


async def test_hourly_and_daily_gauge_rollups_match_hand_computed_values(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = await open_store(path)
    await store.write(simulated_days())
    report = await catch_up(store, END)
    await store.close()
    assert report.periods == {"hourly": 48, "daily": 2}
    hourly = rows(path, "hourly", "g")
    assert len(hourly) == 48
    for h in range(48):
        assert hourly[D0 + h * HOUR_MS] == (10 * h + 1.5, 10 * h, 10 * h + 3, 4, None, None, None)
    daily = rows(path, "daily", "g")
    # day 0: hours 0..23, mean of 10h + 1.5 = 10 * 11.5 + 1.5; day 1: hours 24..47
    assert daily == {
        D0: (116.5, 0.0, 233.0, 96, None, None, None),
        D0 + DAY_MS: (356.5, 240.0, 473.0, 96, None, None, None),
    }


async def test_counter_rollups_give_last_and_rates_and_count_a_reset_as_increase(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    store = await open_store(path)
    await store.write(simulated_days())
    await catch_up(store, END)
    await store.close()
    per_second = 60 / 900  # +60 every 15 minutes
    hourly = rows(path, "hourly", "c_total")
    # hour 0 has no point before it: three intervals
    assert hourly[D0] == (None, None, None, 3, 180.0, pytest.approx(per_second), per_second)
    # hour 1 reads the last point of hour 0 as its start: four intervals
    assert hourly[D0 + HOUR_MS] == (
        None,
        None,
        None,
        4,
        420.0,
        pytest.approx(per_second),
        per_second,
    )
    # hour 10: +60, +60, reset to 30 (counts as +30), +60 = 210 over the hour
    assert hourly[D0 + 10 * HOUR_MS] == (
        None, None, None, 4, 90.0, pytest.approx(210 / 3600), pytest.approx(per_second)
    )  # fmt: skip
    assert all(r[5] is not None and r[5] >= 0 for r in hourly.values())
    daily = rows(path, "daily", "c_total")
    day0_rate = (3 * per_second + 22 * 4 * per_second + 4 * 210 / 3600) / 95
    assert daily[D0] == (
        None, None, None, 95, counter_value(95), pytest.approx(day0_rate), pytest.approx(per_second)
    )  # fmt: skip
    assert daily[D0 + DAY_MS][3:] == (96, counter_value(191), pytest.approx(per_second), per_second)


async def test_rate_queries_never_go_negative_across_a_reset(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "m.db", RetentionSettings(raw=30 * 86400.0))
    await store.write(simulated_days())
    selector = Selector("c_total")
    raw = await store.query_range(RangeQuery(selector, D0, D0 + 11 * HOUR_MS, None, "rate"))
    assert raw.tier == "raw"
    points = dict(raw.series[0].points)
    assert min(points.values()) >= 0
    assert points[D0 + RESET_AT * QUARTER] == pytest.approx(30 / 900)
    assert points[D0 + QUARTER] == pytest.approx(60 / 900)
    stepped = await store.query_range(
        RangeQuery(selector, D0, D0 + 11 * HOUR_MS - 1, HOUR_MS, "rate")
    )
    assert dict(stepped.series[0].points)[D0 + 10 * HOUR_MS] == pytest.approx(210 / 3600)
    await store.close()

    # with the default 48h raw retention, a range five days back is read from the hourly tier
    store = await open_store(tmp_path / "m.db")
    await catch_up(store, END)
    hourly = await store.query_range(RangeQuery(selector, D0, D0 + DAY_MS - 1, None, "rate"))
    assert hourly.tier == "hourly"
    rates = dict(hourly.series[0].points)
    assert len(rates) == 24 and min(rates.values()) >= 0
    assert rates[D0 + 10 * HOUR_MS] == pytest.approx(210 / 3600)
    daily_step = await store.query_range(RangeQuery(selector, D0, D0 + DAY_MS - 1, DAY_MS, "rate"))
    day0_rate = (3 * 60 / 900 + 22 * 4 * 60 / 900 + 4 * 210 / 3600) / 95
    ((day0, rate),) = daily_step.series[0].points
    assert day0 == D0 and rate == pytest.approx(day0_rate)
    # value aggregates of a counter on a rollup tier read its `last`
    lasts = await store.query_range(RangeQuery(selector, D0, D0 + 2 * HOUR_MS - 1))
    assert lasts.series[0].points == [(D0, 180.0), (D0 + HOUR_MS, 420.0)]
    with pytest.raises(StorageError, match="needs a counter"):
        await store.query_range(RangeQuery(Selector("g"), D0, END, None, "rate"))
    await store.close()


async def test_a_restart_in_the_middle_resumes_and_matches_a_single_run(tmp_path: Path) -> None:
    whole, halves = tmp_path / "whole.db", tmp_path / "halves.db"
    for path in (whole, halves):
        store = await open_store(path)
        await store.write(simulated_days())
        await store.close()
    store = await open_store(whole)
    await catch_up(store, END)
    await store.close()

    store = await open_store(halves)
    first = await catch_up(store, END, max_periods=7)
    await store.close()  # the collector stops after 7 hours were rolled up
    assert first.periods["hourly"] == 7 and count_rows(halves, "daily") == 0
    store = await open_store(halves)
    second = await catch_up(store, END)
    again = await catch_up(store, END)  # nothing left: the watermark moved past every hour
    await store.close()
    assert second.periods == {"hourly": 41, "daily": 2}
    assert again.periods == {"hourly": 0, "daily": 0}
    for table in ("hourly", "daily"):
        for metric in ("g", "c_total"):
            assert rows(halves, table, metric) == rows(whole, table, metric)


async def test_rolling_up_an_hour_twice_writes_the_same_rows(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = await open_store(path)
    await store.write(simulated_days())
    await store.rollup("hourly", D0 + 3 * HOUR_MS)
    before = rows(path, "hourly", "c_total")
    await store.rollup("hourly", D0 + 3 * HOUR_MS)
    assert rows(path, "hourly", "c_total") == before
    # a re-run of an old hour never moves the watermark back
    await store.rollup("hourly", D0 + 5 * HOUR_MS)
    await store.rollup("hourly", D0 + 3 * HOUR_MS)
    assert await store.rollup_watermark("hourly") == D0 + 6 * HOUR_MS
    await store.close()


async def test_an_hour_waits_for_late_data_before_it_is_rolled_up(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "m.db")
    await store.write(simulated_days())
    report = await catch_up(store, D0 + HOUR_MS + 60_000, lag_ms=5 * 60_000)
    assert report.periods["hourly"] == 0
    report = await catch_up(store, D0 + HOUR_MS + 5 * 60_000, lag_ms=5 * 60_000)
    assert report.periods["hourly"] == 1
    await store.close()


async def test_expiry_drops_each_tier_past_its_retention_but_never_unrolled_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "m.db"
    retention = RetentionSettings(raw=2 * 3600.0, hourly=86400.0, daily=3 * 86400.0)
    store = await open_store(path, retention)
    await store.write(simulated_days())
    log_ts, alert_ts = D0 + 60_000, D0 + 120_000
    host = make_labels({"host": "web-1"})
    await store.write_events(AGENT_LOGS, [Event(log_ts, host, (("message", "hi"),))])
    await store.write_events(ALERT_EVENTS, [Event(alert_ts, host, (("state", "firing"),))])
    # before any rollup, expiry keeps raw rows the hourly rollup has not read
    assert (await store.expire(END))["raw"] == 0
    assert count_rows(path, "raw") == 2 * POINTS

    await catch_up(store, END)
    raw_left = {ts for (ts,) in sqlite3.connect(path).execute("SELECT ts FROM raw")}
    assert min(raw_left) >= END - 2 * HOUR_MS
    assert min(rows(path, "hourly", "g")) >= END - DAY_MS
    assert sorted(rows(path, "daily", "g")) == [D0, D0 + DAY_MS]
    assert count_rows(path, "events") == 1  # logs live as long as raw data, alerts longer

    await catch_up(store, D0 + 10 * DAY_MS)  # everything is past retention now
    for table in ("raw", "hourly", "daily", "events", "series"):
        assert count_rows(path, table) == 0, table
    # writing after the series were dropped creates them again
    await store.write([Sample("g", WEB, 1.0, now_ms())])
    assert len(await store.query_latest(Selector("g"), 0)) == 1
    await store.close()


async def test_the_scheduler_rolls_up_on_its_own_and_skips_stores_without_rollups(
    tmp_path: Path,
) -> None:
    import asyncio

    path = tmp_path / "m.db"
    store = await open_store(path, RetentionSettings(raw=30 * 86400.0))
    await store.write(simulated_days())
    task = asyncio.create_task(run_rollups(store, every=0.05))
    await eventually(lambda: count_rows(path, "daily") >= 4, "the daily rows", within=30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await store.close()
    assert count_rows(path, "daily") == 4  # two days of g and c_total

    class RollsItselfUp:  # as InfluxDB, whose Flux tasks roll it up
        async def maintain(self, now_ms: int) -> None:
            return None

    await asyncio.wait_for(run_rollups(RollsItselfUp(), every=0.01), 5)  # type: ignore[arg-type]
