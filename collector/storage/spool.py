"""A bounded on-disk spool of write batches that replays oldest first and survives restarts.

Each batch is one gzip file `<seq>-<tier>-<lines>.lp.gz` in the spool folder; the sequence
number gives the replay order across restarts, and a file only appears once it is complete
(written to a temporary name, synced, then renamed). When the folder would grow past its
bound the oldest batches are dropped, counted and logged: recent data is worth more to an
operator than the start of a long outage. Methods block; callers run them in a thread.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_ENTRY = re.compile(r"^(\d{12})-([a-z]+)-(\d+)\.lp\.gz$")


@dataclass(frozen=True, slots=True, order=True)
class SpoolEntry:
    seq: int
    tier: str
    lines: int
    size: int

    @property
    def filename(self) -> str:
        return f"{self.seq:012d}-{self.tier}-{self.lines}.lp.gz"


class Spool:
    """Batches of line protocol, keyed by tier, kept in order on disk under a size bound."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped_lines = 0
        self.dropped_batches = 0
        self._lock = threading.Lock()
        self._entries: list[SpoolEntry] = []
        self._bytes = 0
        self._next_seq = 1

    @classmethod
    def open(cls, directory: Path, max_bytes: int) -> Spool:
        spool = cls(directory, max_bytes)
        spool._scan()
        return spool

    def _scan(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        entries = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a batch interrupted mid-write was never acked
                continue
            match = _ENTRY.match(path.name)
            if match is None:
                continue
            seq, tier, lines = match.groups()
            entries.append(SpoolEntry(int(seq), tier, int(lines), path.stat().st_size))
        entries.sort()
        self._entries = entries
        self._bytes = sum(e.size for e in entries)
        self._next_seq = entries[-1].seq + 1 if entries else 1
        if entries:
            log.info(
                "spool opened dir=%s batches=%d lines=%d bytes=%d",
                self.directory,
                len(entries),
                self.lines,
                self._bytes,
            )

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def lines(self) -> int:
        return sum(e.lines for e in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def append(self, tier: str, lines: list[str]) -> SpoolEntry:
        """Store one batch after every batch already in the spool."""
        body = gzip.compress("\n".join(lines).encode(), compresslevel=1)
        with self._lock:
            entry = SpoolEntry(self._next_seq, tier, len(lines), len(body))
            self._next_seq += 1
            path = self.directory / entry.filename
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._entries.append(entry)
            self._bytes += entry.size
            self._enforce_bound()
            return entry

    def _enforce_bound(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            oldest = self._entries.pop(0)
            self._bytes -= oldest.size
            (self.directory / oldest.filename).unlink(missing_ok=True)
            self.dropped_lines += oldest.lines
            self.dropped_batches += 1
            log.warning(
                "spool full, dropped oldest batch dir=%s tier=%s samples=%d "
                "dropped_samples_total=%d max_bytes=%d",
                self.directory,
                oldest.tier,
                oldest.lines,
                self.dropped_lines,
                self.max_bytes,
            )

    def peek(self) -> SpoolEntry | None:
        with self._lock:
            return self._entries[0] if self._entries else None

    def read(self, entry: SpoolEntry) -> list[str]:
        """The batch's lines; an unreadable file is dropped (counted) and yields []."""
        path = self.directory / entry.filename
        try:
            return gzip.decompress(path.read_bytes()).decode().split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            log.error(
                "spool batch unreadable, dropped file=%s samples=%d error=%s",
                path,
                entry.lines,
                exc,
            )
            self.remove(entry, dropped=True)
            return []

    def remove(self, entry: SpoolEntry, *, dropped: bool = False) -> None:
        with self._lock:
            if entry in self._entries:
                self._entries.remove(entry)
                self._bytes -= entry.size
            (self.directory / entry.filename).unlink(missing_ok=True)
            if dropped:
                self.dropped_lines += entry.lines
                self.dropped_batches += 1
