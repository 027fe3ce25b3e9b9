from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetpulse.app.config import Config, load_config
from fleetpulse.core.defaults import BUILTIN_RULES
from fleetpulse.core.errors import ConfigError
from fleetpulse.core.listen import Listen

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleetpulse.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_no_file_gives_the_documented_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.scrape.interval == 15.0
    assert config.api.listen == Listen("127.0.0.1", 9185)
    assert config.retention.raw == 48 * 3600


def test_example_config_loads_and_resolves_paths_beside_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLUX_TOKEN", "t0ken")
    config = load_config(ROOT / "fleetpulse.example.yaml")
    assert config.storage.influxdb.token == "t0ken"
    assert config.scrape.targets[0].host == "web-1"
    assert config.scrape.targets[0].labels == (("role", "game"),)
    assert config.alerting.rules == (BUILTIN_RULES,)  # no rules/ beside it
    assert config.exporter.listen_set is True


def test_unknown_key_names_file_line_and_the_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  interval: 15s\n  tiemout: 5s\n")
    assert problems(path) == [
        f"{path}:3: scrape.tiemout: unknown key; expected one of: body_budget, body_size_limit, "
        "file_sd, file_sd_refresh, interval, label_limit, label_value_length_limit, sample_limit, "
        "targets, timeout"
    ]


def test_bad_duration_names_file_line_key_and_an_example(tmp_path: Path) -> None:
    path = write(tmp_path, "retention:\n  raw: 48h\n  hourly: 30 days\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}:3: retention.hourly: expected a duration like 15s")
    assert "'30 days'" in line


def test_bare_number_duration_asks_for_a_unit(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  interval: 15\n")
    assert problems(path) == [
        f"{path}:2: scrape.interval: expected a duration like 15s, 5m, 48h or 30d; got the bare "
        "number 15; add a unit, e.g. 15s"
    ]


def test_bad_yaml_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  interval: 15s\n  targets: [\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}:3: invalid YAML")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "storage: {backend: postgres}\nscrape:\n  timeout: 1m\n  targets:\n    - url: ftp://x\n"
        "exporter: {listen: nowhere}\napi: {listen: '127.0.0.1:99999'}\n",
    )
    found = problems(path)
    assert [p.split(": ")[1] for p in found] == [
        "storage.backend",
        "scrape.timeout",
        "scrape.targets[0].url",
        "exporter.listen",
        "api.listen",
    ]


def test_wrong_type_says_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  targets: {url: http://a}\nalerting:\n  rules: rules/\n")
    assert problems(path) == [
        f"{path}:2: scrape.targets: expected a list, got a mapping",
        f"{path}:4: alerting.rules: expected a list, got a string",
    ]


def test_env_interpolation_reads_scalars_and_refuses_unset_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FP_TEST_TOKEN", "s3cret")
    monkeypatch.delenv("FP_TEST_UNSET", raising=False)
    path = write(
        tmp_path, "api:\n  token: ${FP_TEST_TOKEN}\n  listen: ${FP_TEST_LISTEN:-127.0.0.1:1}\n"
    )
    config = load_config(path)
    assert config.api.token == "s3cret"
    assert config.api.listen == Listen("127.0.0.1", 1)
    path = write(tmp_path, "api:\n  token: ${FP_TEST_UNSET}\n")
    (line,) = problems(path)
    assert "FP_TEST_UNSET is not set" in line and line.startswith(f"{path}:2: api.token")


def test_secret_from_file_and_its_value_never_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-secret\n")
    path = write(tmp_path, f"api:\n  token_file: {secret}\n")
    config = load_config(path)
    assert config.api.token == "file-secret"
    assert "file-secret" not in repr(config)


def test_unreadable_secret_file_is_a_problem_without_the_secret(tmp_path: Path) -> None:
    path = write(tmp_path, f"api:\n  token_file: {tmp_path / 'missing'}\n")
    (line,) = problems(path)
    assert line.startswith(f"{path}:2: api.token_file: cannot read the secret file")


def test_relative_secret_files_resolve_against_the_config_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "a"
    folder.mkdir()
    for name in ("api", "exporter", "target", "password", "influx"):
        (folder / name).write_text(f"{name}-secret\n")
    path = write(
        folder,
        "api: {token_file: api}\n"
        "exporter:\n  auth: {bearer_token_file: exporter}\n"
        "scrape:\n  targets:\n    - url: http://a/m\n      bearer_token_file: target\n"
        "    - url: http://b/m\n      basic_auth: {username: u, password_file: password}\n"
        "storage:\n  influxdb: {token_file: influx}\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / "a" / path.name)
    assert config.api.token == "api-secret"
    assert config.exporter.auth.bearer_token == "exporter-secret"
    first, second = config.scrape.targets
    assert (first.bearer_token, second.basic_auth_password) == ("target-secret", "password-secret")
    assert config.storage.influxdb.token == "influx-secret"


def test_a_missing_secret_file_is_named_with_its_key_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, "scrape:\n  targets:\n    - url: http://a/m\n      bearer_token_file: nope\n"
    )
    monkeypatch.chdir(tmp_path.parent)
    assert problems(path) == [
        f"{path}:4: scrape.targets[0].bearer_token_file: cannot read the secret file "
        f"{tmp_path.resolve() / 'nope'}: No such file or directory"
    ]


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  interval: 15s\n  interval: 30s\n")
    assert problems(path) == [f"{path}:3: scrape.interval: duplicate key"]


def test_timeout_longer_than_interval_is_refused_on_the_timeouts_line(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  interval: 10s\n  timeout: 20s\n")
    assert problems(path) == [
        f"{path}:3: scrape.timeout: expected a timeout no longer than the interval "
        "(scrape.interval: 10s, line 2)"
    ]
    path = write(tmp_path, "scrape:\n  timeout: 20s\n")
    assert problems(path) == [
        f"{path}:2: scrape.timeout: expected a timeout no longer than the interval "
        "(scrape.interval: 15s by default)"
    ]


@pytest.mark.parametrize(
    ("interval", "timeout"), [("1s", 1.0), ("3s", 3.0), ("10s", 5.0), ("1m", 5.0)]
)
def test_an_unset_timeout_is_the_default_or_the_interval_if_shorter(
    tmp_path: Path, interval: str, timeout: float
) -> None:
    path = write(tmp_path, f"scrape: {{interval: {interval}}}\n")
    assert load_config(path).scrape.timeout == timeout


def test_a_targets_timeout_may_not_be_longer_than_its_interval(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scrape:\n  interval: 10s\n  targets:\n"
        "    - {url: http://a/m, timeout: 20s}\n"
        "    - url: http://b/m\n      interval: 5s\n      timeout: 6s\n"
        "    - {url: http://c/m, interval: 30s, timeout: 20s}\n"
        "    - {url: http://d/m, interval: 1s}\n",
    )
    assert problems(path) == [
        f"{path}:4: scrape.targets[0].timeout: expected a timeout no longer than the interval "
        "(scrape.interval: 10s, line 2)",
        f"{path}:7: scrape.targets[1].timeout: expected a timeout no longer than the interval "
        "(scrape.targets[1].interval: 5s, line 6)",
    ]
    path = write(
        tmp_path,
        "scrape:\n  interval: 10s\n  targets:\n"
        "    - {url: http://c/m, interval: 30s, timeout: 20s}\n"
        "    - {url: http://d/m, interval: 1s}\n",
    )
    slow, fast = load_config(path).scrape.targets
    assert (slow.interval, slow.timeout) == (30.0, 20.0)
    assert (fast.interval, fast.timeout) == (1.0, None)  # min(scrape.timeout, 1s) when resolved


def test_file_sd_refresh_is_a_positive_duration_defaulting_to_5s(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "scrape: {}\n")).scrape.file_sd_refresh == 5.0
    path = write(tmp_path, "scrape:\n  file_sd_refresh: 30s\n")
    assert load_config(path).scrape.file_sd_refresh == 30.0
    path = write(tmp_path, "scrape:\n  file_sd_refresh: 0s\n")
    assert problems(path) == [
        f"{path}:2: scrape.file_sd_refresh: expected a duration greater than 0"
    ]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_any_text_either_loads_or_fails_with_a_located_problem(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems
        assert all(str(p).startswith(str(path)) for p in exc.problems)


def test_scrape_limits_load_with_prometheus_like_defaults(tmp_path: Path) -> None:
    defaults = load_config(None).scrape
    assert (defaults.body_size_limit, defaults.body_budget) == (16 * 2**20, 256 * 2**20)
    assert (defaults.label_limit, defaults.label_value_length_limit) == (64, 2048)
    assert defaults.sample_limit == 0
    path = write(
        tmp_path,
        "scrape:\n  body_size_limit: 2000000\n  body_budget: 50000000\n  label_limit: 30\n"
        "  label_value_length_limit: 512\n  sample_limit: 100000\n  targets:\n"
        "    - {url: http://a/m, body_size_limit: 4000000}\n    - {url: http://b/m}\n",
    )
    scrape = load_config(path).scrape
    assert (scrape.body_size_limit, scrape.body_budget) == (2_000_000, 50_000_000)
    assert (scrape.label_limit, scrape.label_value_length_limit) == (30, 512)
    assert scrape.sample_limit == 100_000
    assert [t.body_size_limit for t in scrape.targets] == [4_000_000, None]


def test_bad_scrape_limits_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scrape:\n  body_size_limit: 100\n  label_limit: 0\n  sample_limit: -1\n"
        "  label_value_length_limit: 1.5\n  targets:\n    - {url: http://a/m, body_size_limit: 10}\n",
    )
    assert problems(path) == [
        f"{path}:2: scrape.body_size_limit: expected a whole number; got 100, which is below 1024",
        f"{path}:3: scrape.label_limit: expected a whole number; got 0, which is below 1",
        f"{path}:4: scrape.sample_limit: expected a whole number; got -1, which is below 0",
        f"{path}:5: scrape.label_value_length_limit: expected a whole number; got a number",
        f"{path}:7: scrape.targets[0].body_size_limit: expected a whole number; got 10, "
        "which is below 1024",
    ]


def test_body_budget_smaller_than_the_body_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "scrape:\n  body_size_limit: 2000000\n  body_budget: 1000000\n")
    assert problems(path) == [
        f"{path}:3: scrape.body_budget: expected at least scrape.body_size_limit (2000000), or no "
        "body that large could ever be read"
    ]


def test_credentials_in_a_target_url_become_basic_auth_and_leave_the_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "scrape:\n  targets:\n    - url: http://alice:s%40cret@web-1:9184/metrics\n",
    )
    (target,) = load_config(path).scrape.targets
    assert target.url == "http://web-1:9184/metrics"
    assert (target.basic_auth_username, target.basic_auth_password) == ("alice", "s@cret")
    assert "cret" not in repr(target)
    path = write(
        tmp_path,
        "scrape:\n  targets:\n    - url: ftp://alice:pw123@web-1/metrics\n"
        "    - url: http://bob:pw456@web-2/metrics\n      basic_auth: {username: bob}\n",
    )
    found = problems(path)
    assert [p.split(": ")[1] for p in found] == ["scrape.targets[0].url", "scrape.targets[1].url"]
    assert "pw123" not in "".join(found) and "either in the URL or in basic_auth" in found[1]


def test_sqlite_flush_interval_is_a_duration_of_at_most_a_minute(tmp_path: Path) -> None:
    assert load_config(None).storage.sqlite.flush_interval == 2.0
    off = write(tmp_path, "storage:\n  sqlite:\n    flush_interval: 0s\n")
    assert load_config(off).storage.sqlite.flush_interval == 0.0
    path = write(tmp_path, "storage:\n  sqlite:\n    flush_interval: 2m\n")
    assert problems(path) == [
        f"{path}:3: storage.sqlite.flush_interval: expected at most 60s: samples wait this long "
        "in memory"
    ]
