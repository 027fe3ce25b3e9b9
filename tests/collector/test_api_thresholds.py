"""`/api/v1/hosts/{host}/thresholds` on a real server over a real SQLite store: validation,
the overrides kept as events in the store (read by a second API over the same file, as a
split deployment's processes do), reset, and the series the collector publishes from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.storage.sqlite import SqliteStorage
from collector.thresholds_publish import publish_once
from fleetpulse.core.overrides import REFRESH_AFTER_MS, override_event, read_overrides
from fleetpulse.core.samples import Sample, label_value, make_labels
from fleetpulse.core.selector import Selector
from fleetpulse.core.storage import THRESHOLD_OVERRIDES
from fleetpulse.core.thresholds import CUSTOMIZED_SERIES, THRESHOLD_SERIES, Level, Thresholds
from fleetpulse.core.tiers import RetentionSettings
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi, api_server

THRESHOLDS = Thresholds(
    defaults=(("cpu", Level(70, 85)), ("memory", Level(80, 90)), ("disk", Level(70, 85))),
    hosts=(("db-*", (("disk", Level(60, 75)),)),),
)
Json = dict[str, Any]


@pytest.fixture
async def base(store: SqliteStorage, serve_api: ServeApi) -> str:
    t = now_ms()
    await store.write(
        [
            Sample("up", make_labels({"host": h, "job": "fleetpulse"}), 1.0, t)
            for h in ("web-1", "db-1")
        ]
    )
    return await serve_api(lambda: THRESHOLDS)


async def call(method: str, url: str, body: object = None) -> tuple[int, Json]:
    data = body if isinstance(body, str) else None if body is None else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, timeout=aiohttp.ClientTimeout(10)) as response,
    ):
        return response.status, await response.json()


async def hosts(base: str) -> dict[str, Json]:
    status, doc = await call("GET", f"{base}/api/v1/hosts")
    assert status == 200
    return {h["host"]: h for h in doc["hosts"]}


async def test_get_shows_effective_levels_the_file_levels_and_no_override(base: str) -> None:
    status, doc = await call("GET", f"{base}/api/v1/hosts/db-1/thresholds")
    assert status == 200
    assert doc["thresholds"]["disk"] == {"warning": 60, "critical": 75}
    assert doc["defaults"] == doc["thresholds"]
    assert doc["overridden"] == [] and doc["customized"] is True  # the file's db-* glob


async def test_put_layers_over_the_file_and_delete_resets(base: str) -> None:
    url = f"{base}/api/v1/hosts/web-1/thresholds"
    status, doc = await call("PUT", url, {"disk": {"warning": 30, "critical": 50.5}})
    assert status == 200, doc
    assert doc["thresholds"]["disk"] == {"warning": 30, "critical": 50.5}
    assert doc["thresholds"]["cpu"] == {"warning": 70, "critical": 85}
    assert doc["overridden"] == ["disk"] and doc["customized"] is True
    assert (await call("GET", url))[1] == doc
    web = (await hosts(base))["web-1"]
    assert web["customized"] is True and web["thresholds"]["disk"]["warning"] == 30
    # a PUT replaces the host's overrides: disk, left out, follows the file again
    status, doc = await call("PUT", url, {"cpu": {"warning": 10, "critical": 20}})
    assert doc["overridden"] == ["cpu"] and doc["thresholds"]["disk"]["warning"] == 70
    status, doc = await call("DELETE", url)
    assert status == 200 and doc["overridden"] == [] and doc["customized"] is False
    assert doc["thresholds"] == doc["defaults"]
    assert (await hosts(base))["web-1"]["customized"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"disk": {"warning": 90, "critical": 80}}, "disk.warning"),
        ({"disk": {"warning": 80, "critical": 80}}, "disk.warning"),
        ({"cpu": {"warning": -1, "critical": 80}}, "cpu.warning"),
        ({"memory": {"warning": 50, "critical": 100.5}}, "memory.critical"),
        ({"disk": {"warning": "50", "critical": 80}}, "disk.warning"),
        ({"disk": {"warning": True, "critical": 80}}, "disk.warning"),
        ({"disk": {"warning": 50}}, "disk"),
        ({"gpu": {"warning": 50, "critical": 80}}, "gpu"),
        ([1, 2], ""),
        ("not json", ""),
    ],
)
async def test_invalid_input_is_400_naming_the_field_and_nothing_is_saved(
    base: str, store: SqliteStorage, body: object, field: str
) -> None:
    url = f"{base}/api/v1/hosts/web-1/thresholds"
    status, doc = await call("PUT", url, {"cpu": {"warning": 11, "critical": 22}})
    assert status == 200
    before = await store.query_events(THRESHOLD_OVERRIDES, 0, now_ms())
    status, doc = await call("PUT", url, body)
    assert status == 400 and doc["field"] == field and doc["error"]
    assert await store.query_events(THRESHOLD_OVERRIDES, 0, now_ms()) == before
    assert (await call("GET", url))[1]["thresholds"]["cpu"] == {"warning": 11, "critical": 22}


async def test_unknown_host_is_404_for_every_method(base: str) -> None:
    url = f"{base}/api/v1/hosts/nope/thresholds"
    for method, body in (("GET", None), ("PUT", {}), ("DELETE", None)):
        status, doc = await call(method, url, body)
        assert status == 404 and "unknown host" in doc["error"], method


async def test_overrides_live_in_the_store_where_another_process_reads_them(
    base: str, store: SqliteStorage, tmp_path: Path
) -> None:
    """A second store handle on the same file (another process of a split deployment) and
    an API over it see the override the first API saved."""
    body = {"disk": {"warning": 5, "critical": 6}}
    assert (await call("PUT", f"{base}/api/v1/hosts/db-1/thresholds", body))[0] == 200
    other = await SqliteStorage.open(tmp_path / "metrics.db", RetentionSettings())
    try:
        stored = await read_overrides(other, now_ms())
        assert stored["db-1"].levels == (("disk", Level(5, 6)),)
        async with api_server(other) as serve:
            second = await serve(lambda: THRESHOLDS)
            assert (await hosts(second))["db-1"]["thresholds"]["disk"] == body["disk"]
    finally:
        await other.close()


async def test_the_collector_publishes_effective_levels_and_refreshes_old_overrides(
    store: SqliteStorage,
) -> None:
    now = now_ms()
    await store.write([Sample("up", make_labels({"host": "web-1", "job": "j"}), 1.0, now)])
    old = now - REFRESH_AFTER_MS - 1000
    await store.write_events(
        THRESHOLD_OVERRIDES, [override_event("web-1", (("cpu", Level(1, 2)),), old)]
    )
    assert await publish_once(store, lambda: THRESHOLDS, now) == 7
    await store.drain()
    latest = await store.query_latest(Selector(THRESHOLD_SERIES), 0)
    levels = {
        (label_value(v.labels, "key"), label_value(v.labels, "level")): v.value for v in latest
    }
    assert levels[("cpu", "warning")] == 1 and levels[("cpu", "critical")] == 2
    assert levels[("disk", "warning")] == 70
    customized = await store.query_latest(Selector(CUSTOMIZED_SERIES), 0)
    assert [v.value for v in customized] == [1.0]
    # written again with today's time, so the event retention never expires it
    assert (await read_overrides(store, now))["web-1"].ts_ms == now
