"""The README and docs/ checked against the code, so that what they show cannot drift.

- nothing in the repository points outside it;
- every relative link resolves;
- every `fleetpulse …` command line in an example block parses with the real CLI parser;
- every metric name they mention is one that the catalog defines or that a running
  `fleetpulse up` really exposes (its exporter's and its collector's own `/metrics`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from fleetpulse.app.cli import build_parser
from fleetpulse.core.catalog import ALL
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def doc_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    out = []
    for name in names:
        path = REPO / name
        if path.suffix in {".png", ".wasm"} or not path.is_file():
            continue
        out.append(path)
    return out


def test_nothing_in_the_repository_refers_to_files_outside_it() -> None:
    offenders = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if "../shared" in line or "shared/DESIGN.md" in line or "shared/STYLE.md" in line:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    # This module names the strings it looks for; that is not a reference.
    offenders = [o for o in offenders if not o.startswith("tests/docs/test_references.py")]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("doc", DOCS, ids=doc_id)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        if not (doc.parent / target).exists():
            broken.append(target)
    assert not broken, f"{doc_id(doc)}: links to missing files: {broken}"


def example_blocks(doc: Path) -> Iterator[tuple[str, str]]:
    for language, body, _ in blocks_with_intro(doc):
        yield language, body


def blocks_with_intro(doc: Path) -> Iterator[tuple[str, str, str]]:
    """(language, body, the text between the previous block and this one)."""
    text = doc.read_text()
    end = 0
    for match in BLOCK.finditer(text):
        yield match.group(2), match.group(3), text[end : match.start()]
        end = match.end()


def documented_commands(doc: Path) -> Iterator[str]:
    """`fleetpulse …` command lines of the console/sh examples, without prompts or comments."""
    for language, body in example_blocks(doc):
        if language not in ("", "console", "sh", "ini"):
            continue
        for raw in body.splitlines():
            line = raw.strip().removeprefix("$ ").removeprefix("ExecStart=")
            if "fleetpulse" not in line:
                continue
            words = shlex.split(line, comments=True)
            if not words or not (words[0] == "fleetpulse" or words[0].endswith("/fleetpulse")):
                continue
            for i, word in enumerate(words):
                if word in ("|", "&&", ";"):
                    words = words[:i]
                    break
            yield shlex.join(words[1:])


ALL_COMMANDS = [(doc, command) for doc in DOCS for command in documented_commands(doc)]


def test_the_docs_show_commands_to_check() -> None:
    """The extraction below must find the examples, or the parse test checks nothing."""
    shown = {command.split()[0] for _, command in ALL_COMMANDS if command}
    assert {"up", "exporter", "collector", "alerting", "rules", "notify", "status"} <= shown


@pytest.mark.parametrize(
    ("doc", "command"),
    ALL_COMMANDS,
    ids=[f"{doc_id(d)}:{c[:40]}" for d, c in ALL_COMMANDS],
)
def test_every_documented_command_line_parses(doc: Path, command: str) -> None:
    parser = build_parser()
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(shlex.split(command))
        except SystemExit:
            pytest.fail(f"{doc_id(doc)}: `fleetpulse {command}` is refused: {errors.getvalue()}")


METRIC = re.compile(
    r"(?<![\w{/.-])((?:host|container|network|exporter|fleetpulse|scrape|alerting)_"
    r"(?:[a-z0-9_]|\{[a-z0-9_,]+\}(?=[a-z0-9_]))*[a-z0-9])(?![\w(/.-])"
)
# Names of other things that share our prefixes: InfluxDB buckets and tasks, threshold keys
# of thresholds.yaml, and a label of host_info.
OTHER_NAMES = {
    "fleetpulse_1h",
    "fleetpulse_1d",
    "fleetpulse_rollup_1h",
    "fleetpulse_rollup_1d",
    "container_memory",
    "network_bandwidth",
    "exporter_version",
    # the engine's per-channel metrics: the `fleetpulse up` below has no channel to label
    "fleetpulse_notification_attempts_total",
    "fleetpulse_notification_failures_in_a_row",
}


def expand(name: str) -> list[str]:
    """`host_memory_{total,used}_bytes` → both names, as the README writes families."""
    match = re.search(r"\{([^{}]*)\}", name)
    if not match:
        return [name]
    head, tail = name[: match.start()], name[match.end() :]
    return [n for part in match.group(1).split(",") for n in expand(head + part + tail)]


def documented_metrics() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", doc.read_text()):
            for name in METRIC.findall(span):
                for expanded in expand(name):
                    found.setdefault(expanded, set()).add(doc_id(doc))
    return found


def exposed_names(text: str) -> set[str]:
    """Sample names, plus the family names of histograms (their samples carry suffixes)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.split()[3] in ("histogram", "summary"):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def running_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every name the exporter and the collector of a real `fleetpulse up` expose."""
    folder = tmp_path_factory.mktemp("up")
    exporter, api = free_port(), free_port()
    (folder / "fleetpulse.yaml").write_text(
        "scrape: {interval: 1s, timeout: 1s}\nexporter: {interval: 1s}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["DOCKER_HOST"] = f"unix://{folder}/no-docker.sock"  # containers come from the catalog
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetpulse", "up", "-c", "fleetpulse.yaml", "--data-dir", "data",
         "--exporter-listen", f"127.0.0.1:{exporter}", "--api-listen", f"127.0.0.1:{api}"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        names: set[str] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                names = set()
                for port in (exporter, api):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                        names |= exposed_names(r.read().decode())
                if {"fleetpulse_scrapes_total", "host_cpu_usage_percent"} <= names:
                    return names
            time.sleep(0.5)
        raise AssertionError(f"fleetpulse up exposed no metrics: rc={proc.poll()}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_every_metric_name_in_the_docs_is_defined_or_exposed(running_names: set[str]) -> None:
    known = {metric.name for metric in ALL} | running_names | OTHER_NAMES
    documented = documented_metrics()
    assert len(documented) > 40, "the name extraction found too little to be checking anything"
    unknown = {name: sorted(docs) for name, docs in documented.items() if name not in known}
    assert not unknown, f"names in the docs that nothing defines or exposes: {unknown}"


def config_examples() -> list[tuple[Path, str]]:
    """The YAML examples that are (parts of) a fleetpulse.yaml: their first key is a section."""
    sections = ("storage:", "retention:", "scrape:", "alerting:", "api:", "exporter:")
    return [
        (doc, body)
        for doc in DOCS
        for language, body, intro in blocks_with_intro(doc)
        # a broken example is shown with the errors it gets (tests/docs/test_examples.py)
        if language == "yaml" and body.lstrip().startswith(sections) and "broken" not in intro
    ]


CONFIG_EXAMPLES = config_examples()


@pytest.mark.parametrize(
    ("doc", "body"),
    CONFIG_EXAMPLES,
    ids=[f"{doc_id(d)}:{b.split(':')[0]}" for d, b in CONFIG_EXAMPLES],
)
def test_every_config_example_loads(
    doc: Path, body: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetpulse.app.config import load_config

    for name in set(re.findall(r"\$\{(\w+)", body)):
        monkeypatch.setenv(name, "example-secret")

    # Files the example names (secrets, Apprise configs) exist where it says, moved under
    # tmp_path when absolute.
    def make_file(match: re.Match[str]) -> str:
        key, name = match.group(1), match.group(2)
        target = tmp_path / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("urls:\n  - json://localhost\n" if key == "config" else "secret\n")
        return f"{key}: {target}"

    body = re.sub(r"\b(\w*_file|config): *([^\s#{}\[\],]+)", make_file, body)
    path = tmp_path / "fleetpulse.yaml"
    path.write_text(body)
    load_config(path)


def shape(reason: str) -> str:
    """A reason with its numbers (and the docs' placeholder N) made alike."""
    return re.sub(r"(?<![\w.])\d+(\.\d+)?|\bN\b", "#", reason)


async def test_the_dead_target_reasons_in_the_docs_are_the_ones_scrapes_give() -> None:
    from collector.scrape import scrape_target
    from collector.settings import ScrapeSettings, TargetSettings
    from collector.targets import resolve_target
    from tests.support.servers import free_port, hanging, serve, static_exposition

    text = (REPO / "docs" / "collector.md").read_text()
    paragraph = text[text.index("A slow, dead or") :].split("\n\n")[0]
    documented = {shape(span) for span in re.findall(r"`([^`]+)`", paragraph.replace("\n", " "))}

    async def reason_of(url: str, body_limit: int | None = None) -> str:
        target = resolve_target(TargetSettings(url=url, host="t", timeout=0.5), ScrapeSettings())
        async with aiohttp.ClientSession() as session:
            result = await scrape_target(session, target, body_limit=body_limit)
        assert not result.up
        return result.reason

    handlers = {
        "/500": static_exposition("oops", status=500),
        "/garbage": static_exposition("temp{room=a} 1\n"),
        "/hangs": hanging(5),
        "/big": static_exposition("x" * 200_000),
    }
    async with serve(handlers) as base:
        reasons = [
            await reason_of(f"http://127.0.0.1:{free_port()}/metrics"),
            await reason_of(f"{base}/500"),
            await reason_of(f"{base}/garbage"),
            await reason_of(f"{base}/hangs"),
            await reason_of(f"{base}/big", body_limit=100_000),
        ]
    # the docs may stop where a reason goes on with details ("parse error at line N: …")
    missing_from_docs = [r for r in reasons if not any(shape(r).startswith(d) for d in documented)]
    assert not missing_from_docs, f"docs/collector.md shows {sorted(documented)}"
