"""The files the package ships to start from: a commented fleetpulse.yaml, and the built-in
rules with their thresholds and unit tests.

`fleetpulse up` falls back to the built-in rules when none are configured or found, and
`fleetpulse init` copies all of it out to be edited. The files sit beside this module, so an
editable install and a wheel find them the same way.
"""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parent
STARTER_CONFIG = DEFAULTS_DIR / "fleetpulse.yaml"
BUILTIN_RULES = DEFAULTS_DIR / "rules"
