"""Prometheus vector selectors: `name{label="v", label!="v", label=~"re", label!~"re"}`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from fleetpulse.core.samples import Labels

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "'": "'"}
OPS: dict[str, Callable[[Matcher, str], bool]] = {
    "=": lambda m, v: v == m.value,
    "!=": lambda m, v: v != m.value,
    "=~": lambda m, v: m.regex is not None and m.regex.fullmatch(v) is not None,
    "!~": lambda m, v: m.regex is not None and m.regex.fullmatch(v) is None,
}


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str
    value: str
    regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Labels) -> bool:
        for key, value in labels:
            if key == self.label:
                return OPS[self.op](self, value)
        return OPS[self.op](self, "")

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True, slots=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def matches(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def equal_value(self, label: str) -> str | None:
        """The value an `=` matcher pins `label` to, if any (lets storage narrow by host)."""
        for m in self.matchers:
            if m.label == label and m.op == "=":
                return m.value
        return None

    def with_matcher(self, label: str, value: str) -> Selector:
        return Selector(self.metric, (*self.matchers, Matcher(label, "=", value)))

    def __str__(self) -> str:
        if not self.matchers:
            return self.metric
        return f"{self.metric}{{{', '.join(str(m) for m in self.matchers)}}}"


def make_matcher(label: str, op: str, value: str) -> Matcher:
    if op not in OPS:
        raise ValueError(f"unknown matcher operator {op!r}; expected =, !=, =~ or !~")
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regular expression for {label}: {exc}") from None
    return Matcher(label, op, value, regex)


def parse_selector(text: str) -> Selector:
    """Parse a selector; ValueError says what is wrong and where."""
    src = text.strip()
    name_match = _NAME.match(src)
    if not name_match:
        raise ValueError(f"expected a metric name at the start of {text!r}")
    pos = name_match.end()
    matchers: list[Matcher] = []
    rest = src[pos:].lstrip()
    if not rest:
        return Selector(name_match.group(), ())
    if not rest.startswith("{"):
        raise ValueError(f"unexpected {rest[:10]!r} after the metric name in {text!r}")
    pos = src.index("{", pos) + 1

    def skip_space(i: int) -> int:
        while i < len(src) and src[i].isspace():
            i += 1
        return i

    while True:
        pos = skip_space(pos)
        if pos < len(src) and src[pos] == "}":
            pos += 1
            break
        label_match = _LABEL.match(src, pos)
        if not label_match:
            raise ValueError(f"expected a label name at position {pos + 1} of {text!r}")
        pos = skip_space(label_match.end())
        op = next((o for o in ("=~", "!~", "!=", "=") if src.startswith(o, pos)), None)
        if op is None:
            raise ValueError(f"expected =, !=, =~ or !~ at position {pos + 1} of {text!r}")
        pos = skip_space(pos + len(op))
        if pos >= len(src) or src[pos] not in "\"'":
            raise ValueError(f"expected a quoted value at position {pos + 1} of {text!r}")
        quote = src[pos]
        pos += 1
        chars = []
        while True:
            if pos >= len(src):
                raise ValueError(f"unterminated label value in {text!r}")
            ch = src[pos]
            if ch == "\\" and pos + 1 < len(src):
                chars.append(_ESCAPES.get(src[pos + 1], "\\" + src[pos + 1]))
                pos += 2
                continue
            if ch == quote:
                pos += 1
                break
            chars.append(ch)
            pos += 1
        matchers.append(make_matcher(label_match.group(), op, "".join(chars)))
        pos = skip_space(pos)
        if pos < len(src) and src[pos] == ",":
            pos += 1
            continue
        if pos < len(src) and src[pos] == "}":
            pos += 1
            break
        raise ValueError(f"expected , or }} at position {pos + 1} of {text!r}")
    if src[pos:].strip():
        raise ValueError(f"unexpected {src[pos:][:10]!r} after the selector in {text!r}")
    return Selector(name_match.group(), tuple(matchers))
