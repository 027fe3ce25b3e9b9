"""Reading compose files the way `docker compose` does, for the checks the tests make."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.cli import DEPLOY

# $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}; $$ is a literal $
COMPOSE_VAR = re.compile(
    r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / name).read_text())
    assert isinstance(data, dict), f"{name}: expected a mapping"
    return data


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path}:{number}: {line!r}"
        values[key] = value
    return values


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution; a `:?`/`?` variable that is unset raises KeyError."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group(1) or match.group(4), match.group(2), match.group(3)
        value = env.get(name)
        if op in (":-", ":?") and not value:
            value = None
        if value is not None:
            return value
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return COMPOSE_VAR.sub(substitute, text).replace("$$", "$")


def strings(node: Any) -> Iterator[str]:
    """Every key and scalar of a parsed YAML tree: what compose interpolates (not comments)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def variables(tree: Any) -> set[str]:
    return {m.group(1) or m.group(4) for s in strings(tree) for m in COMPOSE_VAR.finditer(s)}


def required_variables(tree: Any) -> set[str]:
    return {
        m.group(1)
        for s in strings(tree)
        for m in COMPOSE_VAR.finditer(s)
        if m.group(2) in (":?", "?")
    }


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {interpolate_tree(k, env): interpolate_tree(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target -> (source, options) of a service's short-syntax volumes."""
    out: dict[str, tuple[str, str]] = {}
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), f"expected short volume syntax, got {entry!r}"
        source, target, *options = entry.split(":")
        out[target] = (source, options[0] if options else "rw")
    return out


def published_ports(service: dict[str, Any]) -> list[int]:
    """Container ports a service publishes (`[ip:]host:container`)."""
    return [int(str(p).split(":")[-1].split("/")[0]) for p in service.get("ports", [])]


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    assert isinstance(cmd, list), f"expected an exec-form command list, got {cmd!r}"
    return [str(c) for c in cmd]
