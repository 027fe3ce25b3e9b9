"""`fleetpulse init`: a starter config and a copy of the built-in rules, never over a file."""

from pathlib import Path

import pytest

from fleetpulse.app.cli import main
from fleetpulse.app.config import load_config
from fleetpulse.core.defaults import BUILTIN_RULES
from tests.support.cli import run_cli

RULE_FILES = sorted(p.relative_to(BUILTIN_RULES) for p in BUILTIN_RULES.rglob("*.yaml"))


def files_under(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


async def test_init_writes_a_config_and_rules_that_load_check_and_pass_their_tests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    assert main(["init", str(site)]) == 0
    written = [Path("fleetpulse.yaml"), *(Path("rules") / name for name in RULE_FILES)]
    assert files_under(site) == sorted(written)
    out = capsys.readouterr().out.splitlines()
    assert out[: len(written)] == [f"wrote {site / name}" for name in written]
    assert out[-1] == f"  fleetpulse up -c {site / 'fleetpulse.yaml'}"
    for name in RULE_FILES:
        assert (site / "rules" / name).read_bytes() == (BUILTIN_RULES / name).read_bytes()

    config = load_config(site / "fleetpulse.yaml")
    assert config.alerting.rules == (site / "rules",)
    code, out_text, err = await run_cli("rules", "check", str(site / "rules"))
    assert code == 0, err
    assert f"{site / 'rules' / 'thresholds.yaml'}: ok" in out_text
    # the copied tests name their rules relatively, so they run on the copy
    code, out_text, err = await run_cli("rules", "test", str(site / "rules/tests/host.test.yaml"))
    assert code == 0, out_text + err


def test_init_in_the_current_folder_says_to_run_plain_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "wrote fleetpulse.yaml"
    assert out[-1] == "  fleetpulse up"
    assert (tmp_path / "rules" / "thresholds.yaml").is_file()


def test_init_writes_nothing_when_one_of_its_files_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "rules" / "thresholds.yaml"
    mine.parent.mkdir()
    mine.write_text("thresholds: {}\n")
    assert main(["init", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {mine}: already exists, so fleetpulse init wrote nothing; choose another "
        "folder (fleetpulse init DIR) or remove it"
    )
    assert files_under(tmp_path) == [Path("rules/thresholds.yaml")]
    assert mine.read_text() == "thresholds: {}\n"


def test_init_refuses_a_file_where_its_rules_folder_goes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "rules").write_text("not a folder\n")
    assert main(["init", str(tmp_path)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'rules'}: already exists")
    assert files_under(tmp_path) == [Path("rules")]
