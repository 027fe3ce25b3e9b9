"""A small reader of deploy/Dockerfile: its instructions, as the Docker parser splits them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# every instruction of the Dockerfile reference (docs.docker.com/reference/dockerfile)
KNOWN = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)


@dataclass(frozen=True, slots=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form argument (CMD, ENTRYPOINT, VOLUME, ...)."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self
        return value


def parse(path: Path) -> list[Instruction]:
    """Instructions with backslash continuations joined and comments dropped."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comment lines inside a continuation are skipped, as Docker does
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        text = " ".join(p for p in pending if p)
        pending = []
        keyword, _, args = text.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
    assert not pending, f"{path}: ends inside a line continuation"
    return out


def env_values(instructions: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for pair in ins.args.split():
                key, sep, value = pair.partition("=")
                assert sep, f"line {ins.line}: use ENV KEY=value"
                values[key] = value
    return values


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    (check,) = [i for i in instructions if i.keyword == "HEALTHCHECK"]
    _, sep, command = check.args.partition("CMD ")
    assert sep, f"line {check.line}: HEALTHCHECK without CMD"
    return Instruction(check.line, "CMD", command).exec_form()


@dataclass(frozen=True, slots=True)
class Stage:
    """The instructions from one FROM to the next; `name` is its `AS` name, if any."""

    base: str
    name: str | None
    steps: list[Instruction]


def stages(instructions: list[Instruction]) -> list[Stage]:
    out: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = ins.args.split()
            assert len(words) in (1, 3) and (len(words) == 1 or words[1].upper() == "AS"), ins
            out.append(Stage(words[0], words[2] if len(words) == 3 else None, []))
        elif out:
            out[-1].steps.append(ins)
    return out


def global_args(instructions: list[Instruction]) -> dict[str, str | None]:
    """The ARGs before the first FROM (those FROM lines may use), with their defaults."""
    values: dict[str, str | None] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            key, sep, value = ins.args.partition("=")
            values[key] = value if sep else None
    return values
