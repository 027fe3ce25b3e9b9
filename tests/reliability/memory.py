"""Resident memory of a process, for the suite's "memory stays bounded" checks."""

from __future__ import annotations

import gc

import psutil

MB = 1024 * 1024


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB of `pid` (this process when None), after a collection here."""
    if pid is None:
        gc.collect()
    return float(psutil.Process(pid).memory_info().rss) / MB
