"""HTTP headers the exporter sends and the collector reads; one place keeps both sides agreed."""

# On every /metrics answer, the exporter's version: the collector pulls /logs only from
# targets that send it, so node_exporter, cAdvisor or an app are never asked for log lines.
EXPORTER_HEADER = "FleetPulse-Exporter"
# On /logs and /logs/stream, the exporter run's id: a new one means its sequence began again.
INSTANCE_HEADER = "FleetPulse-Log-Instance"
