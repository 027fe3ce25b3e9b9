"""The shared exception tree: errors about configuration files and user input."""

from dataclasses import dataclass


class FleetPulseError(Exception):
    """Base of the errors FleetPulse raises on purpose."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a file: where it is, which key, and what was expected."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(FleetPulseError, ValueError):
    """A config or rule file is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
