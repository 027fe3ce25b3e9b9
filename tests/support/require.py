"""Skip a test whose real part is missing, or fail it when CI demands every part."""

import os

import pytest


def require_all() -> bool:
    return os.environ.get("FLEETPULSE_REQUIRE_ALL") == "1"


def missing(reason: str) -> None:
    """Skip with the reason; under FLEETPULSE_REQUIRE_ALL=1 a missing part is a failure."""
    if require_all():
        pytest.fail(f"required part missing (FLEETPULSE_REQUIRE_ALL=1): {reason}", pytrace=False)
    pytest.skip(reason)
