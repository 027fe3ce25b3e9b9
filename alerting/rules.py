"""Rule files: discovery of `*.yaml` under the configured paths and their loading.

This is the walking skeleton's loader: it reads the group/rule structure and names; the full
schema validation (selectors, reduce, ops, templates, channels) arrives with the alert engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alerting.thresholds import THRESHOLDS_FILE
from fleetpulse.errors import ConfigError, Problem
from fleetpulse.yamlfile import MapView, Reader, load_yaml


@dataclass(frozen=True, slots=True)
class RuleRef:
    alert: str
    group: str
    file: str
    line: int


def rule_files(paths: tuple[Path, ...]) -> list[Path]:
    """Every rule file under `paths` (folders are searched for *.yaml / *.yml), sorted."""
    files: list[Path] = []
    problems = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.suffix in (".yaml", ".yml")
                and p.name != THRESHOLDS_FILE
                and not p.name.endswith((".test.yaml", ".test.yml"))
            )
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 0, "", "no such rule file or folder"))
    if problems:
        raise ConfigError(problems)
    return files


def load_rule_file(path: Path) -> list[RuleRef]:
    root = load_yaml(path)
    reader = Reader(str(path))
    top = MapView(reader, root)
    top.check_keys({"groups"})
    refs = []
    for i, group_node in enumerate(top.items("groups")):
        group = MapView(reader, group_node, f"groups[{i}]")
        name = group.text("name") or f"group {i + 1}"
        for j, rule_node in enumerate(group.items("rules")):
            rule = MapView(reader, rule_node, f"{group.path}.rules[{j}]")
            alert = rule.text("alert")
            if not alert:
                reader.problem(rule.line, rule.key_path("alert"), "required: the alert's name")
            refs.append(RuleRef(alert, name, str(path), rule.line))
    reader.raise_if_problems()
    return refs


def load_rules(paths: tuple[Path, ...]) -> list[RuleRef]:
    refs: list[RuleRef] = []
    problems: list[Problem] = []
    for path in rule_files(paths):
        try:
            refs += load_rule_file(path)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return refs
