"""Grafana provisioning and the generator of FleetPulse's dashboards (`python -m grafana.generate`)."""
