"""YAML reading with file:line (`fleetpulse/core/yamlfile.py`): every problem at once, each
with its file, line and key; `${VAR}` in string scalars; secrets from files; durations,
intervals and timeouts as Prometheus reads them; lists and maps of the wrong type."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetpulse.core.durations import format_duration
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.yamlfile import Interval, MapView, Node, Reader, expand_env, load_yaml

CONFIG = "fleetpulse.yaml"


def view_of(path: Path, text: str, base: Path | None = None) -> MapView:
    """The top mapping of `text` written to `path`, read as a loader reads it."""
    path.write_text(text, encoding="utf-8")
    return MapView(Reader(str(path), base), load_yaml(path))


def view_of_text(text: str, file: str = CONFIG) -> MapView:
    """The same without a file on disk: for paths that never touch the folder."""
    return MapView(Reader(file), load_yaml(Path(file), text))


def problems_of(view: MapView) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        view.reader.raise_if_problems()
    return [str(problem) for problem in caught.value.problems]


def load_problems(path: Path, text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path)
    return [str(problem) for problem in caught.value.problems]


# --- load_yaml: lines kept, bad YAML named by file and line ---------------------------------


def test_a_mapping_value_carries_its_keys_line_and_a_list_item_its_own() -> None:
    root = load_yaml(
        Path(CONFIG),
        "# a comment\nscrape:\n  interval: 15s\n\ntargets:\n  - url: http://a\n  - url: http://b\n",
    )
    assert root.line == 2
    scrape = root.value["scrape"]
    assert (scrape.line, scrape.value["interval"]) == (2, Node("15s", 3))
    targets = root.value["targets"]
    assert targets.line == 5
    assert [item.line for item in targets.value] == [6, 7]
    assert targets.value[1].value["url"] == Node("http://b", 7)


def test_an_empty_file_is_an_empty_mapping_on_line_1() -> None:
    assert load_yaml(Path(CONFIG), "") == Node({}, 1)
    assert load_yaml(Path(CONFIG), "# only a comment\n") == Node({}, 1)


def test_keys_that_are_not_strings_become_strings() -> None:
    root = load_yaml(Path(CONFIG), "1: x\ntrue: y\n")
    assert root.value == {"1": Node("x", 1), "True": Node("y", 2)}


def test_merge_keys_are_flattened_with_their_anchors_lines() -> None:
    root = load_yaml(Path(CONFIG), "base: &b {retries: 3}\nsink:\n  <<: *b\n  url: x\n")
    assert root.value["sink"].value == {"retries": Node(3, 1), "url": Node("x", 4)}


def test_every_duplicate_key_is_reported_at_once_with_its_line_and_path(tmp_path: Path) -> None:
    path = tmp_path / CONFIG
    assert load_problems(path, "a: 1\na: 2\nb:\n  c: 1\n  c: 2\n") == [
        f"{path}:2: a: duplicate key",
        f"{path}:5: b.c: duplicate key",
    ]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        (
            "a: [1, 2\nb: 3\n",
            2,
            "while parsing a flow sequence; expected ',' or ']', but got ':'",
        ),
        # an unclosed bracket at the end of the file points at the bracket's line
        (
            "x: 1\na: [1, 2\n\n\n",
            2,
            "while parsing a flow sequence; expected ',' or ']', but got '<stream end>'",
        ),
        # "at the end of the stream" points past the text: the last line is shown
        (
            "x: 1\ny: 2\nz: 'open\n\n\n",
            3,
            "while scanning a quoted scalar; found unexpected end of stream",
        ),
        (
            "a:\n\tb: 1\n",
            2,
            "while scanning for the next token; found character '\\t' that cannot start any token",
        ),
        (
            "a: 1\n---\nb: 2\n",
            2,
            "expected a single document in the stream; but found another document",
        ),
        ("a: 1\nb: \x07\n", 2, "special characters are not allowed"),
    ],
)
def test_invalid_yaml_is_one_problem_with_file_and_line(
    tmp_path: Path, text: str, line: int, reason: str
) -> None:
    path = tmp_path / CONFIG
    assert load_problems(path, text) == [f"{path}:{line}: invalid YAML: {reason}"]


def test_a_missing_or_binary_file_is_named_without_a_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as caught:
        load_yaml(missing)
    assert str(caught.value) == f"{missing}: cannot read: No such file or directory"
    binary = tmp_path / "binary.yaml"
    assert load_problems(binary, b"a: \xff\n") == [f"{binary}: not valid UTF-8"]


# plain keys (a bare `null` or `yes` would be read as another type, then turned into text)
KEY = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).map(lambda k: f"key_{k}")
FILLERS = st.lists(st.sampled_from(["", "# note", "   "]), max_size=3)


@given(st.lists(st.tuples(KEY, FILLERS), unique_by=lambda entry: entry[0], max_size=20))
def test_each_key_is_found_on_the_line_it_was_written_on(
    entries: list[tuple[str, list[str]]],
) -> None:
    keys = [key for key, _ in entries]
    lines: list[str] = []
    expected: dict[str, int] = {}
    for i, (key, before) in enumerate(entries):
        lines += before  # blank and comment lines in between
        lines.append(f"{key}: {i}")
        expected[key] = len(lines)
    root = load_yaml(Path(CONFIG), "\n".join(lines) + "\n")
    assert {key: node.line for key, node in root.value.items()} == expected
    assert {key: node.value for key, node in root.value.items()} == {
        key: i for i, key in enumerate(keys)
    }


# --- MapView: every problem at once, each with file:line and key ----------------------------


def test_every_mistake_is_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    path = tmp_path / CONFIG
    view = view_of(
        path,
        "retries: lots\n"
        "enabled: 1\n"
        "listen:\n"
        "  - 127.0.0.1\n"
        "mode: fast\n"
        "workers: -1\n"
        "ratio: '0.5'\n"
        "colour: blue\n",
    )
    view.check_keys({"retries", "enabled", "listen", "mode", "workers", "ratio"})
    # read out of order: the report is still in file order
    assert view.number("ratio", 1.0) == 1.0
    assert view.choice("mode", "safe", ("safe", "strict")) == "safe"
    assert view.integer("workers", 4, minimum=1) == 4
    assert view.section("listen").entries == {}
    assert view.flag("enabled", False) is False
    assert view.integer("retries", 3) == 3
    assert problems_of(view) == [
        f"{path}:1: retries: expected a whole number; got a string",
        f"{path}:2: enabled: expected true or false; got a number",
        f"{path}:3: listen: expected a mapping, got a list",
        f"{path}:5: mode: expected one of safe, strict; got 'fast'",
        f"{path}:6: workers: expected a whole number; got -1, which is below 1",
        f"{path}:7: ratio: expected a number; got a string",
        f"{path}:8: colour: unknown key; expected one of: enabled, listen, mode, ratio, "
        "retries, workers",
    ]


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_one_problem_per_broken_key_and_none_for_the_others(broken: list[bool]) -> None:
    text = "".join(f"k{i}: {'many' if bad else i}\n" for i, bad in enumerate(broken))
    view = view_of_text(text)
    values = [view.integer(f"k{i}", -1) for i in range(len(broken))]
    assert values == [-1 if bad else i for i, bad in enumerate(broken)]
    expected = [
        f"{CONFIG}:{i + 1}: k{i}: expected a whole number; got a string"
        for i, bad in enumerate(broken)
        if bad
    ]
    if expected:
        assert problems_of(view) == expected
    else:
        view.reader.raise_if_problems()


def test_nested_sections_name_the_full_key_path() -> None:
    view = view_of_text("storage:\n  influxdb:\n    timeout: soon\n")
    influx = view.section("storage").section("influxdb")
    assert influx.duration("timeout", 10.0) == 10.0
    assert problems_of(view) == [
        f"{CONFIG}:3: storage.influxdb.timeout: expected a duration like 15s, 5m, 48h or 30d, "
        "got 'soon'"
    ]


def test_a_missing_or_null_key_gives_the_default_without_a_problem() -> None:
    view = view_of_text("retries: ~\nname:\n")
    assert view.integer("retries", 3) == 3
    assert view.text("name", "x") == "x"
    assert view.number("absent", 1.5) == 1.5
    assert view.duration("absent", 15.0) == 15.0
    assert view.flag("absent", True) is True
    assert view.items("absent") == []
    assert view.text_list("retries") == []
    assert view.section("absent").entries == {}
    view.reader.raise_if_problems()


# --- lists and maps of the wrong type -------------------------------------------------------


def test_a_top_level_that_is_not_a_mapping_is_named_as_such() -> None:
    view = view_of_text("- a\n- b\n")
    assert problems_of(view) == [f"{CONFIG}:1: (top level): expected a mapping, got a list"]
    view = view_of_text("just text\n")
    assert problems_of(view) == [f"{CONFIG}:1: (top level): expected a mapping, got a string"]


@pytest.mark.parametrize(
    ("value", "got"),
    [("[a, b]", "a list"), ("text", "a string"), ("3", "a number"), ("true", "a boolean")],
)
def test_a_section_that_is_not_a_mapping_says_what_it_got(value: str, got: str) -> None:
    view = view_of_text(f"top: 1\nauth: {value}\n")
    assert view.section("auth").text("username") == ""
    assert problems_of(view) == [f"{CONFIG}:2: auth: expected a mapping, got {got}"]


def test_a_list_that_is_not_a_list_and_items_that_are_not_strings() -> None:
    view = view_of_text("rules: {a: 1}\nfiles:\n  - a.yaml\n  - 7\n  - {b: 1}\n  - b.yaml\n")
    assert view.items("rules") == []
    assert view.text_list("files") == ["a.yaml", "b.yaml"]
    assert problems_of(view) == [
        f"{CONFIG}:1: rules: expected a list, got a mapping",
        f"{CONFIG}:4: files[1]: expected a string, got a number",
        f"{CONFIG}:5: files[2]: expected a string, got a mapping",
    ]


def test_a_text_map_takes_scalars_and_names_the_rest() -> None:
    view = view_of_text("labels:\n  team: ops\n  tier: 2\n  owners: [a, b]\n")
    assert view.text_map("labels") == {"team": "ops", "tier": "2", "owners": ""}
    assert problems_of(view) == [f"{CONFIG}:4: labels.owners: expected a string; got a list"]


# --- ${VAR} and ${VAR:-default}, in string scalars only --------------------------------------


def test_variables_and_defaults_expand_in_text_and_in_lists(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FP_HOST", "db-1")
    monkeypatch.delenv("FP_UNSET", raising=False)
    view = view_of_text(
        "url: http://${FP_HOST}:9184/metrics\n"
        "job: ${FP_UNSET:-fleetpulse}\n"
        "empty: ${FP_UNSET:-}\n"
        "literal: $FP_HOST and ${not-a-name}\n"
        "hosts:\n  - ${FP_HOST}\n  - ${FP_UNSET:-web-1}\n"
    )
    assert view.text("url") == "http://db-1:9184/metrics"
    assert view.text("job") == "fleetpulse"
    assert view.text("empty") == ""
    assert view.text("literal") == "$FP_HOST and ${not-a-name}"
    assert view.text_list("hosts") == ["db-1", "web-1"]
    view.reader.raise_if_problems()


def test_a_set_variable_wins_over_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_JOB", "")
    assert view_of_text("job: ${FP_JOB:-fleetpulse}\n").text("job") == ""


def test_an_unset_variable_is_a_problem_that_suggests_a_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FP_TOKEN", raising=False)
    view = view_of_text("token: ${FP_TOKEN}\nfiles:\n  - ${FP_TOKEN}/a.yaml\n")
    assert view.text("token", "kept") == "kept"
    assert view.text_list("files") == []
    assert problems_of(view) == [
        f"{CONFIG}:1: token: expected a string; environment variable FP_TOKEN is not set "
        "(use ${FP_TOKEN:-default} for a default)",
        f"{CONFIG}:3: files[0]: environment variable FP_TOKEN is not set",
    ]


def test_keys_numbers_and_flags_are_never_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_PORT", "9184")
    monkeypatch.setenv("FP_ON", "true")
    view = view_of_text("labels:\n  ${FP_PORT}: x\nport: ${FP_PORT}\nenabled: ${FP_ON}\n")
    assert view.text_map("labels") == {"${FP_PORT}": "x"}
    assert view.integer("port", 1) == 1
    assert view.flag("enabled", False) is False
    assert problems_of(view) == [
        f"{CONFIG}:3: port: expected a whole number; got a string",
        f"{CONFIG}:4: enabled: expected true or false; got a string",
    ]


ENV_VALUES = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
DEFAULTS = st.text(st.characters(codec="utf-8", exclude_characters="}"))


@given(value=ENV_VALUES, default=DEFAULTS)
def test_a_value_is_substituted_once_as_it_is(value: str, default: str) -> None:
    # a value that itself looks like ${OTHER} is not expanded again
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FP_VALUE", value)
        env.delenv("FP_NONE", raising=False)
        assert expand_env("<${FP_VALUE}>") == f"<{value}>"
        assert expand_env("<${FP_VALUE:-" + default + "}>") == f"<{value}>"
        assert expand_env("<${FP_NONE:-" + default + "}>") == f"<{default}>"


# --- secrets from *_file, resolved against the config folder --------------------------------


def test_a_secret_file_resolves_against_the_config_folder_not_the_working_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = tmp_path / "etc"
    (config_dir / "secrets").mkdir(parents=True)
    (config_dir / "secrets" / "token").write_text("s3cret\n\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    view = view_of(config_dir / CONFIG, "auth:\n  bearer_token_file: secrets/token\n")
    assert view.section("auth").secret("bearer_token") == "s3cret"
    view.reader.raise_if_problems()


def test_a_reader_base_moves_where_relative_secret_files_resolve(tmp_path: Path) -> None:
    # a file_sd file's relative paths resolve where the main config is, as in Prometheus
    (tmp_path / "token").write_text("from-the-base")
    sd_dir = tmp_path / "targets"
    sd_dir.mkdir()
    view = view_of(sd_dir / "web.yaml", "bearer_token_file: token\n", base=tmp_path)
    assert view.secret("bearer_token") == "from-the-base"


def test_a_secret_file_path_may_use_variables_and_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("FP_SECRETS", str(tmp_path))
    (tmp_path / "pw").write_text("hunter2")
    view = view_of_text("a:\n  password_file: ${FP_SECRETS}/pw\nb:\n  password_file: ~/pw\n")
    assert view.section("a").secret("password") == "hunter2"
    assert view.section("b").secret("password") == "hunter2"


def test_a_secret_given_inline_is_used_as_it_is() -> None:
    view = view_of_text("auth:\n  password: '  pa:ss  '\n")
    assert view.section("auth").secret("password") == "  pa:ss  "
    assert view.section("auth").secret("token") == ""


def test_a_secret_set_twice_or_an_unreadable_file_names_the_path_never_the_secret(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("from-file")
    path = tmp_path / CONFIG
    view = view_of(
        path,
        "a:\n  token: inline-secret\n  token_file: token\nb:\n  token_file: missing\n",
    )
    assert view.section("a").secret("token") == "from-file"
    assert view.section("b").secret("token") == ""
    problems = problems_of(view)
    assert problems == [
        f"{path}:3: a.token_file: set either token or token_file, not both",
        f"{path}:5: b.token_file: cannot read the secret file {tmp_path / 'missing'}: "
        "No such file or directory",
    ]
    assert "inline-secret" not in "\n".join(problems)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15s", 15.0), ("1h30m", 5400.0), ("500ms", 0.5), ("0", 0.0), ("0s", 0.0), ("2d", 172800.0)],
)
def test_a_duration_reads_prometheus_units(text: str, seconds: float) -> None:
    assert view_of_text(f"every: {text}\n").duration("every", -1.0) == seconds


def test_a_duration_can_come_from_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_EVERY", "1m")
    monkeypatch.delenv("FP_NONE", raising=False)
    view = view_of_text("a: ${FP_EVERY}\nb: ${FP_NONE:-5m}\n")
    assert (view.duration("a", 0), view.duration("b", 0)) == (60.0, 300.0)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15", "got the bare number 15; add a unit, e.g. 15s"),
        ("1.5", "got a number"),
        ("true", "got a boolean"),
        ("[15s]", "got a list"),
    ],
)
def test_a_duration_without_a_unit_or_of_another_type_is_refused(value: str, message: str) -> None:
    view = view_of_text(f"every: {value}\n")
    assert view.duration("every", 30.0) == 30.0
    assert problems_of(view) == [
        f"{CONFIG}:1: every: expected a duration like 15s, 5m, 48h or 30d; {message}"
    ]


def test_a_positive_duration_refuses_zero_and_keeps_the_default() -> None:
    view = view_of_text("retention: 0s\n")
    assert view.positive_duration("retention", 7.0) == 7.0
    assert view.positive_duration("absent", 9.0) == 9.0
    assert problems_of(view) == [f"{CONFIG}:1: retention: expected a duration greater than 0"]


@given(st.integers(min_value=0, max_value=10**12))
def test_every_formatted_duration_reads_back(ms: int) -> None:
    seconds = ms / 1000
    view = view_of_text(f"every: {format_duration(seconds)}\n")
    assert view.duration("every", -1.0) == pytest.approx(seconds)
    view.reader.raise_if_problems()


# --- intervals and timeouts, as Prometheus defaults them ------------------------------------


def test_an_interval_set_in_the_file_names_its_key_value_and_line() -> None:
    scrape = view_of_text("scrape:\n  interval: 10s\n").section("scrape")
    assert scrape.interval("interval", 15.0) == Interval(10.0, "scrape.interval: 10s, line 2")


def test_an_unset_interval_is_the_default_or_the_inherited_one() -> None:
    view = view_of_text("scrape:\n  interval: 30s\ntargets:\n  - url: x\n")
    scrape = view.section("scrape").interval("interval", 15.0)
    target = MapView(view.reader, view.items("targets")[0], "targets[0]")
    # a target without its own interval inherits the scrape's, origin and all
    assert target.interval("interval", scrape) is scrape
    assert view.section("alerting").interval("every", 15.0) == Interval(
        15.0, "alerting.every: 15s by default"
    )


def test_a_zero_interval_is_a_problem_and_the_inherited_value_stays() -> None:
    view = view_of_text("scrape:\n  interval: 0s\n")
    interval = view.section("scrape").interval("interval", Interval(15.0, "default"))
    assert interval.seconds == 15.0
    assert problems_of(view) == [f"{CONFIG}:2: scrape.interval: expected a duration greater than 0"]


def test_an_unset_timeout_is_none_so_the_caller_defaults_to_at_most_the_interval() -> None:
    view = view_of_text("scrape:\n  interval: 5s\n")
    scrape = view.section("scrape")
    assert scrape.timeout("timeout", scrape.interval("interval", 15.0)) is None
    view.reader.raise_if_problems()


def test_a_timeout_up_to_the_interval_is_kept() -> None:
    scrape = view_of_text("scrape:\n  interval: 10s\n  timeout: 10s\n").section("scrape")
    assert scrape.timeout("timeout", scrape.interval("interval", 15.0)) == 10.0


def test_a_timeout_longer_than_the_interval_names_where_the_interval_was_set() -> None:
    view = view_of_text("scrape:\n  interval: 5s\ntargets:\n  - timeout: 8s\n  - timeout: 9s\n")
    scrape = view.section("scrape").interval("interval", 15.0)
    first = MapView(view.reader, view.items("targets")[0], "targets[0]")
    assert first.timeout("timeout", scrape) is None
    unset = view.section("alerting").interval("every", 6.0)
    second = MapView(view.reader, view.items("targets")[1], "targets[1]")
    assert second.timeout("timeout", unset) is None
    assert problems_of(view) == [
        f"{CONFIG}:4: targets[0].timeout: expected a timeout no longer than the interval "
        "(scrape.interval: 5s, line 2)",
        f"{CONFIG}:5: targets[1].timeout: expected a timeout no longer than the interval "
        "(alerting.every: 6s by default)",
    ]


def test_a_zero_timeout_is_a_problem_and_none() -> None:
    view = view_of_text("scrape:\n  timeout: 0s\n")
    interval = Interval(15.0, "scrape.interval: 15s by default")
    assert view.section("scrape").timeout("timeout", interval) is None
    assert problems_of(view) == [f"{CONFIG}:2: scrape.timeout: expected a duration greater than 0"]
