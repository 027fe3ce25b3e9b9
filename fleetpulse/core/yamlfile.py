"""YAML read with line numbers kept, and typed accessors that collect every problem.

Config and rule loaders walk a `Node` tree through `MapView`, so each mistake is
reported as `file:line: key: what was expected` and all of them are reported at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from fleetpulse.core.durations import format_duration, parse_duration
from fleetpulse.core.errors import ConfigError, Problem

T = TypeVar("T")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Node:
    """A YAML value with the 1-based line it starts on (for a mapping value: its key's line)."""

    value: Any  # dict[str, Node] | list[Node] | str | int | float | bool | None
    line: int


def _convert(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    line: int,
    problems: list[Problem],
    file: str,
    path: str,
) -> Node:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        entries: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)
            child_path = f"{path}.{key}" if path else key
            if key in entries:
                problems.append(Problem(file, key_line, child_path, "duplicate key"))
            entries[key] = _convert(loader, value_node, key_line, problems, file, child_path)
        return Node(entries, line)
    if isinstance(node, yaml.SequenceNode):
        items = [
            _convert(loader, item, item.start_mark.line + 1, problems, file, f"{path}[{i}]")
            for i, item in enumerate(node.value)
        ]
        return Node(items, line)
    return Node(loader.construct_object(node), line)


def load_yaml(path: Path, text: str | None = None) -> Node:
    """Parse one YAML document; bad YAML raises ConfigError with the file and line."""
    file = str(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem(file, 0, "", f"cannot read: {exc.strerror}")]) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError([Problem(file, 0, "", "not valid UTF-8")]) from exc
    problems: list[Problem] = []
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError([Problem(file, line, "", f"invalid YAML: {exc.reason}")]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, 1)
        tree = _convert(loader, root, root.start_mark.line + 1, problems, file, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "<stream end>" in (exc.problem or ""):
            mark = exc.context_mark  # "unexpected end" is clearer where the open bracket is
        line = mark.line + 1 if mark else 0
        # an error "at the end of the stream" points past the text; show its last line
        line = min(line, len(text.rstrip().splitlines()) or 1)
        reason = "; ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        raise ConfigError([Problem(file, line, "", f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, 0, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if problems:
        raise ConfigError(problems)
    return tree


def resolve_path(base: Path, text: str) -> Path:
    """`text` as a path; relative ones resolve against `base` (the config file's folder)."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def expand_env(text: str) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; raise KeyError naming an unset variable."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise KeyError(name)
            return default
        return value

    return _ENV.sub(substitute, text)


def _type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


@dataclass(frozen=True, slots=True)
class Interval:
    """A positive duration and where it was set, so a timeout checked against it can name it."""

    seconds: float
    origin: str  # e.g. "scrape.interval: 10s, line 2" or "scrape.interval: 15s by default"


@dataclass(slots=True)
class Reader:
    """Collects problems for one file while its loader walks it."""

    file: str
    # Relative paths in the file (secret files, TLS files) resolve here; None: the file's folder.
    # A file_sd file sets the main config's folder, as Prometheus resolves every path there.
    base: Path | None = None
    problems: list[Problem] = field(default_factory=list)

    def problem(self, line: int, key: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, key, message))

    def resolve(self, text: str) -> Path:
        return resolve_path(self.base or Path(self.file).resolve().parent, text)

    def raise_if_problems(self) -> None:
        if self.problems:
            raise ConfigError(sorted(self.problems, key=lambda p: (p.file, p.line)))


class MapView:
    """Typed, validating access to one mapping of a YAML tree; problems go to the Reader."""

    def __init__(self, reader: Reader, node: Node, path: str = "") -> None:
        self.reader = reader
        self.line = node.line
        self.path = path
        if isinstance(node.value, dict):
            self.entries: dict[str, Node] = node.value
        else:
            self.entries = {}
            if node.value is not None:
                reader.problem(
                    node.line,
                    path or "(top level)",
                    f"expected a mapping, got {_type_name(node.value)}",
                )

    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def check_keys(self, allowed: set[str] | frozenset[str]) -> None:
        for key, node in self.entries.items():
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.reader.problem(
                    node.line, self.key_path(key), f"unknown key; expected one of: {hint}"
                )

    def node(self, key: str) -> Node | None:
        return self.entries.get(key)

    def line_of(self, key: str) -> int:
        node = self.entries.get(key)
        return node.line if node else self.line

    def _typed(self, key: str, default: T, convert: Callable[[Any], T], expected: str) -> T:
        node = self.entries.get(key)
        if node is None or node.value is None:
            return default
        try:
            return convert(node.value)
        except (TypeError, ValueError) as exc:
            detail = str(exc) or f"got {_type_name(node.value)}"
            message = detail if detail.startswith("expected") else f"expected {expected}; {detail}"
            self.reader.problem(node.line, self.key_path(key), message)
            return default

    def text(self, key: str, default: str = "") -> str:
        return self._typed(key, default, self._as_str, "a string")

    def _as_str(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"got {_type_name(value)}")
        text = str(value)
        try:
            return expand_env(text)
        except KeyError as exc:
            raise ValueError(
                f"environment variable {exc.args[0]} is not set (use ${{{exc.args[0]}:-default}} "
                "for a default)"
            ) from None

    def secret(self, key: str) -> str:
        """A secret from `key` or from the file named by `key_file` (relative to the Reader's
        base); the secret is never echoed in errors, the file's path is."""
        value = self.text(key)
        file_key = f"{key}_file"
        if file_key in self.entries:
            file_path = self.reader.resolve(self.text(file_key))
            if value:
                self.reader.problem(
                    self.line_of(file_key),
                    self.key_path(file_key),
                    f"set either {key} or {file_key}, not both",
                )
            try:
                return file_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.reader.problem(
                    self.line_of(file_key),
                    self.key_path(file_key),
                    f"cannot read the secret file {file_path}: {exc.strerror}",
                )
        return value

    def duration(self, key: str, default: float) -> float:
        def convert(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise TypeError(f"got {_type_name(value)}")
            if isinstance(value, int):
                if value == 0:
                    return 0.0
                raise ValueError(f"got the bare number {value}; add a unit, e.g. {value}s")
            return parse_duration(self._as_str(value))

        return self._typed(key, default, convert, "a duration like 15s, 5m, 48h or 30d")

    def positive_duration(self, key: str, default: float) -> float:
        if key not in self.entries:
            return default
        seconds = self.duration(key, default)
        if seconds <= 0:
            self.reader.problem(
                self.line_of(key), self.key_path(key), "expected a duration greater than 0"
            )
            return default
        return seconds

    def interval(self, key: str, inherited: float | Interval) -> Interval:
        """`key` as an Interval; unset, the `inherited` one (a float: a default of its own)."""
        node = self.entries.get(key)
        if node is not None and node.value is not None:
            fallback = inherited.seconds if isinstance(inherited, Interval) else inherited
            seconds = self.positive_duration(key, fallback)
            return Interval(
                seconds, f"{self.key_path(key)}: {format_duration(seconds)}, line {node.line}"
            )
        if isinstance(inherited, Interval):
            return inherited
        return Interval(inherited, f"{self.key_path(key)}: {format_duration(inherited)} by default")

    def timeout(self, key: str, interval: Interval) -> float | None:
        """The `key` the user set, which may not be longer than `interval` (Prometheus' rule);
        None when unset, so the caller's default applies: min(its default, the interval)."""
        node = self.entries.get(key)
        if node is None or node.value is None:
            return None
        seconds = self.positive_duration(key, 0.0)
        if seconds > interval.seconds:
            self.reader.problem(
                node.line,
                self.key_path(key),
                f"expected a timeout no longer than the interval ({interval.origin})",
            )
            return None
        return seconds or None

    def integer(self, key: str, default: int, *, minimum: int | None = None) -> int:
        def convert(value: Any) -> int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"got {_type_name(value)}")
            if minimum is not None and value < minimum:
                raise ValueError(f"got {value}, which is below {minimum}")
            return value

        return self._typed(key, default, convert, "a whole number")

    def number(self, key: str, default: float) -> float:
        def convert(value: Any) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"got {_type_name(value)}")
            return float(value)

        return self._typed(key, default, convert, "a number")

    def flag(self, key: str, default: bool) -> bool:
        def convert(value: Any) -> bool:
            if not isinstance(value, bool):
                raise TypeError(f"got {_type_name(value)}")
            return value

        return self._typed(key, default, convert, "true or false")

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            self.reader.problem(
                self.line_of(key),
                self.key_path(key),
                f"expected one of {', '.join(choices)}; got {value!r}",
            )
            return default
        return value

    def section(self, key: str) -> MapView:
        node = self.entries.get(key)
        return MapView(self.reader, node or Node({}, self.line), self.key_path(key))

    def items(self, key: str) -> list[Node]:
        node = self.entries.get(key)
        if node is None or node.value is None:
            return []
        if not isinstance(node.value, list):
            self.reader.problem(
                node.line, self.key_path(key), f"expected a list, got {_type_name(node.value)}"
            )
            return []
        items: list[Node] = node.value
        return items

    def text_list(self, key: str) -> list[str]:
        out = []
        for i, item in enumerate(self.items(key)):
            if isinstance(item.value, str):
                try:
                    out.append(expand_env(item.value))
                except KeyError as exc:
                    self.reader.problem(
                        item.line,
                        f"{self.key_path(key)}[{i}]",
                        f"environment variable {exc.args[0]} is not set",
                    )
            else:
                self.reader.problem(
                    item.line,
                    f"{self.key_path(key)}[{i}]",
                    f"expected a string, got {_type_name(item.value)}",
                )
        return out

    def text_map(self, key: str) -> dict[str, str]:
        view = self.section(key)
        out: dict[str, str] = {}
        for name in view:
            out[name] = view.text(name)
        return out
