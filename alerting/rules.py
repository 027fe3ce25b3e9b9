"""Rule files: discovery of `*.yaml` under the configured paths, loading and full validation.

Every mistake is reported with `file:line` and all at once: unknown keys, bad durations,
unknown reduce functions or operators, unknown threshold keys or channels, bad selectors,
templates that do not compile, and alert names used twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from alerting.reduce import OPS, REDUCERS
from alerting.severity import Severity
from alerting.templates import compile_template
from fleetpulse.core.errors import ConfigError, Problem
from fleetpulse.core.selector import Selector, parse_selector
from fleetpulse.core.thresholds import (
    THRESHOLDS_FILE,
    Thresholds,
    find_thresholds_file,
    load_thresholds,
)
from fleetpulse.core.yamlfile import MapView, Reader, load_yaml

RULE_KEYS = frozenset(
    {
        "alert",
        "metric",
        "reduce",
        "window",
        "op",
        "threshold",
        "severity",
        "for",
        "keep_firing_for",
        "cooldown",
        "notify",
        "send_resolved",
        "labels",
        "annotations",
    }
)
GROUP_KEYS = frozenset({"name", "interval", "rules"})
DEFAULT_COOLDOWN = 1800.0


@dataclass(frozen=True, slots=True)
class Rule:
    alert: str
    selector: Selector
    reduce: str = "last"
    window: float = 60.0
    op: str = ">"
    threshold: float | str = 0.0  # a number, or a key of thresholds.yaml
    severity: Severity = Severity.WARNING  # only for a numeric threshold
    for_: float = 0.0
    keep_firing_for: float = 0.0
    cooldown: float = DEFAULT_COOLDOWN
    notify: tuple[str, ...] | None = None  # None: alerting.default_channels
    send_resolved: bool = True
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, jinja2.Template], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    interval: float
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class RuleSet:
    groups: tuple[Group, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    files: tuple[Path, ...] = ()

    @property
    def rules(self) -> list[Rule]:
        return [rule for group in self.groups for rule in group.rules]


def rule_files(paths: tuple[Path, ...], source: tuple[str, int] | None = None) -> list[Path]:
    """Every rule file under `paths` (folders are searched for *.yaml / *.yml), sorted.

    `source` is the (file, line) of the config's alerting.rules, named in a missing path's
    error so it says which line to fix."""
    files: list[Path] = []
    problems = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and p.name != THRESHOLDS_FILE
                and not p.name.endswith((".test.yaml", ".test.yml"))
            )
        elif path.is_file():
            files.append(path)
        elif source is not None:
            problems.append(
                Problem(
                    *source,
                    "alerting.rules",
                    f"{path}: no such rule file or folder; fix the path, or remove the key to "
                    "use a rules/ folder beside the config or else the built-in rules",
                )
            )
        else:
            problems.append(Problem(str(path), 0, "", "no such rule file or folder"))
    if problems:
        raise ConfigError(problems)
    return files


def _duration(view: MapView, key: str, default: float) -> float:
    seconds = view.duration(key, default)
    if seconds < 0:
        view.reader.problem(view.line_of(key), view.key_path(key), "expected a duration >= 0")
    return seconds


def _threshold(view: MapView, thresholds: Thresholds) -> float | str:
    node = view.node("threshold")
    if node is None or node.value is None:
        view.reader.problem(
            view.line, view.key_path("threshold"), "required: a number or a thresholds.yaml key"
        )
        return 0.0
    if isinstance(node.value, bool):
        view.reader.problem(node.line, view.key_path("threshold"), "expected a number or a key")
        return 0.0
    if isinstance(node.value, int | float):
        return float(node.value)
    key = view.text("threshold")
    if key not in set(thresholds.keys()):
        known = ", ".join(thresholds.keys()) or "none (no thresholds.yaml found)"
        view.reader.problem(
            node.line, view.key_path("threshold"), f"unknown threshold key {key!r}; known: {known}"
        )
    if "severity" in view:
        view.reader.problem(
            view.line_of("severity"),
            view.key_path("severity"),
            "a thresholds key gives warning and critical itself; remove severity",
        )
    return key


def _annotations(view: MapView) -> tuple[tuple[str, jinja2.Template], ...]:
    out = []
    section = view.section("annotations")
    for key in section:
        text = section.text(key)
        try:
            out.append((key, compile_template(text)))
        except jinja2.TemplateSyntaxError as exc:
            view.reader.problem(
                section.line_of(key) + max(0, (exc.lineno or 1) - 1),
                section.key_path(key),
                f"template does not compile: {exc.message}",
            )
    return tuple(out)


def parse_rule(
    view: MapView,
    thresholds: Thresholds,
    channels: tuple[str, ...] | None,
) -> Rule | None:
    view.check_keys(RULE_KEYS)
    reader = view.reader
    alert = view.text("alert")
    if not alert:
        reader.problem(view.line, view.key_path("alert"), "required: the alert's name")
    metric = view.text("metric")
    selector = None
    if not metric:
        reader.problem(view.line, view.key_path("metric"), 'required: a selector like up{job="x"}')
    else:
        try:
            selector = parse_selector(metric)
        except ValueError as exc:
            reader.problem(view.line_of("metric"), view.key_path("metric"), str(exc))
    reduce = view.choice("reduce", "last", tuple(REDUCERS))
    op = view.choice("op", ">", tuple(OPS))
    window = view.positive_duration("window", 60.0)
    threshold = _threshold(view, thresholds)
    severity = Severity(view.choice("severity", Severity.WARNING, tuple(Severity)))
    notify: tuple[str, ...] | None = None
    if "notify" in view:
        notify = tuple(view.text_list("notify"))
        if channels is not None:
            for name in notify:
                if name not in channels:
                    known = ", ".join(channels) or "none"
                    reader.problem(
                        view.line_of("notify"),
                        view.key_path("notify"),
                        f"unknown channel {name!r}; alerting.channels defines: {known}",
                    )
    rule = Rule(
        alert=alert,
        selector=selector or Selector("up"),
        reduce=reduce,
        window=window,
        op=op,
        threshold=threshold,
        severity=severity,
        for_=_duration(view, "for", 0.0),
        keep_firing_for=_duration(view, "keep_firing_for", 0.0),
        cooldown=_duration(view, "cooldown", DEFAULT_COOLDOWN),
        notify=notify,
        send_resolved=view.flag("send_resolved", True),
        labels=tuple(sorted(view.text_map("labels").items())),
        annotations=_annotations(view),
    )
    return rule if alert and selector else None


@dataclass
class SeenNames:
    """Alert and group names already defined (name -> file:line), across every rule file.

    A group name is unique too: the engine schedules groups by name, so a second group of the
    same name would silently take the first one's place."""

    alerts: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)


def load_rule_file(
    path: Path,
    thresholds: Thresholds | None = None,
    channels: tuple[str, ...] | None = None,
    default_interval: float = 15.0,
    seen: SeenNames | None = None,
) -> list[Group]:
    """Raises ConfigError with every problem in the file. `seen` spans files, so a name used
    twice anywhere is reported."""
    thresholds = thresholds or Thresholds()
    seen = SeenNames() if seen is None else seen
    root = load_yaml(path)
    reader = Reader(str(path))
    top = MapView(reader, root)
    top.check_keys({"groups"})
    groups = []
    for i, group_node in enumerate(top.items("groups")):
        view = MapView(reader, group_node, f"groups[{i}]")
        view.check_keys(GROUP_KEYS)
        name = view.text("name")
        if not name:
            reader.problem(view.line, view.key_path("name"), "required: the group's name")
        else:
            first = seen.groups.setdefault(name, f"{path}:{view.line}")
            if first != f"{path}:{view.line}":
                reader.problem(
                    view.line,
                    view.key_path("name"),
                    f"duplicate group name {name!r}; first defined at {first}",
                )
        interval = view.positive_duration("interval", default_interval)
        rules = []
        for j, rule_node in enumerate(view.items("rules")):
            rule_view = MapView(reader, rule_node, f"{view.path}.rules[{j}]")
            rule = parse_rule(rule_view, thresholds, channels)
            alert = rule_view.text("alert")
            where = f"{path}:{rule_view.line}"
            first = seen.alerts.setdefault(alert, where) if alert else where
            if first != where:
                reader.problem(
                    rule_view.line,
                    "alert",
                    f"duplicate alert name {alert!r}; first defined at {first}",
                )
            elif rule is not None:
                rules.append(rule)
        groups.append(Group(name, interval, tuple(rules)))
    reader.raise_if_problems()
    return groups


def load_ruleset(
    paths: tuple[Path, ...],
    channels: tuple[str, ...] | None = None,
    default_interval: float = 15.0,
    source: tuple[str, int] | None = None,
) -> RuleSet:
    """Thresholds and every rule file under `paths`; ConfigError lists every problem.

    `source`: where the config set `paths` (see `rule_files`)."""
    problems: list[Problem] = []
    thresholds = Thresholds()
    thresholds_path = find_thresholds_file(paths)
    if thresholds_path is not None:
        try:
            thresholds = load_thresholds(thresholds_path)
        except ConfigError as exc:
            problems += exc.problems
    files = rule_files(paths, source)
    groups: list[Group] = []
    seen = SeenNames()
    for path in files:
        try:
            groups += load_rule_file(path, thresholds, channels, default_interval, seen)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return RuleSet(tuple(groups), thresholds, tuple(files))
