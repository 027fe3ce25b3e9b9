"""The alert engine's own metrics: how long its cycles take, whether it holds its state for
the store, and how each channel delivers.

They live in a registry the engine is given: `fleetpulse up` shows them on the API's
/metrics beside the collector's, `fleetpulse alerting` on its own listener
(`alerting.listen`). The built-in self-monitoring rules (`rules/fleetpulse.yaml`) read them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry, channels: Sequence[str]) -> None:
        self.cycle_seconds = Gauge(
            "fleetpulse_alert_cycle_seconds",
            "How long the last evaluation cycle took.",
            registry=registry,
        )
        self.cycle_load = Gauge(
            "fleetpulse_alert_cycle_load_ratio",
            "The last cycle's duration divided by the shortest interval of the groups it "
            "evaluated; above 1 the engine cannot keep up with its schedule.",
            registry=registry,
        )
        self.held = Gauge(
            "fleetpulse_alert_evaluation_held",
            "1 while rules hold their state because the store failed to write or read.",
            registry=registry,
        )
        self.rules = Gauge("fleetpulse_alert_rules", "Rules loaded.", registry=registry)
        self.save_failing = Gauge(
            "fleetpulse_alert_state_save_failing",
            "1 while the engine cannot write its state file (cooldowns, undelivered "
            "notifications) to its data folder.",
            registry=registry,
        )
        self.deliveries = Counter(
            "fleetpulse_notification_attempts",
            "Notification delivery attempts by channel and result (sent, failed).",
            ["channel", "result"],
            registry=registry,
        )
        self.failing = Gauge(
            "fleetpulse_notification_failures_in_a_row",
            "Notifications a channel failed to deliver in a row, after all retries; 0 "
            "after a delivery.",
            ["channel"],
            registry=registry,
        )
        for name in channels:  # every channel has its series from the start, so alerts resolve
            self.failing.labels(name).set(0)
            for result in ("sent", "failed"):
                self.deliveries.labels(name, result)

    def delivered(self, channel: str, ok: bool, final: bool) -> None:
        self.deliveries.labels(channel, "sent" if ok else "failed").inc()
        if ok:
            self.failing.labels(channel).set(0)
        elif final:
            self.failing.labels(channel).inc()
