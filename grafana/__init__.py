"""Grafana provisioning and the generator of FleetPulse's dashboards (`fleetpulse dashboards`)."""
