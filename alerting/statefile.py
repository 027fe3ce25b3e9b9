"""The state file: the alert instances' clocks and the undelivered notifications (the outbox),
kept across restarts in one file under the data directory."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alerting.state import AlertInstance, InstanceKey

log = logging.getLogger(__name__)

STATE_FILE = "alert-state.json"


@dataclass(frozen=True, slots=True)
class SavedState:
    instances: dict[InstanceKey, AlertInstance]
    # notifications not yet delivered nor given up, as `Notification.to_json` wrote them
    outbox: list[dict[str, Any]]
    heartbeat_ms: int | None = None  # when the last heartbeat went out (alerting.heartbeat)


def load_saved(data_dir: Path) -> SavedState:
    """The saved instances and outbox; a missing or unreadable file starts afresh (logged)."""
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        instances = [AlertInstance.from_json(item) for item in raw.get("instances", [])]
        outbox = [dict(item) for item in raw.get("outbox", [])]
        heartbeat = raw.get("heartbeat_ms")
        heartbeat_ms = None if heartbeat is None else int(heartbeat)
    except FileNotFoundError:
        return SavedState({}, [])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        log.error("alert state unreadable, starting afresh path=%s error=%s", path, exc)
        return SavedState({}, [])
    log.info("alert state loaded path=%s instances=%d outbox=%d", path, len(instances), len(outbox))
    return SavedState({inst.key: inst for inst in instances}, outbox, heartbeat_ms)


def state_payload(
    instances: list[AlertInstance],
    outbox: list[dict[str, Any]],
    heartbeat_ms: int | None = None,
) -> str:
    """The file's text. Built on the event loop, so nothing changes it while it is written."""
    doc: dict[str, Any] = {
        "version": 1,
        "instances": [inst.to_json() for inst in instances],
        "outbox": outbox,
    }
    if heartbeat_ms is not None:
        doc["heartbeat_ms"] = heartbeat_ms
    return json.dumps(doc, separators=(",", ":"))


def write_state(data_dir: Path, payload: str) -> None:
    """Write atomically: a crash mid-write leaves the previous file, never half of one.

    The cooldown clocks and the outbox travel in one file, so a restart never sees a
    notification's `last_notified` without the notification itself, or the reverse."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".alert-state.", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, data_dir / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
