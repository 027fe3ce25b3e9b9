"""Examples in the docs are run: what they show is what the real command prints."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cli import run_cli

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
