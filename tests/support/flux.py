"""Check Flux text with the official Flux language service (flux-lsp in WebAssembly).

``tools/fluxcheck/check.mjs`` loads npm ``@influxdata/flux-lsp-browser`` (pinned in
``tools/fluxcheck/package.json``), drives its language server over LSP JSON-RPC and
prints each text's ``textDocument/publishDiagnostics``. All texts of one call go
through a single Node process; each text is its own document in its own folder, so
definitions never leak from one text into another. Install it with
``.ci/install-flux-checker``. What the service reports and what it misses is
described in ``tests/support/test_flux_checker.py``.

Grafana queries: Grafana injects the record ``v`` (``v.timeRangeStart``,
``v.timeRangeStop``, ``v.windowPeriod``, ``v.defaultBucket``, ``v.organization``)
and replaces dashboard variables (``$host``, ``${host}``, ``${host:regex}``,
``[[host]]``, built-ins such as ``${__interval}``) in the text before Flux sees it.
The service reports every use of ``v`` as ``undefined identifier v`` and a bare
``${host}`` as a syntax error, while ``"${host}"`` inside a string is Flux string
interpolation of an undefined identifier ``host``. Declaring ``v`` in a preamble
(``v = {...}`` or ``option v = {...}``) gets a warning from the service ("Avoid
using `v` as an identifier name") and moves every line number, so
:func:`substitute_grafana_vars` replaces these with valid literals on the same
line instead: line numbers stay right, columns after a substitution may shift.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.require import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
FLUXCHECK_DIR = REPO_ROOT / "tools" / "fluxcheck"
CHECK_SCRIPT = FLUXCHECK_DIR / "check.mjs"
SERVICE_PACKAGE = "@influxdata/flux-lsp-browser"
SERVICE_DIR = FLUXCHECK_DIR / "node_modules" / SERVICE_PACKAGE
INSTALL_HINT = "run .ci/install-flux-checker"
MIN_NODE_MAJOR = 18
DEFAULT_TIMEOUT = 120.0

ERROR = 1
WARNING = 2
INFORMATION = 3
HINT = 4


class FluxCheckerError(RuntimeError):
    """The checker itself failed (not: the Flux text has mistakes)."""


@dataclass(frozen=True)
class FluxDiagnostic:
    line: int  # 1-based
    column: int  # 1-based, in characters (code points)
    severity: int  # LSP: 1 error, 2 warning, 3 information, 4 hint
    message: str

    def __str__(self) -> str:
        prefix = (
            "" if self.severity == ERROR else "warning: " if self.severity == WARNING else "note: "
        )
        return f"{self.line}:{self.column}: {prefix}{self.message}"


@functools.cache
def _node_version(node: str) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.", out)
    return (int(match.group(1)), out) if match else None


def flux_checker_available() -> str | None:
    """None when the checker can run, else the reason it cannot."""
    node = shutil.which("node")
    if node is None:
        return f"Flux checker: node (Node.js) is not on PATH; {INSTALL_HINT}"
    version = _node_version(node)
    if version is None:
        return f"Flux checker: {node} --version failed; {INSTALL_HINT}"
    if version[0] < MIN_NODE_MAJOR:
        return f"Flux checker: node {version[1]} is too old (need >= {MIN_NODE_MAJOR})"
    if not CHECK_SCRIPT.is_file():
        return f"Flux checker: {CHECK_SCRIPT} is missing"
    if not (SERVICE_DIR / "flux-lsp-browser_bg.wasm").is_file():
        return (
            f"Flux checker: {SERVICE_DIR} is not installed (node_modules missing); {INSTALL_HINT}"
        )
    try:
        pinned = json.loads((FLUXCHECK_DIR / "package.json").read_text())["dependencies"][
            SERVICE_PACKAGE
        ]
        installed = json.loads((SERVICE_DIR / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError) as exc:
        return f"Flux checker: cannot read package versions ({exc}); {INSTALL_HINT}"
    if pinned != installed:
        return (
            f"Flux checker: node_modules is stale ({SERVICE_PACKAGE} {installed} installed, "
            f"{pinned} pinned); {INSTALL_HINT}"
        )
    return None


def require_flux_checker() -> None:
    """Skip the test when the checker cannot run (fail under FLEETPULSE_REQUIRE_ALL=1)."""
    reason = flux_checker_available()
    if reason is not None:
        missing(reason)


def check_flux_diagnostics(
    texts: Mapping[str, str], *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, list[FluxDiagnostic]]:
    """Every diagnostic the service reports for each text, keyed by the text's name.

    Raises FluxCheckerError when the checker cannot run or fails.
    """
    if not texts:
        return {}
    node = shutil.which("node")
    if node is None:
        raise FluxCheckerError(f"node (Node.js) is not on PATH; {INSTALL_HINT}")
    payload = json.dumps([{"name": name, "flux": flux} for name, flux in texts.items()])
    try:
        proc = subprocess.run(
            [node, str(CHECK_SCRIPT)],
            input=payload,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
            cwd=FLUXCHECK_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise FluxCheckerError(f"Flux checker timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise FluxCheckerError(
            f"Flux checker failed (exit {proc.returncode}): {proc.stderr.strip()}"
        )
    try:
        results = json.loads(proc.stdout)
        return {
            result["name"]: [
                FluxDiagnostic(
                    line=int(d["line"]),
                    column=int(d["column"]),
                    severity=int(d["severity"]),
                    message=str(d["message"]),
                )
                for d in result["diagnostics"]
            ]
            for result in results
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise FluxCheckerError(
            f"Flux checker printed unexpected output: {proc.stdout[:500]!r}"
        ) from exc


def check_flux(
    texts: Mapping[str, str],
    *,
    include_warnings: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, list[str]]:
    """Human messages ("line:col: message") for each text; an empty list means clean.

    Only errors by default: the service's warnings are lints such as "Avoid using
    `task` as an identifier name", which it also raises for the required
    ``option task = {...}`` of every InfluxDB task. ``include_warnings=True`` adds
    them as "line:col: warning: message"; hints (experimental/contrib packages)
    are never included.
    """
    limit = WARNING if include_warnings else ERROR
    return {
        name: [str(d) for d in diagnostics if d.severity <= limit]
        for name, diagnostics in check_flux_diagnostics(texts, timeout=timeout).items()
    }


# --- Grafana variables --------------------------------------------------------

#: Literals for the fields of Grafana's injected ``v`` record (Flux source text).
GRAFANA_V_LITERALS: dict[str, str] = {
    "timeRangeStart": "2024-01-01T00:00:00Z",
    "timeRangeStop": "2024-01-01T06:00:00Z",
    "windowPeriod": "1m",
    "defaultBucket": '"fleetpulse"',
    "organization": '"fleetpulse"',
}

#: Values for Grafana's global variables, valid both as Flux literals and as text.
GRAFANA_BUILTIN_VALUES: dict[str, str] = {
    "__interval": "1m",
    "__rate_interval": "1m",
    "__interval_ms": "60000",
    "__range": "6h",
    "__range_s": "21600",
    "__range_ms": "21600000",
    "__from": "1704067200000",
    "__to": "1704088800000",
}

_VAR_RE = re.compile(
    r"\$\{(?P<braced>[A-Za-z_]\w*)(?::[^}]*)?\}"
    r"|\$(?P<plain>[A-Za-z_]\w*)"
    r"|\[\[(?P<bracket>[A-Za-z_]\w*)(?::\w+)?\]\]"
)
_V_FIELD_RE = re.compile(r"(?<![\w.])v\.(?P<field>[A-Za-z_]\w*)\b")
# After one of these the next "/" is a division, otherwise it opens a regex literal.
_OPERAND_END = re.compile(r"[\w)\]}\".]")


def substitute_grafana_vars(text: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace what Grafana injects into a Flux query with valid literals.

    * ``v.timeRangeStart`` / ``v.timeRangeStop`` -> RFC 3339 time literals,
      ``v.windowPeriod`` -> ``1m``, ``v.defaultBucket`` / ``v.organization`` ->
      ``"fleetpulse"``; other ``v.`` fields are left for the service to report.
    * dashboard variables ``$name``, ``${name}``, ``${name:format}``, ``[[name]]``:
      inside a string or regex literal they become the value's text, elsewhere a
      string literal. The value is ``variables[name]``; with ``variables=None``
      every such variable is replaced by its own name, with a mapping only the
      names it holds (plus Grafana's ``__interval``-style globals) are replaced,
      so a misspelt variable stays in the text and the service reports it.
    * globals (``$__interval``, ``${__from}``, ...) become ``1m``, ``60000``, ...

    Flux's own string interpolation ``"${r.host}"`` is kept (its expression is
    substituted too). Values must not contain newlines, so line numbers stay valid.
    """
    return _Substituter(text, variables).code(0, len(text))


class _Substituter:
    def __init__(self, text: str, variables: Mapping[str, str] | None) -> None:
        self.text = text
        self.variables = variables

    def _value(self, name: str) -> str | None:
        if name in GRAFANA_BUILTIN_VALUES:
            return GRAFANA_BUILTIN_VALUES[name]
        if self.variables is None:
            return name
        return self.variables.get(name)

    def _variable(self, pos: int, end: int) -> tuple[str, int, bool] | None:
        """(value, end of the reference, whether it is a Grafana global) or None."""
        match = _VAR_RE.match(self.text, pos, end)
        if match is None:
            return None
        name = match.group("braced") or match.group("plain") or match.group("bracket")
        value = self._value(name)
        return None if value is None else (value, match.end(), name in GRAFANA_BUILTIN_VALUES)

    @staticmethod
    def _escape(value: str) -> str:
        """The text of a Flux string literal holding value."""
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")

    def _string_literal(self, value: str) -> str:
        return f'"{self._escape(value)}"'

    def code(self, pos: int, end: int) -> str:
        text, out = self.text, []
        last = ""  # last significant character emitted, to tell "/" regex from division
        while pos < end:
            ch = text[pos]
            if text.startswith("//", pos):
                stop = text.find("\n", pos, end)
                stop = end if stop < 0 else stop
                out.append(text[pos:stop])
                pos = stop
                continue
            if ch == '"':
                piece, pos = self.string(pos, end)
                out.append(piece)
                last = '"'
                continue
            if ch == "/" and not _OPERAND_END.match(last):
                piece, pos = self.regex(pos, end)
                out.append(piece)
                last = ")"  # a regex literal is an operand
                continue
            if ch in "$[":
                found = self._variable(pos, end)
                if found is not None:
                    value, pos, grafana_global = found
                    out.append(value if grafana_global else self._string_literal(value))
                    last = ")"
                    continue
            if ch == "v":
                match = _V_FIELD_RE.match(text, pos, end)
                if match is not None and match.group("field") in GRAFANA_V_LITERALS:
                    out.append(GRAFANA_V_LITERALS[match.group("field")])
                    pos = match.end()
                    last = ")"
                    continue
            out.append(ch)
            if not ch.isspace():
                last = ch
            pos += 1
        return "".join(out)

    def string(self, pos: int, end: int) -> tuple[str, int]:
        text, out = self.text, ['"']
        pos += 1
        while pos < end:
            ch = text[pos]
            if ch == "\\":
                out.append(text[pos : pos + 2])
                pos += 2
                continue
            if ch == '"':
                out.append('"')
                return "".join(out), pos + 1
            if ch in "$[":
                found = self._variable(pos, end)
                if found is not None:
                    value, pos, _ = found
                    out.append(self._escape(value))
                    continue
                if text.startswith("${", pos):  # Flux interpolation: substitute inside
                    close = self._closing_brace(pos + 2, end)
                    out.append("${" + self.code(pos + 2, close) + "}")
                    pos = close + 1
                    continue
            out.append(ch)
            pos += 1
        return "".join(out), pos

    def regex(self, pos: int, end: int) -> tuple[str, int]:
        text, out = self.text, ["/"]
        pos += 1
        while pos < end:
            ch = text[pos]
            if ch == "\\":
                out.append(text[pos : pos + 2])
                pos += 2
                continue
            if ch == "/":
                out.append("/")
                return "".join(out), pos + 1
            if ch == "\n":
                break
            if ch in "$[":
                found = self._variable(pos, end)
                if found is not None:
                    value, pos, _ = found
                    out.append(value.replace("/", "\\/"))
                    continue
            out.append(ch)
            pos += 1
        return "".join(out), pos

    def _closing_brace(self, pos: int, end: int) -> int:
        depth = 1
        while pos < end:
            ch = self.text[pos]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return pos
            elif ch == '"':
                _, pos = self.string(pos, end)
                continue
            pos += 1
        return end
