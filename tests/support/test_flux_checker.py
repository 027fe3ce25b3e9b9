"""The Flux checker (tests/support/flux.py) reports real mistakes and passes good Flux.

The checker is the official Flux language service, flux-lsp 0.8.40 compiled to
WebAssembly (npm ``@influxdata/flux-lsp-browser``), driven over LSP by
``tools/fluxcheck/check.mjs``. Each text is parsed and semantically analysed
(type inference against the bundled stdlib signatures); diagnostics come back
with 1-based line and column. What this version does and does not report
(each point is pinned by a test below, so an upgrade that changes it shows up):

Reported (severity error):
  * syntax: unbalanced ``(``/``{`` ("expected RPAREN, got EOF", at the opening
    call), a stray ``)`` ("invalid statement: )"), dangling ``|>``, bad
    operators, unterminated strings, ``;``, a bare ``$host``;
  * undefined identifiers: unknown functions (``frobnicate()``), misspelt stdlib
    functions (``rnge``), ``aggregateWindow(fn: average)``, Grafana's ``v`` when
    not substituted, identifiers in string interpolation (``"${host}"``);
  * imports: an unknown package (``import "nosuchpkg"`` -> "invalid import path
    nosuchpkg") and an unknown member of a known package (``strings.frob`` ->
    "record is missing label frob");
  * call arguments: unknown named argument (``range(begin: -1h)`` -> "found
    unexpected argument begin (Expected one of `start` or `stop`)"), missing
    required argument ("missing required argument start"), a missing pipe input;
  * type errors where the stdlib signature is concrete: ``aggregateWindow(every:
    "1h")``, ``keep(columns: "host")``, ``limit(n: 1.5)``, ``sort(desc: "yes")``,
    ``from(bucket: 1)``, ``fn`` of the wrong shape; operators on literals
    (``1 + "a"``, ``now() - 1h``); int/float mixing inside ``map`` functions;
  * invalid regex literals, reassigning a variable.

Not reported:
  * column names and column types of table rows (``r.nosuchcolumn``, or using
    ``r._value`` as both a string and a number): rows are open records;
  * ``range(start:, stop:)`` argument types: ``start: "yesterday"``, ``5`` or
    ``true`` pass (the signature leaves them unconstrained);
  * the contents of ``option task``: ``every: 3600``, ``name: 1`` or a misspelt
    ``evry`` all pass; only InfluxDB rejects them when the task is created;
  * ``from()`` without ``bucket``/``bucketID`` and ``to()`` with both (runtime
    checks), unknown options (``option foo = 1`` declares one), unused imports,
    anything about buckets, organisations or data that exist only at run time.

Warnings and hints: the service warns "Avoid using `task` as an identifier name"
on every ``option task = {...}`` — the declaration every InfluxDB task needs — and
likewise for ``v`` and ``params``; it adds hints for ``experimental`` and
``contrib`` packages. ``check_flux`` therefore returns errors only unless
``include_warnings=True``, and never hints.

Grafana: ``v.timeRangeStart`` and friends are "undefined identifier v";
a preamble declaring ``v`` draws the warning above and shifts line numbers, so
``substitute_grafana_vars`` replaces ``v.*``, ``$var``/``${var}``/``[[var]]``
and Grafana's ``$__interval``-style globals with literals in place.
"""

from __future__ import annotations

import pytest

from tests.support.flux import (
    ERROR,
    WARNING,
    check_flux,
    check_flux_diagnostics,
    flux_checker_available,
    require_flux_checker,
    substitute_grafana_vars,
)

pytestmark = pytest.mark.flux

DOWNSAMPLING_TASK = """\
option task = {name: "x", every: 1h, offset: 5m}

from(bucket: "fleetpulse")
    |> range(start: -task.every)
    |> filter(fn: (r) => r._measurement == "cpu")
    |> aggregateWindow(every: 1h, fn: mean)
    |> to(bucket: "fleetpulse_1h")
"""

UNBALANCED_PAREN = """\
from(bucket: "fleetpulse")
    |> range(start: -1h)
    |> filter(fn: (r) => r._measurement == "cpu"
    |> mean()
"""

GRAFANA_QUERY = """\
from(bucket: v.defaultBucket)
    |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
    |> filter(fn: (r) => r._measurement == "host_cpu_usage_percent")
    |> filter(fn: (r) => r.host == "${host}" and r.job =~ /^${job:regex}$/)
    |> filter(fn: (r) => r.mountpoint == $mountpoint or r.mountpoint == [[mountpoint]])
    |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)
    |> limit(n: $__interval_ms)
    |> yield(name: "mean over ${__interval}")
"""


@pytest.fixture(autouse=True)
def _flux_checker() -> None:
    require_flux_checker()


def _errors(text: str) -> list[str]:
    return check_flux({"t": text})["t"]


def test_checker_is_available() -> None:
    assert flux_checker_available() is None


def test_valid_downsampling_task_passes() -> None:
    assert check_flux({"task": DOWNSAMPLING_TASK}) == {"task": []}


def test_option_task_draws_only_a_warning_which_is_filtered_by_default() -> None:
    diagnostics = check_flux_diagnostics({"task": DOWNSAMPLING_TASK})["task"]
    assert [(d.line, d.severity) for d in diagnostics] == [(1, WARNING)]
    assert "Avoid using `task`" in diagnostics[0].message
    warned = check_flux({"task": DOWNSAMPLING_TASK}, include_warnings=True)["task"]
    assert warned == [f"1:8: warning: {diagnostics[0].message}"]


def test_unbalanced_paren_is_a_syntax_error_with_its_line() -> None:
    errors = _errors(UNBALANCED_PAREN)
    assert "3:8: expected RPAREN, got EOF" in errors


def test_stray_closing_paren_is_reported() -> None:
    errors = _errors('from(bucket: "b")\n    |> range(start: -1h))\n')
    assert errors == ["2:25: invalid statement: )"]


def test_unknown_function_is_reported() -> None:
    errors = _errors('from(bucket: "b")\n    |> range(start: -1h)\n    |> frobnicate()\n')
    assert errors == ["3:8: undefined identifier frobnicate"]


def test_wrong_named_argument_is_reported() -> None:
    errors = _errors('from(bucket: "b") |> range(begin: -1h)')
    assert "1:35: found unexpected argument begin (Expected one of `start` or `stop`)" in errors
    assert "1:22: missing required argument start" in errors


def test_argument_type_errors_are_reported() -> None:
    result = check_flux(
        {
            "every": 'from(bucket: "b") |> range(start: -1h) |> aggregateWindow(every: "1h", fn: mean)',
            "columns": 'from(bucket: "b") |> range(start: -1h) |> keep(columns: "host")',
            "fn": 'from(bucket: "b") |> range(start: -1h) |> aggregateWindow(every: 1h, fn: 3)',
            "literal": 'x = 1 + "a"',
            "map": 'from(bucket: "b") |> range(start: -1h)\n    |> map(fn: (r) => ({r with _value: r._value * 2.0 + 1}))',
        }
    )
    assert result["every"] == ["1:66: expected duration but found string (argument every)"]
    assert result["columns"] == [
        "1:57: expected [string] (array) but found string (argument columns)"
    ]
    assert len(result["fn"]) == 1
    assert "(argument fn)" in result["fn"][0]
    assert result["literal"] == ["1:9: expected int but found string"]
    assert result["map"] == ["2:57: expected float but found int"]


def test_imports_are_checked() -> None:
    result = check_flux(
        {
            "unknown package": 'import "nosuchpkg"\nnosuchpkg.foo()',
            "unknown member": 'import "strings"\nx = strings.frob(v: "a")',
            "good": 'import "strings"\nx = strings.toUpper(v: "a")',
        }
    )
    assert result["unknown package"] == ["1:1: invalid import path nosuchpkg"]
    assert result["unknown member"] == ["2:5: record is missing label frob"]
    assert result["good"] == []


def test_errors_keep_their_lines_across_a_multi_line_text() -> None:
    errors = _errors('a = from(bucket: "b")\n  |> rnge(start: -1h)\nb = 1 + "x"\n')
    assert errors == ["2:6: undefined identifier rnge", "3:9: expected int but found string"]


def test_columns_count_characters() -> None:
    assert _errors('x = "é😀" + 1') == ["1:12: expected string but found int"]


def test_texts_are_checked_independently() -> None:
    result = check_flux({"defines": "a = 1", "uses": "x = a + 1"})
    assert result == {"defines": [], "uses": ["1:5: undefined identifier a"]}


def test_blind_spots_are_as_documented() -> None:
    """Mistakes this service version does not report; see the module docstring."""
    result = check_flux(
        {
            "unknown column": 'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r.nosuchcolumn == "x")',
            "column types": 'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r._value > "a" and r._value < 3)',
            "range type": 'from(bucket: "b") |> range(start: "yesterday")',
            "task fields": 'option task = {name: 1, evry: 3600}\nfrom(bucket: "b") |> range(start: -1h)',
            "from without bucket": "from() |> range(start: -1h)",
        }
    )
    assert result == {name: [] for name in result}


def test_many_texts_in_one_batch() -> None:
    texts = {f"good {i}": DOWNSAMPLING_TASK for i in range(25)}
    texts |= {f"bad {i}": "x = frobnicate()" for i in range(25)}
    result = check_flux(texts)
    assert list(result) == list(texts)
    assert all(result[f"good {i}"] == [] for i in range(25))
    assert all(result[f"bad {i}"] == ["1:5: undefined identifier frobnicate"] for i in range(25))


def test_grafana_variables_are_undefined_without_substitution() -> None:
    diagnostics = check_flux_diagnostics({"q": GRAFANA_QUERY})["q"]
    undefined = {d.message for d in diagnostics if d.severity == ERROR}
    assert "undefined identifier v" in undefined
    assert "undefined identifier host" in undefined


def test_substituted_grafana_query_passes() -> None:
    assert check_flux({"q": substitute_grafana_vars(GRAFANA_QUERY)}) == {"q": []}


def test_substitution_keeps_lines_and_flux_interpolation() -> None:
    text = substitute_grafana_vars(GRAFANA_QUERY)
    assert text.count("\n") == GRAFANA_QUERY.count("\n")
    assert "range(start: 2024-01-01T00:00:00Z, stop: 2024-01-01T06:00:00Z)" in text
    assert 'r.host == "host" and r.job =~ /^job$/' in text
    assert 'r.mountpoint == "mountpoint" or r.mountpoint == "mountpoint"' in text
    assert "limit(n: 60000)" in text
    assert 'yield(name: "mean over 1m")' in text
    flux_interpolation = 'x = "${r.host}: ${v.windowPeriod}" // $host'
    assert substitute_grafana_vars(flux_interpolation) == 'x = "${r.host}: ${1m}" // $host'


def test_substitution_with_known_variables_leaves_misspelt_ones_to_the_checker() -> None:
    query = 'from(bucket: "b") |> range(start: -1h) |> filter(fn: (r) => r.host == "${hots}")'
    assert substitute_grafana_vars(query, {"host": "web-1"}) == query
    assert _errors(substitute_grafana_vars(query, {"host": "web-1"})) == [
        "1:74: undefined identifier hots"
    ]
    fixed = query.replace("hots", "host")
    assert 'r.host == "web-1"' in substitute_grafana_vars(fixed, {"host": "web-1"})
    assert _errors(substitute_grafana_vars(fixed, {"host": "web-1"})) == []
