"""The collector's exception tree: every error it raises on purpose derives from CollectorError."""

from fleetpulse.core.errors import FleetPulseError


class CollectorError(FleetPulseError):
    """Base of the collector's expected failures; the CLI prints them as one line."""
