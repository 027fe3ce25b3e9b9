"""The wheel build: setuptools' own backend, after console_vendor has put the console's
charting library into the package (pyproject.toml's [build-system] names this module).

Without npm the build still succeeds: the console then says what is missing and how to get
it, and everything else works.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from setuptools import build_meta

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console_vendor import ensure_vendor  # a sibling file on sys.path, not a package

get_requires_for_build_wheel = build_meta.get_requires_for_build_wheel
get_requires_for_build_sdist = build_meta.get_requires_for_build_sdist
get_requires_for_build_editable = build_meta.get_requires_for_build_editable
prepare_metadata_for_build_wheel = build_meta.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = build_meta.prepare_metadata_for_build_editable


def _vendor() -> None:
    problem = ensure_vendor(Path.cwd())
    if problem is not None:
        print(f"warning: {problem}; the console will say so", file=sys.stderr)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _vendor()
    return str(build_meta.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    _vendor()
    return str(build_meta.build_editable(wheel_directory, config_settings, metadata_directory))


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    _vendor()
    return str(build_meta.build_sdist(sdist_directory, config_settings))
