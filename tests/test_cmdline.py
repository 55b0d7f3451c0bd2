"""Option values that pytest would also take for test paths: refused with the ``=`` form named.

Without the check, ``--ollama-models-dir DIR`` moves pytest's rootdir to ``DIR`` (pytest reads
the rootdir from the command line's paths before the plugin's options exist).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_ollama_regress.cmdline import PATH_OPTIONS, misplaced_value, option_kinds

TEST = "def test_ok():\n    pass\n"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with its own ini file and a models folder outside it."""
    pytester.makeini("[pytest]\nmarkers =\n    mine: a marker of the project\n")
    pytester.makepyfile(test_a=TEST)
    return pytester


@pytest.fixture
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def one_error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.stderr.lines if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_a_path_option_as_two_words_is_refused_naming_the_equals_form(project, models) -> None:
    result = project.runpytest("--ollama-models-dir", str(models))
    assert one_error(result) == (
        f"ERROR: --ollama-models-dir {models}: write --ollama-models-dir={models} (with '='): as "
        "a separate word pytest also takes it for a test path and moves its rootdir there"
    )


def test_the_equals_form_keeps_the_rootdir_and_the_ini_file(project, models) -> None:
    result = project.runpytest(f"--ollama-models-dir={models}", "-m", "mine or not mine")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"rootdir: {project.path}", "configfile: tox.ini"])


def test_a_path_option_is_refused_even_before_its_file_exists(project) -> None:
    """Else the same command breaks on its second run, once the report exists."""
    result = project.runpytest("--ollama-sim=good", "--ollama-inventory", "inv.csv")
    assert one_error(result).startswith("ERROR: --ollama-inventory inv.csv: write "
                                        "--ollama-inventory=inv.csv (with '=')")
    assert not (project.path / "inv.csv").exists()


def test_any_option_whose_separate_value_is_an_existing_path_is_refused(project) -> None:
    (project.path / "ollama").mkdir()
    result = project.runpytest("--ollama-image", "ollama")
    assert one_error(result).startswith("ERROR: --ollama-image ollama: write --ollama-image=ollama")


def test_an_optional_value_that_is_a_path_is_explained(project) -> None:
    (project.path / "good").mkdir()
    assert one_error(project.runpytest("--ollama-sim", "good")) == (
        "ERROR: --ollama-sim good: --ollama-sim takes good as its value and pytest takes it for "
        "a test path; write --ollama-sim=VALUE (with '='), and test paths before --ollama-sim"
    )
    (project.path / "good").rmdir()
    assert project.runpytest("--ollama-sim", "good").ret == pytest.ExitCode.OK


def test_a_flag_before_a_test_path_is_fine(project) -> None:
    result = project.runpytest("--ollama-strict", "test_a.py")
    result.assert_outcomes(passed=1)


def test_pytest_addopts_is_checked_too(project, models, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--ollama-models-dir {models}")
    assert one_error(project.runpytest()).endswith("moves its rootdir there (in PYTEST_ADDOPTS)")


def test_every_path_valued_option_is_listed(pytester: pytest.Pytester) -> None:
    """An option shown with a PATH/DIR/FILE value in --help must be in PATH_OPTIONS."""
    text = pytester.runpytest("--help").stdout.str()
    shown = set(re.findall(r"(--ollama-[a-z-]+)=(?:PATH|DIR|FILE)\b", text))
    assert shown and shown == set(PATH_OPTIONS)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--ollama-models-dir", "m"], ("--ollama-models-dir", "m")),
        (["--ollama-models-dir=m"], None),
        (["--ollama-image", "exists"], ("--ollama-image", "exists")),
        (["--ollama-sim", "exists"], ("--ollama-sim", "exists")),
        (["--ollama-sim", "good"], None),
        (["--ollama-image", "exists::test_x"], ("--ollama-image", "exists::test_x")),
        (["--ollama-image", "x:1"], None),
        (["--ollama-keep", "exists"], None),  # a flag: a real test path
        (["--ollama-image", "-v"], None),
        (["--", "--ollama-models-dir", "m"], None),
        (["--other-plugin", "exists"], None),
    ],
)
def test_misplaced_value(args: list[str], expected, tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    kinds = {"--ollama-keep": "flag", "--ollama-sim": "optional"}
    found = misplaced_value(args, lambda option: kinds.get(option, "required"), tmp_path)
    assert found == (expected and (*expected, kinds.get(expected[0], "required")))


def test_option_kinds_come_from_the_parser(pytester: pytest.Pytester) -> None:
    kinds: dict[str, str] = {}

    class Probe:
        @pytest.hookimpl(trylast=True)
        def pytest_load_initial_conftests(self, early_config, parser, args):
            kind = option_kinds(parser)
            for option in ("--ollama-models-dir", "--ollama-image", "--ollama-timeout",
                           "--ollama-sim", "--ollama-keep", "--ollama-strict"):
                kinds[option] = kind(option)

    pytester.runpytest("--collect-only", plugins=[Probe()])
    assert kinds == {
        "--ollama-models-dir": "required", "--ollama-image": "required",
        "--ollama-timeout": "required", "--ollama-sim": "optional", "--ollama-keep": "flag",
        "--ollama-strict": "flag",
    }
