"""``--ollama-env`` reaches the in-process simulators as well as containers."""

from __future__ import annotations

import pytest

PS_CHECK = """
def test_ps(ollama, ollama_model):
    ollama.chat(ollama_model, [{"role": "user", "content": "hi"}], options={"num_ctx": 8192})
    assert [m["context_length"] for m in ollama.ps()] == [EXPECTED]
"""


@pytest.mark.parametrize(
    ("env_args", "expected"),
    [
        ([], 8192),
        (["--ollama-env", "OLLAMA_NUM_PARALLEL=4"], 2048),
    ],
    ids=["no-env", "num-parallel-4"],
)
def test_ollama_env_reaches_the_simulator(
    pytester: pytest.Pytester, env_args: list[str], expected: int
) -> None:
    # numctx-scaled divides /api/ps context_length by OLLAMA_NUM_PARALLEL: the env is visible.
    pytester.makepyfile(PS_CHECK.replace("EXPECTED", str(expected)))
    result = pytester.runpytest("--ollama-sim=numctx-scaled", *env_args)
    result.assert_outcomes(passed=1)


def test_marker_env_wins_over_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        PS_CHECK.replace("EXPECTED", "8192").replace(
            "def test_ps",
            "import pytest\n@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL='1')\ndef test_ps",
        )
    )
    result = pytester.runpytest(
        "--ollama-sim=numctx-scaled", "--ollama-env", "OLLAMA_NUM_PARALLEL=4"
    )
    result.assert_outcomes(passed=1)


def test_malformed_env_is_a_usage_error_without_images(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never(ollama):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--ollama-env", "NOEQUALS")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-env 'NOEQUALS': expected KEY=VALUE*"])
