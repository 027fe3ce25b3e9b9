"""`fleetpulse influx setup` and `ensure_influx_setup` against the recording v2 API server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from collector.storage.influx.setup import InfluxSetupError, ensure_influx_setup
from collector.storage.influx.tasks import rollup_tasks
from collector.storage.settings import InfluxSettings
from fleetpulse.core.tiers import RetentionSettings
from tests.support.cli import run_cli
from tests.support.influx_recorder import TOKEN, InfluxRecorder
from tests.support.servers import free_port

DAY = 86400.0


def settings_for(url: str, token: str = TOKEN) -> InfluxSettings:
    return InfluxSettings(url=url, org="fleetpulse", token=token, bucket="fleetpulse", timeout=5.0)


def retention_of(recorder: InfluxRecorder) -> dict[str, int]:
    return {b["name"]: b["retentionRules"][0]["everySeconds"] for b in recorder.buckets.values()}


async def test_setup_creates_org_buckets_and_tasks_and_a_second_run_changes_nothing(
    recorder: InfluxRecorder,
) -> None:
    settings = settings_for(recorder.url)
    changes = await ensure_influx_setup(settings, RetentionSettings())
    assert [(c.kind, c.name, c.action) for c in changes] == [
        ("org", "fleetpulse", "created"),
        ("bucket", "fleetpulse", "created"),
        ("bucket", "fleetpulse_1h", "created"),
        ("bucket", "fleetpulse_1d", "created"),
        ("task", "fleetpulse_rollup_1h", "created"),
        ("task", "fleetpulse_rollup_1d", "created"),
    ]
    assert retention_of(recorder) == {
        "fleetpulse": 48 * 3600,
        "fleetpulse_1h": 30 * 86400,
        "fleetpulse_1d": 730 * 86400,
    }
    (org_id,) = recorder.orgs
    tasks = {t["name"]: t for t in recorder.tasks.values()}
    expected = {spec.name: spec for spec in rollup_tasks("fleetpulse")}
    assert set(tasks) == set(expected)
    for name, task in tasks.items():
        assert task["flux"] == expected[name].flux
        assert (task["every"], task["offset"]) == (expected[name].every, expected[name].offset)
        assert task["orgID"] == org_id and task["status"] == "active"
    assert all(b["orgID"] == org_id for b in recorder.buckets.values())

    before = list(recorder.mutations)
    again = await ensure_influx_setup(settings, RetentionSettings())
    assert {c.action for c in again} == {"unchanged"}
    assert recorder.mutations == before
    assert len(recorder.buckets) == 3 and len(recorder.tasks) == 2


async def test_changed_retention_and_task_body_are_updated_in_place(
    recorder: InfluxRecorder,
) -> None:
    settings = settings_for(recorder.url)
    await ensure_influx_setup(settings, RetentionSettings())
    ids = (set(recorder.buckets), set(recorder.tasks))
    hourly_task = next(t for t in recorder.tasks.values() if t["name"] == "fleetpulse_rollup_1h")
    hourly_task["flux"] = hourly_task["flux"].replace("offset: 5m", "offset: 1m")  # edited by hand
    recorder.mutations.clear()

    changes = await ensure_influx_setup(settings, RetentionSettings(hourly=90 * DAY))
    changed = {(c.kind, c.name): c for c in changes if c.action != "unchanged"}
    assert set(changed) == {("bucket", "fleetpulse_1h"), ("task", "fleetpulse_rollup_1h")}
    assert changed["bucket", "fleetpulse_1h"].action == "updated"
    assert "30d -> 90d" in changed["bucket", "fleetpulse_1h"].detail
    assert recorder.mutations == ["update bucket fleetpulse_1h", "update task fleetpulse_rollup_1h"]
    assert (set(recorder.buckets), set(recorder.tasks)) == ids  # same objects, not new ones
    assert retention_of(recorder)["fleetpulse_1h"] == 90 * 86400
    assert hourly_task["flux"] == rollup_tasks("fleetpulse")[0].flux
    assert hourly_task["offset"] == "5m"


async def test_an_existing_org_is_used_and_an_inactive_task_is_left_inactive(
    recorder: InfluxRecorder,
) -> None:
    recorder.orgs["0000000000000abc"] = {"id": "0000000000000abc", "name": "fleetpulse"}
    settings = settings_for(recorder.url)
    await ensure_influx_setup(settings, RetentionSettings())
    task = next(iter(recorder.tasks.values()))
    task["status"] = "inactive"
    changes = await ensure_influx_setup(settings, RetentionSettings())
    assert changes[0].action == "unchanged"
    assert all(b["orgID"] == "0000000000000abc" for b in recorder.buckets.values())
    assert any("left inactive" in c.detail for c in changes)
    assert task["status"] == "inactive"


async def test_a_refused_token_is_a_clear_error(recorder: InfluxRecorder) -> None:
    with pytest.raises(InfluxSetupError) as caught:
        await ensure_influx_setup(settings_for(recorder.url, "wrong-token"), RetentionSettings())
    message = str(caught.value)
    assert "HTTP 401" in message and "storage.influxdb.token" in message
    assert "wrong-token" not in message
    assert recorder.mutations == []


async def test_an_unreachable_influxdb_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(InfluxSetupError, match=f"cannot reach InfluxDB at {url}"):
        await ensure_influx_setup(settings_for(url), RetentionSettings())


def write_config(path: Path, url: str, token: str, hourly: str = "30d") -> Path:
    path.write_text(
        "storage:\n"
        "  backend: influxdb\n"
        f"  influxdb: {{url: {url}, org: fleetpulse, token: {token}, bucket: fleetpulse}}\n"
        f"retention: {{raw: 48h, hourly: {hourly}, daily: 730d}}\n"
    )
    return path


async def test_cli_prints_what_it_did_and_exits_0_then_1_on_a_bad_token(
    recorder: InfluxRecorder, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "fleetpulse.yaml", recorder.url, TOKEN)
    code, out, err = await run_cli("influx", "setup", "-c", str(config))
    assert code == 0, err
    assert "created   bucket fleetpulse_1h (retention 30d)" in out
    assert "created   task   fleetpulse_rollup_1d (every 1d, offset 20m)" in out

    code, out, err = await run_cli("influx", "setup", "-c", str(config))
    assert code == 0, err
    assert "unchanged bucket fleetpulse_1d (retention 730d)" in out and "created" not in out

    write_config(config, recorder.url, TOKEN, hourly="60d")
    code, out, err = await run_cli("influx", "setup", "-c", str(config))
    assert code == 0, err
    assert "updated   bucket fleetpulse_1h (retention 30d -> 60d)" in out

    write_config(config, recorder.url, "wrong-token")
    code, out, err = await run_cli("influx", "setup", "-c", str(config))
    assert code == 1
    assert "HTTP 401" in err and "storage.influxdb.token" in err and "wrong-token" not in err


async def test_cli_exits_1_when_influxdb_is_unreachable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = write_config(tmp_path / "fleetpulse.yaml", url, TOKEN)
    code, _out, err = await run_cli("influx", "setup", "-c", str(config))
    assert code == 1
    assert f"cannot reach InfluxDB at {url}" in err


def test_settings_dataclass_keeps_the_token_out_of_its_repr() -> None:
    assert "s3cret" not in repr(dataclasses.replace(InfluxSettings(), token="s3cret"))
