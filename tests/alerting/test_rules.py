"""Rule loading and validation: every mistake named with file:line, all at once, and the
`fleetpulse rules check` command."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.rules import load_ruleset
from fleetpulse.app.cli import main
from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.errors import ConfigError

THRESHOLDS = "thresholds:\n  defaults:\n    cpu: {warning: 70, critical: 85}\n"

BROKEN = """\
groups:
  - name: host
    interval: 15s
    rules:
      - alert: CpuHigh
        metric: host_cpu_usage_percent
        reduce: median
        window: 5
        op: "=>"
        threshold: cpu_load
        for: 5 minutes
        notify: [pager]
        colour: red
        annotations:
          summary: "CPU {{ value | round(1) }"
      - alert: BadSelector
        metric: 'host_cpu_usage_percent{host=~"[unclosed"}'
        threshold: 1
      - alert: CpuHigh
        metric: up
        threshold: 0
"""


def write_rules(tmp_path: Path, text: str, name: str = "host.yaml") -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / "thresholds.yaml").write_text(THRESHOLDS)
    path = folder / name
    path.write_text(text)
    return path


def test_every_kind_of_mistake_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    path = write_rules(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as caught:
        load_ruleset((path.parent,), channels=("ops",))
    lines = [str(p) for p in caught.value.problems]
    prefix = f"{path}:"
    expected = [
        "7: groups[0].rules[0].reduce: expected one of avg, min, max, last, sum, count, rate, "
        "increase, delta, deriv, predict_24h; got 'median'",
        "8: groups[0].rules[0].window: expected a duration like 15s, 5m, 48h or 30d; got the "
        "bare number 5; add a unit, e.g. 5s",
        "9: groups[0].rules[0].op: expected one of >, >=, <, <=, ==, !=; got '=>'",
        "10: groups[0].rules[0].threshold: unknown threshold key 'cpu_load'; known: cpu",
        "11: groups[0].rules[0].for: expected a duration like 15s, 5m, 48h or 30d, got '5 minutes'",
        "12: groups[0].rules[0].notify: unknown channel 'pager'; alerting.channels defines: ops",
        "13: groups[0].rules[0].colour: unknown key; expected one of: alert, annotations, "
        "cooldown, for, keep_firing_for, labels, metric, notify, op, reduce, send_resolved, "
        "severity, threshold, window",
        "15: groups[0].rules[0].annotations.summary: template does not compile: unexpected '}'",
        "17: groups[0].rules[1].metric: bad regular expression for host: unterminated character "
        "set at position 0",
        "19: alert: duplicate alert name 'CpuHigh'; first defined at " + f"{path}:5",
    ]
    assert lines == [prefix + e for e in expected]


def test_duplicate_alert_names_across_files_are_refused(tmp_path: Path) -> None:
    one = write_rules(
        tmp_path,
        "groups:\n  - name: a\n    rules:\n      - {alert: Same, metric: up, threshold: 0}\n",
    )
    two = write_rules(
        tmp_path,
        "groups:\n  - name: b\n    rules:\n      - {alert: Same, metric: up, threshold: 1}\n",
        "other.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        load_ruleset((one.parent,))
    assert [str(p) for p in caught.value.problems] == [
        f"{two}:4: alert: duplicate alert name 'Same'; first defined at {one}:4"
    ]


def test_duplicate_group_names_are_refused_in_one_file_and_across_files(
    tmp_path: Path,
) -> None:
    """The engine schedules groups by name: a second one would silently replace the first."""
    one = write_rules(
        tmp_path,
        "groups:\n  - name: a\n    rules: []\n  - name: a\n    rules: []\n",
    )
    two = write_rules(tmp_path, "groups:\n  - name: a\n    rules: []\n", "other.yaml")
    with pytest.raises(ConfigError) as caught:
        load_ruleset((one.parent,))
    assert [str(p) for p in caught.value.problems] == [
        f"{one}:4: groups[1].name: duplicate group name 'a'; first defined at {one}:2",
        f"{two}:2: groups[0].name: duplicate group name 'a'; first defined at {one}:2",
    ]


def test_thresholds_with_an_unknown_key_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "groups: []\n")
    (path.parent / "thresholds.yaml").write_text(
        THRESHOLDS + '  hosts:\n    "db-*": {dsk: {warning: 1}}\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_ruleset((path.parent,))
    assert str(caught.value.problems[0]).startswith(
        f"{path.parent / 'thresholds.yaml'}:5: thresholds.hosts.db-*.dsk: unknown threshold key"
    )


def test_severity_with_a_thresholds_key_is_refused(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        "groups:\n  - name: a\n    rules:\n      - alert: X\n        metric: up\n"
        "        threshold: cpu\n        severity: critical\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_ruleset((path.parent,))
    assert "7: groups[0].rules[0].severity: a thresholds key gives warning and critical" in str(
        caught.value
    )


def test_shipped_rules_load_with_a_summary_on_every_rule() -> None:
    ruleset = load_ruleset((BUILTIN_RULES,))
    names = {rule.alert for rule in ruleset.rules}
    assert {
        "HostDown",
        "HostCpuHigh",
        "HostMemoryHigh",
        "HostDiskFull",
        "HostDiskFillingUp",
        "ContainerDown",
        "ContainerRestarting",
        "ContainerMemoryNearLimit",
        "NetworkReceiveHigh",
        "NetworkTransmitHigh",
    } <= names
    assert all(any(k == "summary" for k, _ in rule.annotations) for rule in ruleset.rules)


def test_rules_check_prints_one_summary_line_per_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check", str(BUILTIN_RULES)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"{BUILTIN_RULES / 'host.yaml'}: ok, 7 rules in 1 groups" in out
    assert any(line.startswith(f"{BUILTIN_RULES / 'thresholds.yaml'}: ok") for line in out)


def test_rules_check_prints_every_error_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_rules(tmp_path, BROKEN)
    assert main(["rules", "check", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 9  # channels are unknown without a config: not checked here
    assert all(line.startswith(f"error: {path}:") for line in err)


def test_rules_check_refuses_a_missing_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "check", str(tmp_path / "nope")]) == 1
    assert "no such rule file or folder" in capsys.readouterr().err
