"""The sample and series types that travel between exporter, collector, storage and alerting."""

from typing import NamedTuple

Labels = tuple[tuple[str, str], ...]  # sorted by label name; hashable, compact


class Sample(NamedTuple):
    name: str
    labels: Labels
    value: float
    ts_ms: int


class Series(NamedTuple):
    """Points of one series, oldest first; labels include `host` and `job`."""

    name: str
    labels: Labels
    points: list[tuple[int, float]]


def make_labels(pairs: dict[str, str] | Labels) -> Labels:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return tuple(sorted(items))


def label_value(labels: Labels, name: str, default: str = "") -> str:
    for key, value in labels:
        if key == name:
            return value
    return default


def is_counter(name: str) -> bool:
    """Counters are named `*_total`; they roll up as last + per-second rates."""
    return name.endswith("_total")
