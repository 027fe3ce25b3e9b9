"""The GitHub Actions workflow: the suite on Linux, the exporter on macOS and Windows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetpulse.core import catalog
from tests.deploy import tools
from tests.deploy.cli import REPO, invocation, unknown_flags

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on"
    assert True in data or "on" in data
    return data


def test_workflow_follows_the_github_workflow_schema() -> None:
    """SchemaStore's workflow schema (vendored in check-jsonschema; actionlint cannot be
    installed here), and every job has a timeout (check-jsonschema's own rule)."""
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        done = tools.run("check-jsonschema", ["--builtin-schema", schema, str(WORKFLOW)])
        assert done.returncode == 0, tools.report(done)


def test_workflow_schema_check_refuses_a_misspelt_key(tmp_path: Path) -> None:
    text = WORKFLOW.read_text()
    assert "    timeout-minutes: 20\n" in text
    broken = tmp_path / "ci.yml"
    broken.write_text(text.replace("    timeout-minutes: 20\n", "    timeoutminutes: 20\n"))
    done = tools.run(
        "check-jsonschema", ["--builtin-schema", "vendor.github-workflows", str(broken)]
    )
    assert done.returncode != 0 and "timeoutminutes" in done.stdout, tools.report(done)


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_linux_job_runs_the_ci_script_as_root_with_every_part(workflow: dict[str, Any]) -> None:
    linux = workflow["jobs"]["linux"]
    assert linux["runs-on"] == "ubuntu-latest"
    # .ci/start-docker runs dockerd: root and a privileged container
    assert linux["container"]["image"].startswith("debian:")
    assert "--privileged" in linux["container"]["options"]
    assert re.search(r"^bash \.ci/run$", run_lines(linux), re.M)
    assert (REPO / ".ci" / "run").is_file()
    # the suite's systemd checks need systemd-analyze
    assert "systemd" in run_lines(linux).split()


def test_exporter_job_covers_macos_and_windows_on_python_3_11_to_3_13(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["exporter"]
    matrix = job["strategy"]["matrix"]
    assert set(matrix["os"]) == {"macos-latest", "windows-latest"}
    assert matrix["python"] == ["3.11", "3.12", "3.13"]
    setup = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
    assert setup and setup[0]["with"]["python-version"] == "${{ matrix.python }}"
    assert re.search(r"pytest tests/exporter -m \"not docker\"", run_lines(job))
    assert "FLEETPULSE_REQUIRE_ALL" not in str(job.get("env", {}))


def test_exporter_smoke_step_names_metrics_of_the_catalog(workflow: dict[str, Any]) -> None:
    text = run_lines(workflow["jobs"]["exporter"])
    smoke = re.search(r"python -m fleetpulse (exporter [^>\n]*)", text)
    assert smoke, text
    call = invocation(".github/workflows/ci.yml", smoke.group(1).split())
    assert "--once" in call.flags() and not unknown_flags(call)
    names = re.search(r"for name in (.*?); do", text, re.S)
    assert names
    wanted = names.group(1).replace("\\", " ").split()
    assert wanted and set(wanted) <= set(catalog.BY_NAME), set(wanted) - set(catalog.BY_NAME)


def test_docker_marker_deselects_every_engine_test_of_the_exporter() -> None:
    """On macOS and Windows `-m "not docker"` must leave no test that needs the engine."""
    markers = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"][
        "markers"
    ]
    assert any(m.startswith("docker:") for m in markers)
    for path in sorted((REPO / "tests" / "exporter").glob("test_*.py")):
        source = path.read_text()
        if "engine_or_skip" in source or "private_engine" in source:
            assert "pytestmark = pytest.mark.docker" in source, path.name
