"""Reading the committed dashboards back: panels, Flux queries, variables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetpulse.core.tiers import DEFAULT_BUCKET, RetentionSettings
from grafana.contract import GRAFANA_DIR, Buckets

JSON = dict[str, Any]
# Grafana's own variables ($__interval, ${__value.raw}, ${__field.labels.x}, ...).
BUILTIN_PREFIX = "__"
# The buckets `fleetpulse dashboards` draws for a default installation (generate.Site()).
DEFAULT_BUCKETS = Buckets(DEFAULT_BUCKET, RetentionSettings())
VARIABLE_RE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_][\w.]*)(?::[^}]*)?\}|\$(?P<plain>[A-Za-z_]\w*)|\[\[(?P<bracket>\w+)"
)


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title and refId, variable or annotation name
    text: str

    @property
    def name(self) -> str:
        return f"{self.dashboard}.json: {self.where}"


def dashboard_files() -> list[Path]:
    return sorted((GRAFANA_DIR / "dashboards").glob("*.json"))


def load(path: Path) -> JSON:
    data: JSON = json.loads(path.read_text(encoding="utf-8"))
    return data


def dashboards() -> dict[str, JSON]:
    return {path.stem: load(path) for path in dashboard_files()}


def all_panels(board: JSON) -> Iterator[JSON]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def queries(board_name: str, board: JSON) -> Iterator[Query]:
    for panel in all_panels(board):
        for target in panel.get("targets", []):
            yield Query(
                board_name,
                f"panel {panel['id']} {panel['title']!r} {target['refId']}",
                target["query"],
            )
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            yield Query(board_name, f"variable {variable['name']}", variable["query"])
    for annotation in board["annotations"]["list"]:
        yield Query(board_name, f"annotation {annotation['name']}", annotation["target"]["query"])


def every_query() -> list[Query]:
    return [q for name, board in dashboards().items() for q in queries(name, board)]


def variables_used(text: str) -> set[str]:
    names = set()
    for match in VARIABLE_RE.finditer(text):
        name = match.group("braced") or match.group("plain") or match.group("bracket")
        names.add(name.split(".")[0])
    return names


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)


def datasources_in(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            else:
                yield from datasources_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasources_in(value)
