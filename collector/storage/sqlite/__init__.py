"""The embedded store: SQLite in WAL mode, compact WITHOUT ROWID tables, one writer thread.

`store.py` is the facade (the storage port); `schema.py` the tables, `series.py` the writer's
series ids, `writes.py` the write transactions, `queries.py` and `reads.py` the reads,
`rollup.py` rollups and expiry, `catchup.py` which of them are due.
"""

from collector.storage.sqlite.store import SqliteStorage

__all__ = ["SqliteStorage"]
