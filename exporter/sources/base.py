"""What a metric source is: a name and a blocking `collect()` that returns metric families."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric as Family

from fleetpulse.core.catalog import BY_NAME

# How a failing source's warning says to turn it off under `fleetpulse exporter` (under
# `fleetpulse up` the exporter's service names the config key instead).
FLAG_OFF_HINT = "--disable {source}"


class Source(Protocol):
    name: str

    def collect(self) -> list[Family]:
        """Blocking; runs in a worker thread. Raise on failure: the loop counts it."""
        ...


def family(
    name: str, labels: tuple[str, ...] | None = None
) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty family for catalog metric `name`, typed and documented from the catalog."""
    metric = BY_NAME[name]
    label_names = list(metric.labels if labels is None else labels)
    if metric.kind == "counter":
        return CounterMetricFamily(name, metric.help, labels=label_names)
    return GaugeMetricFamily(name, metric.help, labels=label_names)


def optional(call: Callable[[], object]) -> object | None:
    """The result of a psutil call that some platforms lack or refuse; None when unavailable."""
    try:
        return call()
    except (AttributeError, NotImplementedError, OSError, RuntimeError):
        return None
