"""The inventory plugin end to end (pytester) against simulator targets."""

from __future__ import annotations

import importlib.util
import json

import pytest

from pytest_ollama_regress.inventory.plugin import case_of

pytestmark = pytest.mark.usefixtures("no_step_summary")

CHECKS = """
import pytest
from pytest_ollama_regress.suite.pictures import make_picture


@pytest.mark.vision
def test_sees_the_picture(ollama):
    picture = make_picture(3, "red")
    answer = ollama.chat(
        "llava:7b",
        [{"role": "user", "content": "What do you see?", "images": [picture.png]}],
        stream=False,
    )
    assert "red" in answer.text.lower() and "3" in answer.text


@pytest.mark.vision
def test_lists_a_vision_model(ollama):
    assert any("vision" in ollama.show(m["name"]).get("capabilities", []) for m in ollama.tags())


@pytest.mark.numctx
def test_version(ollama):
    assert ollama.version()


@pytest.mark.ttft
def test_skipped(ollama):
    pytest.skip("not today")


def test_unmarked(ollama):
    assert ollama.version()


def test_no_target():
    pass
"""


def section(result) -> list[str]:
    """The lines of the 'ollama inventory' section of a run's output."""
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "ollama inventory" in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start + 1 : end]


def test_statuses_per_marker_against_good_and_vision_ignored(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(
        "--ollama-sim=good", "--ollama-sim=vision-ignored", "-m", "vision",
        "--ollama-inventory=inv.json",
    )
    result.assert_outcomes(passed=3, failed=1, deselected=7)
    fail = "FAIL (test_sees_the_picture[sim-vision-ignored])"
    assert section(result) == [
        "Target              Server version  vision",
        "------------------  --------------  " + "-" * len(fail),
        "sim-good            0.12.6          OK",
        f"sim-vision-ignored  0.12.6          {fail}",
        "order: as given (sim targets have no created time)",
        "LKG sim-good FKB sim-vision-ignored boundary sim-good..sim-vision-ignored",
        "inventory written: inv.json",
    ]
    data = json.loads((pytester.path / "inv.json").read_text())
    assert data["markers"] == ["vision"]
    assert [(r["target"], r["kind"], r["statuses"]) for r in data["rows"]] == [
        ("sim-good", "sim", {"vision": {"status": "OK", "first_failure": None}}),
        ("sim-vision-ignored", "sim", {"vision": {
            "status": "FAIL",
            "first_failure": "test_checks.py::test_sees_the_picture[sim-vision-ignored]"}}),
    ]
    assert (data["boundary"]["lkg"], data["boundary"]["fkb"]) == ("sim-good", "sim-vision-ignored")


def test_every_tracked_marker_gets_a_column_and_unmarked_tests_go_to_other(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("--ollama-sim=good", "--ollama-inventory=inv.csv")
    result.assert_outcomes(passed=5, skipped=1)
    assert section(result)[:3] == [
        "Target    Server version  vision  numctx  ttft  other",
        "--------  --------------  ------  ------  ----  -----",
        "sim-good  0.12.6          OK      OK      SKIP  OK",
    ]
    assert (pytester.path / "inv.csv").read_text().splitlines()[1] == (
        "sim-good,good,sim,,,,,,,,,0.12.6,OK,,OK,,SKIP,,OK,,"
    )


def test_errors_and_xfails_are_reported(pytester):
    pytester.makepyfile(test_more="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("fixture broke")

        @pytest.mark.numctx
        def test_error(ollama, broken):
            pass

        @pytest.mark.numctx
        def test_ok(ollama):
            pass

        @pytest.mark.vision
        @pytest.mark.xfail(reason="known bug")
        def test_known_bug(ollama):
            assert False
    """)
    result = pytester.runpytest("--ollama-sim=good")
    result.assert_outcomes(passed=1, errors=1, xfailed=1)
    assert section(result)[2] == (
        "sim-good  0.12.6          FAIL (test_known_bug[sim-good])  ERROR (test_error[sim-good])"
    )


def test_non_monotonic_history_is_reported(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest(
        "--ollama-sim=good@0.11.4", "--ollama-sim=vision-ignored@0.11.5",
        "--ollama-sim=good@0.11.6", "-m", "vision",
    )
    result.assert_outcomes(passed=5, failed=1, deselected=10)
    assert section(result)[-2:] == [
        "LKG sim-good-0.11.4 FKB sim-vision-ignored-0.11.5 boundary "
        "sim-good-0.11.4..sim-vision-ignored-0.11.5",
        "not monotonic: sim-good-0.11.6 OK after sim-vision-ignored-0.11.5 FAIL; "
        "regressions: sim-good-0.11.4..sim-vision-ignored-0.11.5",
    ]


def test_bisect_runs_the_middle_first_and_skips_what_it_does_not_need(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    sims = ["good@0.11.4", "good@0.11.5", "good@0.11.6", "vision-ignored@0.11.7",
            "vision-ignored@0.11.8", "vision-ignored@0.11.9"]
    result = pytester.runpytest(
        *(f"--ollama-sim={s}" for s in sims), "-m", "vision", "--ollama-bisect", "-v", "-rs",
    )
    # 6 images: probes 0.11.6 (good), 0.11.8 (bad), 0.11.7 (bad) = ceil(log2 6) + 1 at most
    result.assert_outcomes(passed=4, failed=2, skipped=6, deselected=19)
    ran = [line.split("::")[1].split(" ")[0] for line in result.outlines
           if line.startswith("test_checks.py::") and ("PASSED" in line or "FAILED" in line)]
    assert [r.split("[")[1] for r in ran] == [
        "sim-good-0.11.6]", "sim-good-0.11.6]", "sim-vision-ignored-0.11.8]",
        "sim-vision-ignored-0.11.8]", "sim-vision-ignored-0.11.7]", "sim-vision-ignored-0.11.7]",
    ]
    lines = section(result)
    assert lines[2:8] == [
        "sim-good-0.11.4            0.11.4          not tested (bisect)",
        "sim-good-0.11.5            0.11.5          not tested (bisect)",
        "sim-good-0.11.6            0.11.6          OK",
        "sim-vision-ignored-0.11.7  0.11.7          FAIL (test_sees_the_picture[sim-vision-ignored-0.11.7])",
        "sim-vision-ignored-0.11.8  0.11.8          FAIL (test_sees_the_picture[sim-vision-ignored-0.11.8])",
        "sim-vision-ignored-0.11.9  0.11.9          not tested (bisect)",
    ]
    assert lines[9] == (
        "LKG sim-good-0.11.6 FKB sim-vision-ignored-0.11.7 boundary "
        "sim-good-0.11.6..sim-vision-ignored-0.11.7"
    )
    assert lines[10] == (
        "bisect: tested 3 of 6 images (sim-good-0.11.6 sim-vision-ignored-0.11.8 "
        "sim-vision-ignored-0.11.7); not tested: sim-good-0.11.4 sim-good-0.11.5 "
        "sim-vision-ignored-0.11.9"
    )
    result.stdout.fnmatch_lines(["SKIPPED [[]6[]] *: not tested (bisect)"])


def test_step_summary_gets_the_markdown_table(pytester, monkeypatch):
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_checks=CHECKS)
    pytester.runpytest("--ollama-sim=good", "--ollama-sim=vision-ignored", "-m", "vision")
    text = summary.read_text()
    assert text.startswith("### Ollama image inventory\n\n| Target |")
    assert "| sim-vision-ignored |" in text
    assert "- LKG sim-good FKB sim-vision-ignored boundary sim-good..sim-vision-ignored" in text


def test_ini_keys_work_like_the_options(pytester):
    pytester.makeini("""
        [pytest]
        ollama_sim = good
            vision-ignored
        ollama_inventory = inv.md
        ollama_diff_paths = a.go b.go
    """)
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("-m", "vision")
    result.assert_outcomes(passed=3, failed=1, deselected=7)
    assert "| sim-vision-ignored |" in (pytester.path / "inv.md").read_text()


def test_no_summary_when_no_test_uses_a_target(pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "ollama inventory" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ollama-inventory=inv.txt"],
         "ERROR: --ollama-inventory inv.txt: unknown suffix '.txt' (use .csv, .json, .md, .png "
         "or .svg)"),
        (["--ollama-bisect"],
         "ERROR: --ollama-bisect needs at least 2 images, got 1: add --ollama-image"),
        (["--ollama-sim=good", "--ollama-sim=vision-ignored", "--ollama-order", "created"],
         "ERROR: sim-good has no created time: fill it or use --ollama-order given"),
        (["--ollama-sim=good", "--ollama-sim=vision-ignored", "--ollama-bisect", "-n", "2"],
         "ERROR: --ollama-bisect needs one process: drop -n / --dist"),
    ],
)
def test_bad_input_is_a_one_line_usage_error_before_tests_run(pytester, args, message):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.lines
    assert "passed" not in result.stdout.str()


def test_ttft_picture_from_benchmark_results(pytester, monkeypatch):
    # found, not imported: pytester unloads what a test imports, and numpy loads only once
    if importlib.util.find_spec("matplotlib") is None:
        pytest.skip("matplotlib (the plot extra) is not installed")
    pytester.makepyfile(test_ttft="""
        import pytest

        @pytest.mark.ttft
        @pytest.mark.parametrize("prompt", ["short", "long"])
        def test_first_token(ollama, benchmark, prompt, ollama_record_ttft):
            seconds = []
            def first_token():
                timing = ollama.generate("llama3.2:3b", "hi", options={"num_predict": 2}).timing
                seconds.append(timing.ttft_s)
            benchmark.pedantic(first_token, rounds=3, iterations=1)
            ollama_record_ttft(seconds)

        @pytest.mark.ttft
        def test_plain(ollama, ollama_record_ttft):
            ollama_record_ttft(
                [ollama.generate("llama3.2:3b", "hi").timing.ttft_s for _ in range(2)])
    """)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # else benchmarks are disabled
    result = pytester.runpytest_subprocess("--ollama-sim=good", "--ollama-sim=slow-ttft",
                                           "--ollama-inventory=inv.png", "--ollama-inventory=inv.svg")
    result.assert_outcomes(passed=6)
    assert (pytester.path / "inv.png").read_bytes().startswith(b"\x89PNG")
    assert (pytester.path / "inv-ttft.png").read_bytes().startswith(b"\x89PNG")
    svg = (pytester.path / "inv-ttft.svg").read_text()
    # one series per case (the legend), never pooled
    for label in ("short", "long", "test_plain", "sim-good", "sim-slow-ttft"):
        assert f">{label}<" in svg, label


@pytest.mark.parametrize(
    ("nodeid", "target", "case"),
    [
        ("t.py::test_ttft[4beecd8-short-warm]", "4beecd8", "short-warm"),
        ("t.py::test_ttft[4beecd8]", "4beecd8", "test_ttft"),
        ("t.py::test_ttft[short-sim-good]", "sim-good", "short"),
        ("t.py::test_ttft[short-sim-good-cold]", "sim-good", "short-cold"),
    ],
)
def test_case_of(nodeid: str, target: str, case: str) -> None:
    assert case_of(nodeid, target) == case


def test_statuses_reach_the_controller_under_xdist(pytester):
    pytester.makepyfile(test_checks=CHECKS)
    result = pytester.runpytest("--ollama-sim=good", "--ollama-sim=vision-ignored", "-m", "vision",
                                "-n", "2", "--ollama-inventory=inv.csv")
    result.assert_outcomes(passed=3, failed=1)
    assert section(result)[2:4] == [
        "sim-good            0.12.6          OK",
        "sim-vision-ignored  0.12.6          FAIL (test_sees_the_picture[sim-vision-ignored])",
    ]
    assert len((pytester.path / "inv.csv").read_text().splitlines()) == 3
