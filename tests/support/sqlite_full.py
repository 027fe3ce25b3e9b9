"""A real full condition for a SQLite store: `PRAGMA max_page_count` on its writer's
connection makes SQLite answer SQLITE_FULL ("database or disk is full") exactly as a full
disk does, and lifting it is the space coming back. The pragma holds per connection, so it
runs on the store's writer thread (a private handle: no public API should offer this)."""

from __future__ import annotations

from collector.storage.sqlite import SqliteStorage


async def fill(store: SqliteStorage) -> None:
    """Cap the file at its current size: the next write that needs a page fails."""
    await _cap(store, None)


async def free(store: SqliteStorage) -> None:
    await _cap(store, 1 << 30)


async def _cap(store: SqliteStorage, pages: int | None) -> None:
    def cap() -> None:
        conn = store._conn()
        size = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {size if pages is None else pages}")

    await store._run(store._writer, cap)
