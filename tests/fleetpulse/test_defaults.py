"""The built-in rules: used when no rules are configured and no rules/ folder is found, never
in place of a configured path that is missing."""

from pathlib import Path

import pytest

from alerting.engine import AlertEngine
from fleetpulse.app.cli import main
from fleetpulse.app.config import load_config
from fleetpulse.core.defaults import BUILTIN_RULES

ONE_RULE = (
    "groups:\n  - name: g\n    rules:\n      - {alert: Hot, metric: t, op: '>', threshold: 1}\n"
)


def write_config(folder: Path, text: str) -> Path:
    path = folder / "fleetpulse.yaml"
    path.write_text(text)
    return path


def test_without_rules_configured_or_beside_the_config_the_builtin_rules_load(
    tmp_path: Path,
) -> None:
    settings = load_config(write_config(tmp_path, "scrape: {interval: 15s}\n")).alerting
    assert settings.rules == (BUILTIN_RULES,)
    assert settings.rules_origin() == "built-in; `fleetpulse init` writes a copy to edit"
    engine = AlertEngine(settings)
    engine.load()
    assert {"HostDown", "HostCpuHigh", "ContainerDown"} <= {rule.alert for rule in engine.rules}
    assert engine.ruleset.thresholds.source == BUILTIN_RULES / "thresholds.yaml"


def test_a_rules_folder_beside_the_config_is_used_instead_of_the_builtin_rules(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "mine.yaml").write_text(ONE_RULE)
    settings = load_config(write_config(tmp_path, "scrape: {interval: 15s}\n")).alerting
    assert settings.rules == (tmp_path / "rules",)
    assert settings.rules_origin() == str(tmp_path / "rules")
    engine = AlertEngine(settings)
    engine.load()
    assert [rule.alert for rule in engine.rules] == ["Hot"]


def test_without_a_config_a_rules_folder_in_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(None).alerting.rules == (BUILTIN_RULES,)
    (tmp_path / "rules").mkdir()
    assert load_config(None).alerting.rules == (Path("rules"),)


def test_a_configured_rules_path_that_is_missing_stops_up_naming_the_config_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "api: {listen: '127.0.0.1:0'}\nalerting:\n  rules: [nope/]\n")
    code = main(
        [
            "up",
            "-c",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "--exporter-listen",
            "127.0.0.1:0",
        ]
    )
    assert code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {config}:3: alerting.rules: {tmp_path / 'nope'}: no such rule file or folder; "
        "fix the path, or remove the key to use a rules/ folder beside the config or else the "
        "built-in rules"
    )
    assert not (tmp_path / "data").exists()


async def test_rules_check_without_a_path_checks_the_rules_the_engine_would_load(
    tmp_path: Path,
) -> None:
    from tests.support.cli import run_cli

    code, out, err = await run_cli("rules", "check", cwd=tmp_path)
    assert (code, err) == (0, "")
    assert f"{BUILTIN_RULES / 'host.yaml'}: ok" in out
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "mine.yaml").write_text(ONE_RULE.replace("threshold: 1", "threshold: x"))
    write_config(tmp_path, "alerting: {rules: [site]}\n")
    code, out, err = await run_cli("rules", "check", cwd=tmp_path)
    assert code == 1 and "mine.yaml:4" in err and "host.yaml" not in out + err
