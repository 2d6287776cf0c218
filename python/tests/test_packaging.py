"""pyproject.toml: the version written once, the extras hold what the package and the
analytics example need at run time, development tools live in the dev dependency group."""

from __future__ import annotations

import importlib.metadata
import re

import tomllib
from conftest import REPO

import flagsync

PYPROJECT = tomllib.loads((REPO / "python" / "pyproject.toml").read_text(encoding="utf-8"))
DEV_TOOLS = {"pytest", "ruff", "mypy", "httpx", "django-stubs", "types-pyyaml", "flask-login"}


def names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


def test_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "src/flagsync/__init__.py"
    assert importlib.metadata.version("flagsync") == flagsync.__version__


def test_extras_and_dev_group() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert not names(extras["all"]) & DEV_TOOLS
    assert {"pandas", "numpy", "scipy", "matplotlib", "nbconvert", "ipykernel"} <= names(
        extras["analytics"]
    )
    assert names(PYPROJECT["dependency-groups"]["dev"]) >= DEV_TOOLS
    for extra in ("yaml", "redis", "openfeature", "django", "flask", "fastapi"):
        assert names(extras[extra]) <= names(extras["all"]), extra
