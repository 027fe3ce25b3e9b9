"""What a SIGKILL costs on SQLite: `fleetpulse up` scraping every 1 s with writes lingering
(storage.sqlite.flush_interval 2 s, so each write carries two scrapes) is killed with
SIGKILL. The samples it had not written yet are lost by the nature of SIGKILL; the newest one
stored must be at most the lingering window plus one interval older than the kill, the file
must pass `PRAGMA integrity_check`, and a restart on the same data dir goes on writing.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from tests.support.poll import eventually_sync
from tests.test_up import start_up, stop

INTERVAL, LINGER = 1.0, 2.0
CONFIG = f"""
scrape: {{interval: {INTERVAL:g}s, timeout: 1s}}
exporter: {{listen: "127.0.0.1:0", interval: 1s}}
api: {{listen: "127.0.0.1:0"}}
storage: {{sqlite: {{flush_interval: {LINGER:g}s}}}}
"""
# a write's own time (one transaction on a shared 2-core machine) on top of the bound
WRITE_SLACK_MS = 500


def newest_up(db: Path) -> int | None:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute(
            "SELECT max(r.ts) FROM raw r JOIN series s ON s.id = r.series_id "
            "WHERE s.metric = 'up' AND s.labels LIKE '%\"job\":\"fleetpulse\"%'"
        ).fetchone()
    return None if row is None else row[0]


def test_a_sigkill_loses_at_most_the_linger_plus_one_interval_and_the_file_stays_sound(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "metrics.db"
    proc, _ = start_up(tmp_path, CONFIG)
    try:
        eventually_sync(lambda: db.exists() and (newest_up(db) or 0) > 0, what="first writes")
        first = newest_up(db) or 0
        eventually_sync(lambda: (newest_up(db) or 0) >= first + 5_000, what="5 s of writes")
    finally:
        killed_ms = int(time.time() * 1000)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    stored = newest_up(db)
    assert stored is not None
    lost_ms = killed_ms - stored
    print(f"newest stored up sample {lost_ms} ms before the SIGKILL")
    assert lost_ms <= (LINGER + INTERVAL) * 1000 + WRITE_SLACK_MS, lost_ms
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    proc, _ = start_up(tmp_path, CONFIG)
    try:
        eventually_sync(lambda: (newest_up(db) or 0) > killed_ms, what="writes after restart")
    finally:
        code, err = stop(proc)
    assert code == 0, err
