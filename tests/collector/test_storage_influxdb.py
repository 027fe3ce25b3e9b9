"""The InfluxDB adapter driving the real influxdb-client against a recording v2 API server.

No InfluxDB 2 server can run here (see DESIGN.md "Testing"), so the recorder stands in for
it: it checks what the client really sends (line protocol, gzip, precision, buckets) and
answers queries with annotated CSV built from the tables each test hands it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from collector.storage.batch import MAX_PENDING_BATCHES
from collector.storage.factory import open_storage
from collector.storage.influxdb import InfluxStorage, series_key
from collector.storage.settings import InfluxSettings, StorageSettings
from fleetpulse.app.config import Config, load_config
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.storage import AGENT_LOGS, ALERT_EVENTS, Event, RangeQuery, StorageError
from fleetpulse.core.storehealth import Cause
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.influx_recorder import (
    TOKEN,
    CsvTable,
    InfluxRecorder,
    parse_line,
    rfc3339,
    series_table,
)
from tests.support.poll import eventually

HOUR_MS = 3_600_000
RETENTION = RetentionSettings()


def settings_for(url: str, **overrides: Any) -> InfluxSettings:
    fast = InfluxSettings(
        url=url,
        token=TOKEN,
        org="fleetpulse",
        bucket="fleetpulse",
        timeout=5.0,
        flush_interval=0.05,
        max_retries=1,
        retry_interval=0.02,
        max_retry_delay=0.2,
    )
    return dataclasses.replace(fast, **overrides)


async def open_store(url: str, spool: Path, **overrides: Any) -> InfluxStorage:
    return await InfluxStorage.open(settings_for(url, **overrides), RETENTION, spool)


def sample(i: int, host: str = "web-1") -> Sample:
    return Sample(
        "host_cpu_usage_percent",
        make_labels({"host": host, "job": "fleetpulse"}),
        float(i),
        1_764_237_600_000 + i,
    )


async def test_samples_arrive_gzipped_as_line_protocol_with_escaped_tags(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool")
    labels = make_labels(
        {
            "host": "web 1",
            "job": "fleetpulse",
            "mountpoint": "/mnt/a,b",
            "opts": "x=y",
            "empty": "",
        }
    )
    await store.write(
        [
            Sample("host_disk_usage_percent", labels, 71.5, 1_764_237_600_123),
            Sample("host_disk_usage_percent", labels, float("nan"), 1_764_237_600_124),
            Sample("up", make_labels({"host": "web-1", "job": "fleetpulse"}), 1, 1_764_237_600_125),
        ]
    )
    await store.flush()
    await store.close()

    assert len(recorder.writes) == 1
    request = recorder.writes[0]
    assert (request.bucket, request.org, request.precision) == ("fleetpulse", "fleetpulse", "ms")
    assert request.content_encoding == "gzip"
    assert request.lines == [
        "host_disk_usage_percent,host=web\\ 1,job=fleetpulse,mountpoint=/mnt/a\\,b,opts=x\\=y "
        "value=71.5 1764237600123",
        "up,host=web-1,job=fleetpulse value=1.0 1764237600125",
    ]
    point = parse_line(request.lines[0])
    assert point.tags == {
        "host": "web 1",
        "job": "fleetpulse",
        "mountpoint": "/mnt/a,b",
        "opts": "x=y",
    }
    assert store.skipped_non_finite == 1


def test_measurement_names_escape_commas_and_spaces() -> None:
    assert series_key("odd name,x", make_labels({"a b": "c"})) == "odd\\ name\\,x,a\\ b=c"


def test_a_trailing_backslash_cannot_swallow_the_separator_after_it() -> None:
    key = series_key("host_disk_usage_percent", make_labels({"mountpoint": "C:\\", "x": "a\\,b"}))
    assert key == "host_disk_usage_percent,mountpoint=C:\\\\,x=a\\\\\\,b"
    point = parse_line(key + " value=1.0 1")
    # InfluxDB keeps the doubled backslash: one character off, but the batch is not refused
    assert point.tags == {"mountpoint": "C:\\\\", "x": "a\\\\,b"}
    assert (point.fields, point.ts) == ({"value": 1.0}, 1)


async def test_events_go_to_their_own_measurements_and_buckets(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool")
    alert = Event(
        1_764_237_600_000,
        make_labels({"host": "web-1", "alertname": "HostCpuHigh", "severity": "critical"}),
        (("state", "firing"), ("value", 91.5), ("summary", 'CPU "high" at 91.5\\%')),
    )
    log_line = Event(
        1_764_237_600_001,
        make_labels({"host": "web-1", "level": "error"}),
        (("message", "disk, full"),),
    )
    traceback = Event(
        1_764_237_600_002,
        make_labels({"host": "web-1", "level": "error"}),
        (("message", "Traceback:\n  line 1\r\n"),),
    )
    await store.write_events(ALERT_EVENTS, [alert])
    await store.write_events(AGENT_LOGS, [log_line, traceback])
    with pytest.raises(StorageError, match="unknown event measurement"):
        await store.write_events("nope", [log_line])
    await store.close()

    alerts = recorder.points("fleetpulse_1d")
    assert [(p.measurement, p.tags, p.fields, p.ts) for p in alerts] == [
        (
            "alert_events",
            {"host": "web-1", "alertname": "HostCpuHigh", "severity": "critical"},
            {"state": "firing", "summary": 'CPU "high" at 91.5\\%', "value": 91.5},
            1_764_237_600_000,
        )
    ]
    logs = recorder.points("fleetpulse")
    assert [(p.measurement, p.fields) for p in logs] == [
        ("agent_logs", {"message": "disk, full"}),
        ("agent_logs", {"message": "Traceback:\\n  line 1\\r\\n"}),  # one line on the wire
    ]


async def test_outage_with_restart_replays_every_sample_once_in_order(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    recorder.fail_writes(503)
    store = await open_store(recorder.url, spool, batch_size=10)
    for i in range(0, 30, 5):
        await store.write([sample(j) for j in range(i, i + 5)])
        await store.flush()
    assert store.write_stats().spooled_samples == 30
    assert store.stats().spool_batches == 6 and store.stats().spool_bytes > 0
    await store.write([sample(j) for j in range(30, 37)])  # buffered when the collector stops
    await store.close()
    assert recorder.lines() == []

    # The collector restarts while InfluxDB is still down, writes more, then InfluxDB recovers.
    store = await open_store(recorder.url, spool, batch_size=10)
    store.writer.settings = dataclasses.replace(store.writer.settings, replay_batches_per_round=2)
    assert store.write_stats().spooled_samples == 37
    await store.write([sample(j) for j in range(37, 45)])
    await store.flush()
    recorder.heal()
    await eventually(lambda: len(recorder.lines()) >= 45, "the replay")
    await store.write([sample(j) for j in range(45, 50)])
    await store.flush()
    await store.close()

    values = [int(parse_line(line).fields["value"]) for line in recorder.lines()]
    assert values == list(range(50))
    assert store.write_stats().spooled_samples == 0
    assert list(spool.iterdir()) == []


async def test_refused_connections_spool_then_replay_when_influxdb_returns(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool")
    await recorder.refuse_connections()
    await store.write([sample(i) for i in range(5)])
    await store.flush()
    assert store.write_stats().spooled_samples == 5
    assert "unreachable" in store.write_stats().last_error
    await recorder.start()  # same port again
    await eventually(lambda: len(recorder.lines()) == 5, "the replay after reconnecting")
    await store.close()
    assert [int(p.fields["value"]) for p in recorder.points()] == list(range(5))


async def test_a_hung_influxdb_times_out_and_the_batch_is_spooled_not_lost(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    recorder.hang_writes()
    store = await open_store(recorder.url, tmp_path / "spool", timeout=0.3, max_retries=0)
    await store.write([sample(i) for i in range(4)])
    await store.flush()
    assert store.write_stats().spooled_samples == 4
    failing = store.health().write
    assert failing is not None and failing.cause == Cause.TIMEOUT  # not "unreachable"
    assert "did not answer within 0.3s" in failing.error, failing
    recorder.heal()
    await eventually(lambda: len(recorder.lines()) == 4, "the replay after the hang")
    await store.close()
    assert [int(p.fields["value"]) for p in recorder.points()] == list(range(4))


async def test_429_waits_as_long_as_retry_after_says(
    recorder: InfluxRecorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="collector.storage.batch")
    recorder.fail_writes(429, retry_after="1", times=1)
    store = await open_store(recorder.url, tmp_path / "spool", max_retries=2)
    await store.write([sample(i) for i in range(3)])
    await store.flush()
    await store.close()
    assert recorder.write_attempts == 2
    assert len(recorder.lines()) == 3
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 1 and "delay=1s" in retries[0], retries  # not retry_interval 0.02s
    assert "HTTP 429" in retries[0]
    failing = [r.getMessage() for r in caplog.records if "writes failing" in r.getMessage()]
    assert len(failing) == 1 and "cause=rate_limited" in failing[0], failing


async def test_a_long_retry_after_does_not_hold_new_samples_in_memory(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    """InfluxDB asks for an hour's pause: what keeps coming goes to the spool on disk once
    MAX_PENDING_BATCHES wait, instead of piling up in memory for the hour."""
    recorder.fail_writes(429, retry_after="3600")
    store = await open_store(recorder.url, tmp_path / "spool", batch_size=10, max_retries=3)
    bound = 10 * MAX_PENDING_BATCHES
    await store.write([sample(j) for j in range(bound + 10)])
    # without the bound this waits for the hour
    await eventually(lambda: store.write_stats().spooled_samples > 0, "retries cut short")
    await store.write([sample(j) for j in range(bound + 10, 5 * bound)])
    await eventually(lambda: store.write_stats().pending_samples == 0, "new samples spooled")
    await store.close()
    assert store.write_stats().spooled_samples == 5 * bound  # all of it on disk, none lost
    assert recorder.write_attempts == 1  # the hour is honoured: no second try


@pytest.mark.parametrize(
    ("status", "cause", "hint"),
    [
        (401, "unauthorized", "storage.influxdb.token"),
        (403, "forbidden", "write access"),
        (404, "bucket_not_found", "fleetpulse influx setup"),
    ],
)
async def test_refused_writes_wait_in_the_spool_and_arrive_once_when_influxdb_accepts(
    recorder: InfluxRecorder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    status: int,
    cause: str,
    hint: str,
) -> None:
    """A wrong or rotated token, a token without write access and a missing bucket are fixed
    by an operator: nothing is dropped meanwhile, and the log and health say what to fix."""
    if status == 401:
        recorder.token = "another-token"
    elif status == 403:
        recorder.fail_writes(403)
    else:
        recorder.buckets["x"] = {"id": "x", "orgID": "o", "name": "other", "retentionRules": []}
    store = await open_store(recorder.url, tmp_path / "spool", max_retries=1)
    await store.write([sample(i) for i in range(4)])
    await store.flush()
    await store.write([sample(i) for i in range(4, 6)])
    await store.flush()

    stats = store.write_stats()
    assert (stats.rejected_samples, stats.spooled_samples) == (0, 6)
    assert store.stats().dropped_samples == 0
    health = store.health().as_json()
    assert health["status"] == "degraded"
    assert health["write"]["cause"] == cause and hint in health["write"]["error"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and f"cause={cause}" in errors[0] and hint in errors[0], errors
    assert TOKEN not in "".join(errors) and "another-token" not in "".join(errors)

    # the operator fixes it
    recorder.token = TOKEN
    recorder.heal()
    recorder.buckets.clear()
    await eventually(lambda: len(recorder.lines()) == 6 and len(store.writer.spool) == 0)
    await store.close()
    assert sorted(p.fields["value"] for p in recorder.points()) == [float(i) for i in range(6)]
    assert store.health().ok
    assert any("writes recovered" in r.getMessage() for r in caplog.records)


async def test_a_batch_too_large_is_split_until_influxdb_takes_it(
    recorder: InfluxRecorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.max_lines = 3
    store = await open_store(recorder.url, tmp_path / "spool", batch_size=10)
    await store.write([sample(i) for i in range(10)])
    await store.flush()
    await store.close()
    assert sorted(p.fields["value"] for p in recorder.points()) == [float(i) for i in range(10)]
    assert all(len(w.lines) <= 3 for w in recorder.writes)
    assert store.write_stats().rejected_samples == 0
    assert any("too large, splitting" in r.getMessage() for r in caplog.records)


async def test_points_influxdb_will_never_accept_are_dropped_counted_and_logged(
    recorder: InfluxRecorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.fail_writes(400, times=1)
    store = await open_store(recorder.url, tmp_path / "spool", max_retries=5)
    await store.write([sample(i) for i in range(4)])
    await store.flush()
    await store.write([sample(i) for i in range(4, 6)])
    await store.flush()
    await store.close()
    assert recorder.write_attempts == 2  # the refused batch is never retried
    assert store.stats().dropped_samples == 4
    assert len(recorder.lines()) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "rejected a batch, dropped it" in errors[0], errors
    assert "HTTP 400" in errors[0]


async def test_a_bad_token_fails_queries_with_a_clear_error(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    recorder.token = "another-token"
    store = await open_store(recorder.url, tmp_path / "spool")
    with pytest.raises(StorageError, match=r"HTTP 401.*storage\.influxdb\.token"):
        await store.query_latest(parse_selector("up"), now_ms() - HOUR_MS)
    await store.close()


async def test_query_range_is_one_query_and_parses_every_series(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    start = now_ms() - HOUR_MS
    recorder.answer_queries(
        lambda text: [
            series_table(
                "host_disk_usage_percent",
                {"host": "web-1", "job": "fleetpulse", "mountpoint": "/"},
                [(start + 60_000, 71.0), (start, 70.5)],
            ),
            series_table(
                "host_disk_usage_percent",
                {"host": "web-1", "job": "fleetpulse", "mountpoint": "/data, x", "device": "sdb"},
                [(start, 12.25)],
            ),
        ]
    )
    store = await open_store(recorder.url, tmp_path / "spool")
    result = await store.query_range(
        RangeQuery(
            parse_selector('host_disk_usage_percent{host="web-1", mountpoint=~"/.*"}'),
            start,
            now_ms(),
            step_ms=60_000,
            aggregate="max",
        )
    )
    await store.close()

    assert len(recorder.queries) == 1
    query = recorder.queries[0]
    assert 'from(bucket: "fleetpulse")' in query and "fn: max" in query
    assert result.tier == "raw"
    by_mountpoint = {dict(s.labels)["mountpoint"]: s for s in result.series}
    assert by_mountpoint["/"].labels == (
        ("host", "web-1"),
        ("job", "fleetpulse"),
        ("mountpoint", "/"),
    )
    assert by_mountpoint["/"].points == [(start, 70.5), (start + 60_000, 71.0)]
    assert dict(by_mountpoint["/data, x"].labels)["device"] == "sdb"
    assert by_mountpoint["/data, x"].points == [(start, 12.25)]
    assert {s.name for s in result.series} == {"host_disk_usage_percent"}


@pytest.mark.parametrize(
    ("age_ms", "tier", "bucket", "field"),
    [
        (HOUR_MS, "raw", "fleetpulse", '"value"'),
        (72 * HOUR_MS, "hourly", "fleetpulse_1h", '"mean"'),
        (90 * 24 * HOUR_MS, "daily", "fleetpulse_1d", '"mean"'),
    ],
)
async def test_query_range_reads_the_tier_that_covers_the_start(
    recorder: InfluxRecorder, tmp_path: Path, age_ms: int, tier: str, bucket: str, field: str
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool")
    end = now_ms()
    result = await store.query_range(
        RangeQuery(parse_selector("host_cpu_usage_percent"), end - age_ms, end)
    )
    counter = await store.query_range(
        RangeQuery(parse_selector("network_receive_bytes_total"), end - age_ms, end)
    )
    await store.close()
    assert (result.tier, counter.tier) == (tier, tier)
    assert f'from(bucket: "{bucket}")' in recorder.queries[0]
    assert f"r._field == {field}" in recorder.queries[0]
    if tier != "raw":
        assert 'r._field == "last"' in recorder.queries[1]  # counters roll up as last + rates


async def test_query_latest_and_last_seen(recorder: InfluxRecorder, tmp_path: Path) -> None:
    now = now_ms()

    def answer(text: str) -> list[CsvTable]:
        if 'r._measurement == "up"' in text and '"fleetpulse_1h"' in text:
            return [series_table("up", {"host": "old"}, [(now - 5 * HOUR_MS, 1.0)])]
        if 'r._measurement == "up"' in text:
            return (
                []
                if '"old"' in text
                else [series_table("up", {"host": "web-1"}, [(now - 1000, 1.0)])]
            )
        return [
            series_table(
                "host_memory_usage_percent",
                {"host": "web-1", "job": "fleetpulse"},
                [(now - 500, 40.5)],
            ),
            series_table(
                "host_memory_usage_percent",
                {"host": "web-2", "job": "fleetpulse"},
                [(now - 900, 12.0)],
            ),
        ]

    recorder.answer_queries(answer)
    store = await open_store(recorder.url, tmp_path / "spool")
    latest = await store.query_latest(
        parse_selector('host_memory_usage_percent{host!="db-1"}'), now - HOUR_MS
    )
    seen = await store.last_seen("web-1")
    seen_old = await store.last_seen("old")
    await store.close()
    assert [(v.labels, v.ts_ms, v.value) for v in latest] == [
        ((("host", "web-1"), ("job", "fleetpulse")), now - 500, 40.5),
        ((("host", "web-2"), ("job", "fleetpulse")), now - 900, 12.0),
    ]
    assert seen == now - 1000
    assert seen_old == now - 5 * HOUR_MS  # from the hourly rollup once raw has expired


async def test_query_events_reads_tags_as_labels_and_fields_as_fields(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    t0 = now_ms() - HOUR_MS
    columns = [
        ("result", "string", False),
        ("table", "long", False),
        ("_time", "dateTime:RFC3339", False),
        ("alertname", "string", True),
        ("host", "string", True),
        ("state", "string", False),
        ("value", "double", False),
    ]
    recorder.answer_queries(
        lambda text: [
            CsvTable(
                columns,
                [
                    ["", "", rfc3339(t0 + 2000), "HostCpuHigh", "web-1", "resolved", "12.5"],
                    ["", "", rfc3339(t0), "HostCpuHigh", "web-1", "firing", "91.5"],
                ],
            )
        ]
    )
    store = await open_store(recorder.url, tmp_path / "spool")
    events = await store.query_events(
        ALERT_EVENTS, t0, now_ms(), parse_selector('x{host="web-1"}'), limit=10
    )
    await store.close()
    assert 'from(bucket: "fleetpulse_1d")' in recorder.queries[0]
    assert 'r._measurement == "alert_events"' in recorder.queries[0]
    assert events == [
        Event(
            t0,
            (("alertname", "HostCpuHigh"), ("host", "web-1")),
            (("state", "firing"), ("value", 91.5)),
        ),
        Event(
            t0 + 2000,
            (("alertname", "HostCpuHigh"), ("host", "web-1")),
            (("state", "resolved"), ("value", 12.5)),
        ),
    ]


async def test_open_storage_picks_influxdb_and_keeps_its_spool_in_the_data_dir(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    config = Config(
        storage=StorageSettings(backend="influxdb", influxdb=settings_for(recorder.url))
    )
    store = await open_storage(config.storage, config.retention, tmp_path)
    assert isinstance(store, InfluxStorage)
    await store.write([sample(1)])
    await store.close()
    assert (tmp_path / "spool").is_dir()
    assert len(recorder.lines()) == 1


async def test_counter_rates_come_from_the_derivative_or_the_stored_rate_mean(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool")
    end = now_ms()
    counter = parse_selector('network_receive_bytes_total{interface="eth0"}')
    raw = await store.query_range(RangeQuery(counter, end - HOUR_MS, end, 60_000, "rate"))
    hourly = await store.query_range(RangeQuery(counter, end - 72 * HOUR_MS, end, None, "rate"))
    with pytest.raises(StorageError, match="needs a counter"):
        await store.query_range(RangeQuery(parse_selector("up"), end - HOUR_MS, end, None, "rate"))
    await store.close()
    assert (raw.tier, hourly.tier) == ("raw", "hourly")
    assert "derivative(unit: 1s, nonNegative: true, initialZero: true)" in recorder.queries[0]
    assert 'r._field == "rate_mean"' in recorder.queries[1]
    assert len(recorder.queries) == 2


def test_batch_and_spool_knobs_load_from_the_config_with_file_and_line_errors(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "storage:\n"
        "  backend: influxdb\n"
        "  influxdb:\n"
        "    url: http://influx:8086\n"
        "    batch_size: 2000\n"
        "    flush_interval: 500ms\n"
        "    max_retries: 0\n"
        "    retry_interval: 2s\n"
        "    max_retry_delay: 1m\n"
        "    spool_dir: spool-here\n"
        "    spool_max_bytes: 10485760\n"
    )
    influx = load_config(good).storage.influxdb
    assert (influx.batch_size, influx.flush_interval, influx.max_retries) == (2000, 0.5, 0)
    assert (influx.retry_interval, influx.max_retry_delay) == (2.0, 60.0)
    assert influx.spool_dir == tmp_path / "spool-here"
    assert influx.spool_max_bytes == 10 * 1024 * 1024

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "storage:\n  influxdb:\n    batch_size: 0\n    spool_max_bytes: 10MB\n    flush_interval: 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    messages = [str(p) for p in caught.value.problems]
    assert any(m.startswith(f"{bad}:3: storage.influxdb.batch_size") for m in messages), messages
    assert any(m.startswith(f"{bad}:4: storage.influxdb.spool_max_bytes") for m in messages)
    assert any(m.startswith(f"{bad}:5: storage.influxdb.flush_interval") for m in messages)


class CountingObserver:
    """What the collector's /metrics learn of the writes made for `append`."""

    def __init__(self) -> None:
        self.wrote_samples: list[int] = []

    def wrote(self, samples: int, seconds: float) -> None:
        self.wrote_samples.append(samples)

    def failed(self, samples: int, seconds: float) -> None:
        raise AssertionError("nothing fails before the batch writer")


async def test_scraped_samples_go_straight_to_the_batch_writer_the_one_queue(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    store = await open_store(recorder.url, tmp_path / "spool", flush_interval=3600.0)
    observer = CountingObserver()
    store.observe_writes(observer)
    store.pace(1.0)  # nothing to tune: batches leave every flush_interval
    await store.append([sample(i) for i in range(7)])
    assert observer.wrote_samples == [7]
    assert store.stats().pending_samples == 7, "waiting in the batch writer, nowhere else"
    await store.drain()  # nothing waits in front of the batch writer
    assert store.stats().pending_samples == 7 and recorder.lines() == []
    assert await store.maintain(now_ms()) is None, "Flux tasks roll InfluxDB up"
    await store.flush()
    assert store.stats().pending_samples == 0
    assert [int(p.fields["value"]) for p in recorder.points()] == list(range(7))
    await store.close()
