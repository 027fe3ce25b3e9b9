"""The HTTP API on a real server and a real SQLite store."""

import csv
import io
import json

import aiohttp
import pytest

from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import Sample, make_labels
from fleetpulse.core.thresholds import Level, Thresholds
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi

THRESHOLDS = Thresholds(
    defaults=(("cpu", Level(70, 85)), ("disk", Level(70, 85))),
    hosts=(("db-*", (("disk", Level(60, 75)),)),),
)


def labels(host: str, **extra: str) -> tuple[tuple[str, str], ...]:
    return make_labels({"host": host, "job": "fleetpulse", **extra})


@pytest.fixture
async def api(store: SqliteStorage, serve_api: ServeApi) -> tuple[str, SqliteStorage]:
    t = now_ms()
    samples = []
    for host, cpu in (("web-1", 12.5), ("db-1", 50.0)):
        samples += [Sample("up", labels(host), 1.0, t - 20_000), Sample("up", labels(host), 1.0, t)]
        samples += [
            Sample("host_cpu_usage_percent", labels(host), cpu - 1, t - 20_000),
            Sample("host_cpu_usage_percent", labels(host), cpu, t),
        ]
        for mount, used in (("/", 40.0), ("/data", 71.0)):
            samples.append(
                Sample("host_disk_usage_percent", labels(host, mountpoint=mount), used, t)
            )
    samples.append(Sample("up", labels("gone"), 0.0, t))
    await store.write(samples)
    return await serve_api(lambda: THRESHOLDS, token="tok"), store


AUTH = {"Authorization": "Bearer tok"}


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            url, headers=AUTH if headers is None else headers, timeout=aiohttp.ClientTimeout(10)
        ) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_hosts_lists_up_state_usage_and_effective_thresholds(
    api: tuple[str, SqliteStorage],
) -> None:
    base, _ = api
    status, _, body = await get(f"{base}/api/v1/hosts")
    assert status == 200
    hosts = {h["host"]: h for h in json.loads(body)["hosts"]}
    assert set(hosts) == {"web-1", "db-1", "gone"}
    assert hosts["web-1"]["up"] is True and hosts["web-1"]["cpu"] == 12.5
    assert hosts["web-1"]["disk"] == 71.0  # the fullest filesystem
    assert hosts["web-1"]["memory"] is None
    assert hosts["web-1"]["customized"] is False
    assert hosts["db-1"]["customized"] is True
    assert hosts["db-1"]["thresholds"]["disk"] == {"warning": 60, "critical": 75}
    assert hosts["gone"]["up"] is False and hosts["gone"]["last_seen"] is None


async def test_history_json_and_csv_agree(api: tuple[str, SqliteStorage]) -> None:
    base, _ = api
    url = f"{base}/api/v1/hosts/web-1/metrics/history?metric=host_disk_usage_percent&start=-1h"
    status, _, body = await get(url)
    assert status == 200
    doc = json.loads(body)
    assert doc["tier"] == "raw" and doc["metric"] == "host_disk_usage_percent"
    assert sorted(s["labels"]["mountpoint"] for s in doc["series"]) == ["/", "/data"]
    status, ctype, text = await get(url + "&format=csv")
    assert status == 200 and ctype.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["time", "host", "mountpoint", "value"]
    assert sorted(float(r["value"]) for r in rows) == sorted(
        p[1] for s in doc["series"] for p in s["points"]
    )
    _, ctype, _ = await get(url, {**AUTH, "Accept": "text/csv"})
    assert ctype.startswith("text/csv")


async def test_fleet_history_answers_every_hosts_series_labelled_with_its_host(
    api: tuple[str, SqliteStorage],
) -> None:
    base, _ = api
    url = f"{base}/api/v1/metrics/history?metric=host_cpu_usage_percent&start=-1h&step=1m"
    status, _, body = await get(url)
    assert status == 200
    doc = json.loads(body)
    assert doc["host"] is None and doc["tier"] == "raw"
    by_host = {s["labels"]["host"]: s["points"] for s in doc["series"]}
    assert set(by_host) == {"web-1", "db-1"}
    one = json.loads((await get(url.replace("/metrics/", "/hosts/db-1/metrics/")))[2])
    assert by_host["db-1"] == one["series"][0]["points"]  # the same buckets as one host's
    status, _, text = await get(url + "&format=csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert status == 200 and {r["host"] for r in rows} == {"web-1", "db-1"}
    assert sorted(float(r["value"]) for r in rows) == sorted(
        p[1] for points in by_host.values() for p in points
    )


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "bad parameter metric: required"),
        ("metric=up{", 400, "bad parameter metric:"),
        ("metric=up&start=yesterday", 400, "bad parameter start: expected RFC 3339"),
        ("metric=up&start=-1h&end=-2h", 400, "bad parameter start: must be before end"),
        ("metric=up&step=0s", 400, "bad parameter step: must be greater than 0"),
        ("metric=up&step=1ms&start=-24h", 400, "bad parameter step: too small"),
        ("metric=up&aggregate=median", 400, "bad parameter aggregate"),
        ("metric=up&format=xml", 400, "bad parameter format"),
    ],
)
async def test_bad_parameters_are_400_with_the_parameter_named(
    api: tuple[str, SqliteStorage], query: str, status: int, message: str
) -> None:
    base, _ = api
    got, ctype, body = await get(f"{base}/api/v1/hosts/web-1/metrics/history?{query}")
    assert got == status and ctype.startswith("application/json")
    assert json.loads(body)["error"].startswith(message)


async def test_unknown_host_and_unknown_path_are_json_404(api: tuple[str, SqliteStorage]) -> None:
    base, _ = api
    status, _, body = await get(f"{base}/api/v1/hosts/nobody/metrics/history?metric=up")
    assert status == 404 and "unknown host 'nobody'" in body
    status, ctype, _ = await get(f"{base}/api/v1/nothing")
    assert status == 404 and ctype.startswith("application/json")


async def test_token_is_required_and_never_taken_from_the_query_string(
    api: tuple[str, SqliteStorage],
) -> None:
    base, _ = api
    assert (await get(f"{base}/api/v1/hosts", {}))[0] == 401
    assert (await get(f"{base}/api/v1/hosts", {"Authorization": "Bearer nope"}))[0] == 401
    status, _, body = await get(f"{base}/api/v1/hosts?token=tok", {})
    assert status == 400 and "refused" in body
    assert (await get(f"{base}/healthz", {}))[0] == 200


async def test_rate_of_a_counter_never_goes_negative_and_needs_a_counter(
    api: tuple[str, SqliteStorage],
) -> None:
    base, store = api
    t = now_ms() - 60_000
    values = [100.0, 160.0, 10.0, 70.0]  # a restart between the 2nd and 3rd scrape
    await store.write(
        [
            Sample(
                "network_receive_bytes_total", labels("web-1", interface="eth0"), v, t + i * 15_000
            )
            for i, v in enumerate(values)
        ]
    )
    url = f"{base}/api/v1/hosts/web-1/metrics/history?start=-5m&aggregate=rate&metric="
    status, _, body = await get(url + "network_receive_bytes_total")
    assert status == 200
    (series,) = json.loads(body)["series"]
    assert [v for _, v in series["points"]] == [4.0, 10.0 / 15, 4.0]
    status, _, body = await get(url + "host_cpu_usage_percent")
    assert status == 400
    assert json.loads(body)["error"].startswith("bad parameter aggregate: rate needs a counter")
