"""Alert severities: how urgent a rule (or a thresholds level) says an alert instance is."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """The values are what rules, labels, messages, the state file and the API carry."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# Most urgent first: a warning instance learns whether the critical one of its series fires
# (which supersedes it) by being evaluated after it.
URGENCY = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
