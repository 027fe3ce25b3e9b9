"""The collector's exception tree: every error it raises on purpose derives from CollectorError."""


class CollectorError(Exception):
    """Base of the collector's expected failures."""
