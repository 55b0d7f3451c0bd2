"""The suite's options and bad input: usage errors, markers, missing models, policies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaClient
from pytest_ollama_regress.sim import SimServer
from pytest_ollama_regress.suite.settings import parse_max_regression

SUITE = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider")


@pytest.fixture(autouse=True)
def _not_an_xdist_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs are sessions of their own, even when this one runs under pytest-xdist."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (("--ollama-numctx-policy=fancy",), "",
         "--ollama-numctx-policy 'fancy': unknown num_ctx policy: use "
         "--ollama-numctx-policy=stock or =dynamic"),
        ((), "ollama_numctx_policy = fancy", "ini ollama_numctx_policy 'fancy': unknown num_ctx policy"),
        (("--ollama-ttft-max-regression=abc",), "",
         "--ollama-ttft-max-regression 'abc' is not a percentage: write e.g."),
        (("--ollama-ttft-max-regression=-5%",), "", "is not a percentage"),
        ((), "ollama_ttft_max_regression = fifteen",
         "ini ollama_ttft_max_regression 'fifteen' is not a percentage"),
        (("--ollama-ttft-rounds=0",), "", "--ollama-ttft-rounds '0': give a whole number >= 1"),
        (("--ollama-ttft-warmup=x",), "", "--ollama-ttft-warmup 'x': give a whole number >= 0"),
        (("--ollama-numerics-max-kl=abc",), "",
         "--ollama-numerics-max-kl 'abc' is not a number >= 0: write e.g. "
         "--ollama-numerics-max-kl=0.01"),
        (("--ollama-numerics-min-same-top=150%",), "",
         "--ollama-numerics-min-same-top '150%' is not a rate between 0 and 1"),
        ((), "ollama_numerics_min_exact = most", "ini ollama_numerics_min_exact 'most' is not a rate"),
        (("--ollama-numerics-tokens=0",), "", "--ollama-numerics-tokens '0': give a whole number >= 1"),
        (("--ollama-sim=good", "--ollama-baseline=sim-nope"), "",
         "--ollama-baseline 'sim-nope' is not among the targets (sim-good)"),
    ],
)
def test_bad_input_is_a_usage_error(pytester: pytest.Pytester, args: tuple[str, ...], ini: str,
                                    message: str) -> None:
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*SUITE, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{message}*"])


@pytest.mark.parametrize(("text", "value"), [("15%", 0.15), ("15", 0.15), (" 2.5 % ", 0.025),
                                             ("0%", 0.0)])
def test_parse_max_regression(text: str, value: float) -> None:
    assert parse_max_regression(text) == pytest.approx(value)


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.vision: image counting*", "@pytest.mark.debug_render: rendered*",
        "@pytest.mark.numctx: /api/ps*", "@pytest.mark.ttft: time to first token*",
    ])


def test_options_are_documented_in_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*--ollama-baseline=REF*", "*--ollama-numctx-policy=POLICY*",
        "*--ollama-ttft-max-regression=PCT*", "*--ollama-ttft-rounds=N*",
        "*--ollama-ttft-warmup=N*", "*--ollama-vision-words=W1,W2*", "*--ollama-snapshot-dir=DIR*",
    ])


def test_marker_selects_one_part(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*SUITE, "-m", "vision", "--collect-only", "-q")
    lines = [line for line in result.outlines if "::" in line]
    # the vision modules of both server families, nothing else
    assert lines and all(line.startswith(("test_vision.py::", "test_vision_llama_server.py::"))
                         for line in lines)


@pytest.fixture
def no_vision_server() -> Iterator[str]:
    """A simulator whose vision models were deleted."""
    with SimServer(profile="good") as sim:
        with OllamaClient(sim.url) as client:
            for model in ("llava:7b", "gemma3:4b"):
                client.delete(model)
        yield sim.url


def test_missing_vision_model_skips_with_reason(pytester: pytest.Pytester,
                                                no_vision_server: str) -> None:
    result = pytester.runpytest_subprocess(
        *SUITE, f"--ollama-url={no_vision_server}", "-m", "vision", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1  # images to a model without vision
    # 16 of Ollama's vision checks and llama.cpp's one (another dialect)
    assert outcomes.get("skipped") == 17 and "failed" not in outcomes
    result.stdout.fnmatch_lines(["*has no vision model; pull one (e.g. llava)*"])


def test_missing_vision_model_fails_when_strict(pytester: pytest.Pytester,
                                               no_vision_server: str) -> None:
    result = pytester.runpytest_subprocess(
        *SUITE, f"--ollama-url={no_vision_server}", "-m", "vision", "--ollama-strict")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 16 and outcomes.get("passed") == 1
    result.stdout.fnmatch_lines(["*has no vision model*"])


def test_dynamic_policy_is_applied(pytester: pytest.Pytester) -> None:
    """The simulator is a stock server: the dynamic policy's predictions must fail on it."""
    pytester.makeini("[pytest]\nollama_numctx_policy = dynamic\n")
    result = pytester.runpytest_subprocess(
        *SUITE, "--ollama-sim=good", "-m", "numctx", "-k", "test_ps_context_length and medium",
        "-rf")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*context_length 4096 != 40960 (medium, llama3.2:3b): the dynamic policy predicts "
        "40960 for no num_ctx, message length 20000 bytes (rule: dynamic num_ctx*",
    ])


def test_vision_words_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        *SUITE, "--ollama-sim=good", "-k", "test_model_sees_picture",
        "--ollama-vision-words=purple,seven", "-rf")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*names none of purple, seven: the model did not see*"])
