"""`fleetpulse rules test FILE`: rule unit tests in the spirit of `promtool test rules`.

A test file names rule files, gives input series compactly (`metric{l="v"}: 50 50 95 _ 1+2x3`
at a step) and lists the alerts expected at given times with their states. The engine's own
evaluator (`alerting.evaluator`, no store and no clock) evaluates the real rules on exactly
those points, each rule seeing what its range query would return.

```yaml
rule_files: [../host.yaml]            # relative to this file; thresholds.yaml beside them
evaluation_interval: 15s
tests:
  - name: CPU above critical fires after for
    interval: 15s                     # step between input values
    input_series:
      'host_cpu_usage_percent{host="a"}': 50 50 95 95 95 95 40
    alert_rule_test:
      - eval_time: 1m
        alertname: HostCpuHigh
        exp_alerts:
          - labels: {host: a, severity: critical}
            state: pending            # pending | firing (default firing)
```
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from alerting.evaluator import Evaluator
from alerting.render import summary
from alerting.rules import Rule, RuleSet, load_ruleset
from alerting.state import FIRING, PENDING, AlertState
from fleetpulse.core.samples import Labels, Series, make_labels
from fleetpulse.core.selector import parse_selector
from fleetpulse.core.yamlfile import MapView, Node, Reader, load_yaml, resolve_path

T0 = 1_800_000_000_000  # a fixed epoch for test time 0, so rendered times are stable
_EXPAND = re.compile(r"^(-?[\d.]+(?:e[+-]?\d+)?)(?:([+-][\d.]+(?:e[+-]?\d+)?)?x(\d+))?$")


def expand_values(text: str) -> list[float | None]:
    """`50 _ 1+2x3 7x2 _x2` -> 50, missing, 1 3 5 7, 7 7 7, missing missing."""
    out: list[float | None] = []
    for token in text.split():
        if token == "_":
            out.append(None)
            continue
        if token.startswith("_x") and token[2:].isdigit():
            out += [None] * int(token[2:])
            continue
        match = _EXPAND.match(token)
        if match is None:
            raise ValueError(f"bad value {token!r}; expected a number, _, a+bxn, a-bxn, axn or _xn")
        start = float(match.group(1))
        if match.group(3) is None:
            out.append(start)
            continue
        step = float(match.group(2) or 0)
        out += [start + step * i for i in range(int(match.group(3)) + 1)]
    return out


def in_window(series: Sequence[Series], rule: Rule, now: int) -> list[Series]:
    """What the rule's range query at `now` returns from a store that holds `series`."""
    start = now - int(rule.window * 1000)
    out = []
    for one in series:
        if one.name != rule.selector.metric or not rule.selector.matches(one.labels):
            continue
        points = [(t, v) for t, v in one.points if start <= t <= now]
        if points:
            out.append(Series(one.name, one.labels, points))
    return out


@dataclass(frozen=True, slots=True)
class Expected:
    labels: tuple[tuple[str, str], ...]
    state: AlertState
    summary: str | None


@dataclass(frozen=True, slots=True)
class Check:
    eval_time: float
    alertname: str
    expected: tuple[Expected, ...]
    line: int


@dataclass(frozen=True, slots=True)
class RuleTestCase:
    name: str
    interval: float
    series: tuple[Series, ...]
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class RuleTestFile:
    path: Path
    rule_files: tuple[Path, ...]
    evaluation_interval: float
    tests: tuple[RuleTestCase, ...]


@dataclass(slots=True)
class TestResult:
    name: str
    failures: list[str] = field(default_factory=list)


def _series(reader: Reader, view: MapView, interval: float) -> list[Series]:
    out = []
    for text in view:
        node = view.node(text) or Node(None, view.line)
        try:
            selector = parse_selector(text)
            if any(m.op != "=" for m in selector.matchers):
                raise ValueError("input series take only = labels")
            values = expand_values(str(node.value))
        except ValueError as exc:
            reader.problem(node.line, view.key_path(text), str(exc))
            continue
        labels = make_labels({m.label: m.value for m in selector.matchers})
        step = int(interval * 1000)
        points = [(T0 + i * step, v) for i, v in enumerate(values) if v is not None]
        out.append(Series(selector.metric, labels, points))
    return out


def load_test_file(path: Path) -> RuleTestFile:
    reader = Reader(str(path))
    top = MapView(reader, load_yaml(path))
    top.check_keys({"rule_files", "evaluation_interval", "tests"})
    base = path.resolve().parent
    rule_files = tuple(resolve_path(base, p) for p in top.text_list("rule_files"))
    if not rule_files:
        reader.problem(top.line, "rule_files", "required: the rule files under test")
    evaluation = top.positive_duration("evaluation_interval", 15.0)
    tests = []
    for i, node in enumerate(top.items("tests")):
        view = MapView(reader, node, f"tests[{i}]")
        view.check_keys({"name", "interval", "input_series", "alert_rule_test"})
        interval = view.positive_duration("interval", evaluation)
        series = _series(reader, view.section("input_series"), interval)
        checks = []
        for j, check_node in enumerate(view.items("alert_rule_test")):
            check = MapView(reader, check_node, f"{view.path}.alert_rule_test[{j}]")
            check.check_keys({"eval_time", "alertname", "exp_alerts"})
            expected = []
            for k, exp_node in enumerate(check.items("exp_alerts")):
                exp = MapView(reader, exp_node, f"{check.path}.exp_alerts[{k}]")
                exp.check_keys({"labels", "state", "summary"})
                expected.append(
                    Expected(
                        tuple(sorted(exp.text_map("labels").items())),
                        AlertState(exp.choice("state", FIRING, (PENDING, FIRING))),
                        exp.text("summary") if "summary" in exp else None,
                    )
                )
            if "eval_time" not in check:
                reader.problem(check.line, check.key_path("eval_time"), "required: e.g. 5m")
            checks.append(
                Check(
                    check.duration("eval_time", 0.0),
                    check.text("alertname"),
                    tuple(expected),
                    check.line,
                )
            )
        tests.append(
            RuleTestCase(
                view.text("name") or f"test {i + 1}", interval, tuple(series), tuple(checks)
            )
        )
    reader.raise_if_problems()
    return RuleTestFile(path, rule_files, evaluation, tuple(tests))


def _matches(expected: Expected, labels: Labels, state: AlertState, text: str) -> bool:
    have = dict(labels)
    return (
        state == expected.state
        and all(have.get(k) == v for k, v in expected.labels)
        and (expected.summary is None or expected.summary == text)
    )


def run_case(test_file: RuleTestFile, ruleset: RuleSet, case: RuleTestCase) -> TestResult:
    result = TestResult(case.name)
    evaluator = Evaluator()
    step = int(test_file.evaluation_interval * 1000)
    checks = sorted(case.checks, key=lambda c: c.eval_time)
    end = int(max((c.eval_time for c in checks), default=0.0) * 1000)
    by_time: dict[int, list[Check]] = {}
    for check in checks:
        by_time.setdefault(int(check.eval_time * 1000), []).append(check)
    t = 0
    while t <= end:
        now = T0 + t
        for group in ruleset.groups:
            series = [in_window(case.series, rule, now) for rule in group.rules]
            evaluator.evaluate(group.rules, series, ruleset.thresholds, now)
        for moment in [m for m in by_time if m <= t]:
            for check in by_time.pop(moment):
                result.failures += _compare(ruleset, evaluator, check)
        t += step
    return result


def _compare(ruleset: RuleSet, evaluator: Evaluator, check: Check) -> list[str]:
    rule = next((r for r in ruleset.rules if r.alert == check.alertname), None)
    if rule is None:
        return [f"line {check.line}: no rule named {check.alertname!r}"]
    actual = []
    for inst in evaluator.instances.values():
        if inst.alert == check.alertname and inst.state in (PENDING, FIRING):
            actual.append((inst.labels, inst.state, summary(rule, inst, inst.state, "")))
    unmatched = list(actual)
    missing = []
    for exp in check.expected:
        hit = next((a for a in unmatched if _matches(exp, *a)), None)
        if hit is None:
            missing.append(exp)
        else:
            unmatched.remove(hit)
    if not missing and not unmatched:
        return []

    def show(labels: Labels) -> str:
        return "{" + ", ".join(f"{k}={v}" for k, v in labels if k not in ("alertname", "job")) + "}"

    lines = [f"line {check.line}: {check.alertname} at {check.eval_time:g}s:"]
    lines += [
        f"  expected {e.state} {show(e.labels)}"
        + (f" summary {e.summary!r}" if e.summary is not None else "")
        for e in missing
    ]
    lines += [f"  got {state} {show(labels)} summary {text!r}" for labels, state, text in unmatched]
    if not unmatched:
        lines.append("  got nothing else active")
    return lines


def run_test_file(path: Path, out: TextIO) -> bool:
    """Run every test in `path`, print one line per test and a summary; True if all pass.

    A bad test file or rule file raises ConfigError with file:line."""
    test_file = load_test_file(path)
    ruleset = load_ruleset(test_file.rule_files, None)
    passed = True
    for case in test_file.tests:
        result = run_case(test_file, ruleset, case)
        if result.failures:
            passed = False
            print(f"FAIL {case.name}", file=out)
            for line in result.failures:
                print(f"  {line}", file=out)
        else:
            print(f"ok   {case.name}", file=out)
    total = len(test_file.tests)
    print(f"{path}: {total} tests, {'all passed' if passed else 'FAILED'}", file=out)
    return passed
