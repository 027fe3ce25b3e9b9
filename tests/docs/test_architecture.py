"""docs/architecture.md's layer diagram is the layers contract that `make lint` enforces."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def contract(contract_id: str) -> dict[str, object]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts: list[dict[str, object]] = config["contracts"]
    return next(c for c in contracts if c["id"] == contract_id)


def diagram_layers() -> list[str]:
    text = (REPO / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^layer (\d)  (.+)$", text, flags=re.MULTILINE)
    assert rows, "docs/architecture.md has no layer diagram"
    return [layer.strip() for _, layer in sorted(rows, reverse=True)]


def test_the_diagram_shows_the_layers_contract_top_down() -> None:
    layers = contract("layers")["layers"]
    assert diagram_layers() == layers


def test_every_package_is_in_a_layer_and_every_layer_exists() -> None:
    layers = contract("layers")["layers"]
    assert isinstance(layers, list)
    named = {part.strip() for layer in layers for part in re.split(r"[|:]", layer)}
    packages = {
        path.parent.relative_to(REPO).as_posix().replace("/", ".")
        for path in REPO.glob("*/__init__.py")
    } - {"tests", "bench"}
    packages = (packages - {"fleetpulse"}) | {"fleetpulse.app", "fleetpulse.core"}
    assert named == packages


def test_import_linter_keeps_every_contract() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
