"""The two-column table every benchmark prints its figures in."""

from __future__ import annotations

from collections.abc import Sequence


def print_figures(rows: Sequence[tuple[str, str]], heading: str = "figure", rule: int = 30) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"{heading.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * rule}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
