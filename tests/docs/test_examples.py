"""Examples in the docs are run: what they show is what the real command prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
BROKEN_CONFIG_COMMAND = "$ fleetpulse up -c broken.yaml"


def section(markdown: str, title: str) -> str:
    """The text under `## title`, up to the next second-level heading."""
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block in `text`, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


async def test_readme_config_error_example_is_what_up_prints(tmp_path: Path) -> None:
    blocks = fenced_blocks(section((ROOT / "README.md").read_text(), "Configuration"))
    at = next(
        i
        for i, (language, body) in enumerate(blocks)
        if language == "console" and body.startswith(BROKEN_CONFIG_COMMAND + "\n")
    )
    # the broken file is the yaml block shown just before the command
    language, broken = blocks[at - 1]
    assert language == "yaml", "the README should show broken.yaml right before the command"
    (tmp_path / "broken.yaml").write_text(broken)
    shown = blocks[at][1].splitlines()[1:]
    code, out, err = await run_cli(*BROKEN_CONFIG_COMMAND.split()[2:], cwd=tmp_path)
    assert (code, out) == (1, "")
    assert err.splitlines() == shown


def shape(text: str) -> list[str]:
    """Lines with their numbers made alike (ports, versions and counts differ per run)."""
    return [re.sub(r"\d+", "#", line.rstrip()) for line in text.splitlines()]


def test_readme_quick_start_banner_is_what_up_prints(tmp_path: Path) -> None:
    blocks = fenced_blocks(section((ROOT / "README.md").read_text(), "Quick start"))
    language, shown = blocks[0]
    assert language == "console" and shown.startswith("$ make run\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse", "up",
         "--exporter-listen", f"127.0.0.1:{free_port()}", "--api-listen", f"127.0.0.1:{free_port()}"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = []
        for line in proc.stdout:
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert shape("".join(banner)) == shape(shown.split("\n", 1)[1])


async def test_the_rule_example_of_docs_alerting_passes_rules_check(tmp_path: Path) -> None:
    blocks = fenced_blocks(section((ROOT / "docs" / "alerting.md").read_text(), "Rules"))
    rule = next(body for language, body in blocks if language == "yaml")
    assert rule.startswith("groups:")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "example.yaml").write_text(rule)
    (tmp_path / "rules" / "thresholds.yaml").write_text(
        "thresholds:\n  defaults:\n    cpu: {warning: 70, critical: 85}\n"
    )
    code, out, err = await run_cli("rules", "check", "rules", cwd=tmp_path)
    assert (code, err) == (0, ""), err
    assert "rules/example.yaml: ok, 1 rules in 1 groups" in out


async def test_the_rules_check_example_of_docs_alerting_is_what_it_prints(tmp_path: Path) -> None:
    blocks = fenced_blocks(section((ROOT / "docs" / "alerting.md").read_text(), "Rules"))
    shown = next(body for language, body in blocks if body.startswith("$ fleetpulse rules check"))
    command, *lines = shown.split("$ ")[1].splitlines()
    assert command == "fleetpulse rules check rules/"
    code, _, err = await run_cli("init", str(tmp_path), cwd=tmp_path)
    assert code == 0, err
    code, out, err = await run_cli("rules", "check", "rules/", cwd=tmp_path)
    assert (code, err) == (0, "")
    assert out.splitlines() == lines
