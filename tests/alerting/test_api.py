"""GET /api/v1/alerts and /api/v1/alerts/history, answered from alert events in a real
SQLite store (as when the engine runs in another process)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from alerting.events import notification_event, transition_event
from alerting.history import write_events
from alerting.notification import Notification, NotificationKind, Outcome
from alerting.state import FIRING, INACTIVE, PENDING, RESOLVED
from collector.storage.sqlite import SqliteStorage
from fleetpulse.core.samples import make_labels
from fleetpulse.core.storage import ALERT_EVENTS, Event
from fleetpulse.core.timeutil import now_ms
from tests.support.api import ServeApi


def labels(host: str, severity: str = "critical") -> tuple[tuple[str, str], ...]:
    return make_labels({"host": host, "alertname": "CpuHigh", "severity": severity, "job": "j"})


@pytest.fixture
async def api(store: SqliteStorage, serve_api: ServeApi) -> tuple[str, SqliteStorage]:
    return await serve_api(), store


async def get(url: str) -> tuple[int, dict[str, Any]]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        doc: dict[str, Any] = await response.json()
        return response.status, doc


async def test_active_alerts_are_the_instances_whose_last_transition_is_pending_or_firing(
    api: tuple[str, SqliteStorage],
) -> None:
    base, store = api
    now = now_ms()
    await write_events(
        store,
        [
            transition_event(labels("a"), now - 5000, INACTIVE, PENDING, 90, 85, "s", now - 5000),
            transition_event(labels("a"), now - 3000, PENDING, FIRING, 91, 85, "CPU a", now - 3000),
            transition_event(labels("b"), now - 4000, INACTIVE, FIRING, 95, 85, "s", now - 4000),
            transition_event(labels("b"), now - 1000, FIRING, RESOLVED, 10, 85, "s", now - 4000),
        ],
    )
    status, body = await get(f"{base}/api/v1/alerts")
    assert status == 200
    (alert,) = body["alerts"]
    assert (alert["host"], alert["alertname"], alert["state"]) == ("a", "CpuHigh", "firing")
    assert alert["summary"] == "CPU a" and alert["value"] == 91


async def test_history_lists_transitions_and_attempts_filtered_by_host_and_time(
    api: tuple[str, SqliteStorage],
) -> None:
    base, store = api
    now = now_ms()
    note = Notification(
        "ops", "[CRITICAL] CpuHigh on a", "body", NotificationKind.FIRING, labels("a"), now
    )
    await write_events(
        store,
        [
            transition_event(labels("a"), now - 2000, PENDING, FIRING, 91, 85, "s", now),
            transition_event(labels("b"), now - 2000, PENDING, FIRING, 91, 85, "s", now),
            transition_event(labels("a"), now - 7_200_000, INACTIVE, FIRING, 1, 85, "s", 0),
            notification_event(Outcome(note, 1, False, "Connection refused", now - 1000, False)),
            notification_event(Outcome(note, 2, True, "", now - 500, True)),
        ],
    )
    status, body = await get(f"{base}/api/v1/alerts/history?start=-1h&host=a")
    assert status == 200
    got = [(e["event"], e.get("state"), e.get("outcome"), e.get("error")) for e in body["events"]]
    assert got == [
        ("transition", "firing", None, None),
        ("notification", None, "retrying", "Connection refused"),
        ("notification", None, "sent", ""),
    ]
    assert body["events"][1]["channel"] == "ops"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("start=yesterday", "bad parameter start: expected RFC 3339"),
        ("start=-1h&end=-2h", "bad parameter start: must be before end"),
        ("limit=0", "bad parameter limit: expected a whole number from 1 to 10000"),
    ],
)
async def test_bad_history_parameters_are_400(
    api: tuple[str, SqliteStorage], query: str, message: str
) -> None:
    base, _ = api
    status, body = await get(f"{base}/api/v1/alerts/history?{query}")
    assert status == 400
    assert body["error"].startswith(message)


async def test_attempts_and_millisecond_times_come_back_as_integers(
    api: tuple[str, SqliteStorage],
) -> None:
    base, store = api
    now = now_ms()
    note = Notification(
        "ops", "[CRITICAL] CpuHigh on a", "body", NotificationKind.FIRING, labels("a"), now
    )
    stored_as_floats = Event(  # how InfluxDB, and older SQLite rows, hand them back
        now - 3000,
        tuple(sorted((*labels("b"), ("event", "notification")))),
        (("attempt", 3.0), ("kind", "firing"), ("outcome", "sent")),
    )
    await write_events(
        store,
        [
            transition_event(labels("a"), now - 2000, PENDING, FIRING, 91.5, 85, "s", now - 9000),
            notification_event(Outcome(note, 2, True, "", now - 500, True)),
        ],
    )
    await store.write_events(ALERT_EVENTS, [stored_as_floats])
    _, history = await get(f"{base}/api/v1/alerts/history?start=-1h")
    _, active = await get(f"{base}/api/v1/alerts")
    by_host = {(e["host"], e["event"]): e for e in history["events"]}
    transition = by_host["a", "transition"]
    assert (transition["since_ms"], transition["ts_ms"]) == (now - 9000, now - 2000)
    assert by_host["a", "notification"]["attempt"] == 2
    assert by_host["b", "notification"]["attempt"] == 3
    (alert,) = active["alerts"]
    whole = [
        transition["since_ms"],
        transition["ts_ms"],
        by_host["a", "notification"]["attempt"],
        by_host["b", "notification"]["attempt"],
        alert["since_ms"],
        alert["ts_ms"],
    ]
    assert all(type(value) is int for value in whole), whole
    assert transition["value"] == 91.5  # a measurement stays what it is
