"""`fleetpulse rules test`: the shipped rules' own tests, and what a failing test prints."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerting.ruletest import expand_values, load_test_file, run_test_file
from fleetpulse.app.cli import main
from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.errors import ConfigError


@pytest.fixture(autouse=True)
def alerting_log_level_restored() -> Iterator[None]:
    """`rules test` quiets the `alerting` logger for its one-shot process; in this process
    that would hide later tests' log lines."""
    logger = logging.getLogger("alerting")
    level = logger.level
    yield
    logger.setLevel(level)


SHIPPED = sorted((BUILTIN_RULES / "tests").glob("*.test.yaml"))


def test_compact_values_expand_like_promtool() -> None:
    assert expand_values("50 _ 1+2x3 7x2 10-1x2 _x2") == [
        50,
        None,
        1,
        3,
        5,
        7,
        7,
        7,
        7,
        10,
        9,
        8,
        None,
        None,
    ]
    with pytest.raises(ValueError, match="bad value 'abc'"):
        expand_values("1 abc")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_rules_pass_their_unit_tests(path: Path) -> None:
    out = io.StringIO()
    assert run_test_file(path, out), out.getvalue()


def test_every_shipped_rule_file_has_tests() -> None:
    tested = set()
    for path in SHIPPED:
        tested |= {p.name for p in load_test_file(path).rule_files}
    shipped = {p.name for p in BUILTIN_RULES.glob("*.yaml") if p.name != "thresholds.yaml"}
    assert shipped <= tested


FAILING = """
rule_files: [{rules}]
evaluation_interval: 15s
tests:
  - name: expects firing too early
    interval: 1m
    input_series:
      'host_cpu_usage_percent{{host="a"}}': 95x10
    alert_rule_test:
      - eval_time: 1m
        alertname: HostCpuHigh
        exp_alerts:
          - labels: {{host: a, severity: critical}}
"""


def test_a_failing_rule_test_says_what_was_expected_and_what_came_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cpu.test.yaml"
    path.write_text(FAILING.format(rules=BUILTIN_RULES / "host.yaml"))
    assert main(["rules", "test", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "FAIL expects firing too early",
        "  line 10: HostCpuHigh at 60s:",
        "    expected firing {host=a, severity=critical}",
        "    got pending {host=a, severity=critical} summary "
        "'CPU on a at 95.0% (> 85.0%) for 5 minutes'",
        "    got pending {host=a, severity=warning} summary "
        "'CPU on a at 95.0% (> 70.0%) for 5 minutes'",
        f"{path}: 1 tests, FAILED",
    ]


def test_a_bad_test_file_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.test.yaml"
    path.write_text(FAILING.format(rules=BUILTIN_RULES / "host.yaml").replace("95x10", "95 oops"))
    with pytest.raises(ConfigError) as caught:
        load_test_file(path)
    assert str(caught.value).startswith(f"{path}:8: tests[0].input_series.host_cpu_usage")
