"""The writer's series ids: metric -> labels -> id in memory, new series registered in bulk.

Keyed by the series' value, so any caller's samples find their ids, however their label
tuples were made. Hashing the labels costs ~50 ns a sample (about 1% of the collector's CPU per
sample); the tuples kept as keys are the ones the scrape loops keep anyway. Used on the writer
thread only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Sequence
from json.encoder import encode_basestring as encode_json_string

from fleetpulse.core.samples import Labels, Sample, label_value

PAIRS_MAX = 1_000_000  # distinct label pairs whose JSON text the writer remembers
SERIES_CACHED_MAX = 2_000_000  # series whose ids the writer remembers


class SeriesIds:
    def __init__(self) -> None:
        self._ids: dict[str, dict[Labels, int]] = {}
        self._cached = 0
        self._pair_json: dict[tuple[str, str], str] = {}

    def rows(
        self, conn: sqlite3.Connection, samples: Sequence[Sample]
    ) -> list[tuple[int, int, float]]:
        """(series id, ts, value) per sample; series not seen before are registered first, all
        in one go (one at a time, a first scrape of 1,000 x 500 series took ~10 s)."""
        ids = self._ids
        try:
            return [(ids[name][labels], ts, value) for name, labels, value, ts in samples]
        except KeyError:
            self._register(conn, samples)
        return [(ids[name][labels], ts, value) for name, labels, value, ts in samples]

    def forget(self) -> None:
        """Forget every id (those inserted in a rolled-back transaction are gone)."""
        self._ids.clear()
        self._cached = 0

    def forget_ids(self, gone: Collection[tuple[int, str]]) -> None:
        """Forget these (id, metric) series: they were deleted, and their ids may be reused."""
        gone_ids = {series_id for series_id, _ in gone}
        for metric in {metric for _, metric in gone}:
            known = self._ids.get(metric, {})
            for labels in [k for k, series_id in known.items() if series_id in gone_ids]:
                del known[labels]
                self._cached -= 1

    def _register(self, conn: sqlite3.Connection, samples: Sequence[Sample]) -> None:
        """Give every series of the batch not in the cache its series id.

        The cache is emptied when it holds too many series, so a source inventing series
        costs lookups, not memory.
        """
        if self._cached >= SERIES_CACHED_MAX:
            self.forget()
        ids = self._ids
        missing: dict[tuple[str, Labels], None] = {}  # in order, each series once
        for name, labels, _, _ in samples:
            known = ids.get(name)
            if known is None or labels not in known:
                missing[name, labels] = None
        keys = list(missing)
        rows = [
            (name, label_value(labels, "host"), self._labels_json(labels)) for name, labels in keys
        ]
        # The writer holds the write lock, so ids past the largest are free: with ids chosen
        # here, no query is needed to learn them unless some series existed already.
        first = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM series").fetchone()[0])
        inserted = conn.executemany(
            "INSERT OR IGNORE INTO series (id, metric, host, labels) VALUES (?, ?, ?, ?)",
            [(first + n, *row) for n, row in enumerate(rows)],
        ).rowcount
        if inserted == len(keys):
            found: Iterable[tuple[int, int]] = enumerate(range(first, first + len(keys)))
        else:  # some were there already (a restart, a cache cleared): look all of them up
            found = _lookup(conn, rows)
        for n, series_id in found:
            name, labels = keys[n]
            ids.setdefault(name, {})[labels] = int(series_id)
        self._cached += len(keys)

    def _share(self, pair: tuple[str, str]) -> tuple[str, str]:
        """Remember a label pair's JSON text (series of many targets share most pairs)."""
        if len(self._pair_json) >= PAIRS_MAX:
            # only the memo is lost; a target inventing labels cannot grow it for ever
            self._pair_json.clear()
        self._pair_json[pair] = encode_json_string(pair[0]) + ":" + encode_json_string(pair[1])
        return pair

    def _labels_json(self, labels: Labels) -> str:
        """schema.labels_json(labels) from the pairs' cached texts (json.dumps was most of the
        cost of a first scrape)."""
        texts = self._pair_json
        return "{" + ",".join([texts.get(p) or (self._share(p) and texts[p]) for p in labels]) + "}"


def _lookup(conn: sqlite3.Connection, rows: list[tuple[str, str, str]]) -> list[tuple[int, int]]:
    """(index in rows, series id) for every (metric, host, labels JSON) row."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS wanted "
        "(n INTEGER PRIMARY KEY, metric TEXT NOT NULL, labels TEXT NOT NULL)"
    )
    conn.executemany(
        "INSERT INTO temp.wanted (n, metric, labels) VALUES (?, ?, ?)",
        [(n, metric, text) for n, (metric, _, text) in enumerate(rows)],
    )
    found = conn.execute(
        "SELECT t.n, s.id FROM temp.wanted t "
        "JOIN series s ON s.metric = t.metric AND s.labels = t.labels"
    ).fetchall()
    conn.execute("DELETE FROM temp.wanted")
    return found
