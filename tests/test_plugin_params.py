"""Per-target parametrization, the fixtures, ``ollama_env``, ``min_version``, capabilities."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pytest_ollama_regress.sim import DEFAULT_VERSION, SimServer


@pytest.fixture
def sim_url() -> Iterator[str]:
    with SimServer(profile="good", version="0.11.4") as sim:
        yield sim.url


def _order(result: pytest.RunResult) -> list[str]:
    return re.findall(r"::(\w+\[[^\]]+\]) PASSED", result.stdout.str())


def test_two_sims_give_one_test_per_target_grouped_by_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_a(ollama):
            assert ollama.version()

        def test_b(ollama_target):
            assert ollama_target.kind == "sim"

        def test_no_target():
            pass
        """
    )
    result = pytester.runpytest("-v", "--ollama-sim=good", "--ollama-sim=vision-ignored")
    assert result.ret == 0
    assert _order(result) == [
        "test_a[sim-good]",
        "test_b[sim-good]",
        "test_a[sim-vision-ignored]",
        "test_b[sim-vision-ignored]",
    ]
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*::test_no_target PASSED*"])


def test_target_info_and_client_of_each_target(pytester: pytest.Pytester, sim_url: str) -> None:
    pytester.makepyfile(
        """
        from pytest_ollama_regress.dialects.ollama_client import OllamaClient
        from pytest_ollama_regress.targets.registry import TargetInfo

        def test_info(ollama, ollama_target):
            assert isinstance(ollama_target, TargetInfo)
            assert isinstance(ollama, OllamaClient)
            assert ollama.version() == ollama_target.server_version
            print("INFO", ollama_target.id, ollama_target.kind, ollama_target.ref,
                  ollama_target.url, ollama_target.server_version, ollama_target.env,
                  ollama_target.metadata.get("profile"), ollama_target.image)
        """
    )
    result = pytester.runpytest(
        "-s", "-v", f"--ollama-url={sim_url}/", "--ollama-sim=good@0.11.4", "--ollama-sim=good"
    )
    assert result.ret == 0
    host = sim_url.removeprefix("http://")
    result.stdout.fnmatch_lines_random(
        [
            f"*INFO {host} url {sim_url}/ {sim_url} 0.11.4 {{}} None None",
            "*INFO sim-good-0.11.4 sim good@0.11.4 http://127.0.0.1:* 0.11.4 {} good None",
            f"*INFO sim-good-{DEFAULT_VERSION} sim good@{DEFAULT_VERSION} http://* "
            f"{DEFAULT_VERSION} {{}} good None",
        ]
    )


ENV_TESTS = """
import pytest
from pytest_ollama_regress.targets.registry import registry_of

def _ctx(ollama):
    ollama.generate("llama3.2:3b", "hi", options={"num_ctx": 8192, "num_predict": 1},
                    stream=False)
    return [m["context_length"] for m in ollama.ps()]

def test_plain(ollama, ollama_target):
    print("PLAIN", ollama_target.url, ollama_target.env, _ctx(ollama))

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="4")
def test_parallel(ollama, ollama_target, request):
    started = len(registry_of(request.config).endpoints())
    print("PARALLEL", ollama_target.url, ollama_target.env, _ctx(ollama), started)

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL=4)
def test_same_env_same_server(ollama_target, request):
    print("SAME", ollama_target.url, len(registry_of(request.config).endpoints()))
"""


def test_ollama_env_starts_a_sim_with_that_env(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(ENV_TESTS)
    result = pytester.runpytest("-s", "-v", "--ollama-sim=numctx-scaled")
    assert result.ret == 0
    out = result.stdout.str()
    plain = re.search(r"PLAIN (\S+) \{\} \[8192\]", out)
    parallel = re.search(r"PARALLEL (\S+) \{'OLLAMA_NUM_PARALLEL': '4'\} \[2048\] 2", out)
    same = re.search(r"SAME (\S+) 2", out)
    assert plain and parallel and same, out
    assert plain.group(1) != parallel.group(1) == same.group(1)
    result.stdout.fnmatch_lines(["*::test_parallel[[]sim-numctx-scaled[]] PARALLEL*"])


def test_ollama_env_is_skipped_on_url_targets(pytester: pytest.Pytester, sim_url: str) -> None:
    pytester.makepyfile(ENV_TESTS)
    result = pytester.runpytest("-rs", f"--ollama-url={sim_url}", "--ollama-sim=good")
    result.assert_outcomes(passed=4, skipped=2)
    reason = (
        "--ollama-url targets run with the server's own environment; use --ollama-image or "
        "--ollama-sim"
    )
    skips = [line for line in result.outlines if line.startswith("SKIPPED [1]")]
    assert len(skips) == 2 and all(line.endswith(reason) for line in skips), skips


def test_ollama_env_markers_merge_closest_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.ollama_env(OLLAMA_DEBUG="1", OLLAMA_NUM_PARALLEL="2")

        @pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="4")
        def test_env(ollama_target):
            assert ollama_target.env == {"OLLAMA_DEBUG": "1", "OLLAMA_NUM_PARALLEL": "4"}
        """
    )
    assert pytester.runpytest().ret == 0


def test_min_version_skips_older_targets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.min_version("0.11.5")
        def test_new(ollama_target):
            assert ollama_target.server_version != "0.11.4"
        """
    )
    result = pytester.runpytest(
        "-rs",
        "-v",
        "--ollama-sim=good@0.11.4",
        "--ollama-sim=good@0.12.6",
        "--ollama-sim=source-build@0.12.6",
        "--ollama-sim=good@0.12.6-rc0",
    )
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*test_new[[]sim-good-0.12.6[]] PASSED*",
            "*test_new[[]sim-good-0.12.6-rc0[]] PASSED*",
            "SKIPPED [[]1[]] *sim-good-0.11.4 runs Ollama 0.11.4, older than 0.11.5 required by "
            "min_version",
            "SKIPPED [[]1[]] *min_version 0.11.5: server 0.0.0 (source build (0.0.0): release "
            "unknown)*--ollama-behaves-as*",
        ]
    )
    stated = pytester.runpytest("-rs", "--ollama-sim=source-build@0.12.6",
                                "--ollama-behaves-as=0.12.6")
    stated.assert_outcomes(passed=1)


CAPABILITY_TESTS = """
import pytest

@pytest.mark.requires_capability("vision")
def test_vision(ollama):
    pass

@pytest.mark.requires_capability("audio")
def test_audio(ollama):
    pass
"""


def test_requires_capability_skips_without_such_model(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CAPABILITY_TESTS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] *sim-good has no model with capability 'audio' (models: llama3.2:3b, *"]
    )


def test_requires_capability_fails_under_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CAPABILITY_TESTS)
    result = pytester.runpytest("--ollama-strict")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no model with capability 'audio'*[[]--ollama-strict[]]*"])


@pytest.mark.parametrize(
    ("marker", "words"),
    [
        ("min_version(0.11)", "min_version takes one version string such as '0.11.5'"),
        ("min_version('latest')", "min_version takes one version string"),
        ("requires_capability()", "requires_capability takes one capability name"),
        ("ollama_env('OLLAMA_DEBUG')", "ollama_env takes KEY=VALUE keywords or one mapping"),
    ],
)
def test_marker_misuse_is_a_one_line_collection_error(
    pytester: pytest.Pytester, marker: str, words: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_x(ollama):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*test_marker_misuse*.py::test_x: {words}*"])
    assert "Traceback" not in result.stdout.str()


def test_dynamic_request_without_parametrization_explains(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_x(request):
            request.getfixturevalue("ollama")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ollama_target must be requested as a test or fixture argument*"])


def test_higher_scoped_fixtures_can_use_the_client(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture(scope="module")
        def models(ollama):
            return [m["name"] for m in ollama.tags()]

        def test_models(models, ollama_target):
            assert "llava:7b" in models
        """
    )
    result = pytester.runpytest("-v", "--ollama-sim=good", "--ollama-sim=slow-ttft")
    result.assert_outcomes(passed=2)
