"""The pytest header: the default simulator message and the list of targets with versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_ollama_regress.sim import DEFAULT_VERSION, SimServer


@pytest.fixture
def sim_url() -> Iterator[str]:
    with SimServer(profile="good", version="0.11.4") as sim:
        yield sim.url


def test_default_target_is_the_embedded_simulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(ollama_target):\n    assert ollama_target.id == 'sim-good'\n")
    result = pytester.runpytest("-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "ollama: no target given, testing the embedded simulator: sim-good: embedded "
            f"simulator, profile good, Ollama {DEFAULT_VERSION}, starts on first use",
            "ollama: to test a real server pass --ollama-url http://HOST:11434 or "
            "--ollama-image REF",
            "*test_x[[]sim-good[]] PASSED*",
        ]
    )


def test_header_lists_every_target_with_its_version(
    pytester: pytest.Pytester, sim_url: str
) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(
        f"--ollama-url={sim_url}",
        "--ollama-sim",
        "--ollama-sim=slow-ttft",
        "--ollama-sim-version=0.12.3",
    )
    assert result.ret == 0
    host = sim_url.removeprefix("http://")
    result.stdout.fnmatch_lines(
        [
            "ollama targets (3):",
            f"  {host}: {sim_url}, Ollama 0.11.4",
            "  sim-good: embedded simulator, profile good, Ollama 0.12.3, starts on first use",
            "  sim-slow-ttft: embedded simulator, profile slow-ttft, Ollama 0.12.3, starts on "
            "first use",
        ]
    )
    assert "no target given" not in result.stdout.str()


def test_header_of_sims_with_several_versions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--ollama-sim=good@0.11.4", "--ollama-sim=good@0.0.0")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "ollama targets (2):",
            "  sim-good-0.11.4: embedded simulator, profile good, Ollama 0.11.4, starts on "
            "first use",
            "  sim-good-0.0.0: embedded simulator, profile good, Ollama 0.0.0, starts on first use",
            "ollama releases (--ollama-behaves-as states one):",
            "  sim-good-0.11.4: 0.11.4: release 0.11.4",
            "  sim-good-0.0.0: 0.0.0: *",
        ]
    )


def test_header_of_a_provider_target_not_started_yet(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_ollama_regress.targets.registry import Target

        class LazyProvider:
            def endpoint(self, target, env):
                raise AssertionError("not used in this run")

            def close(self):
                pass

        def pytest_ollama_register_targets(config, registry):
            registry.add_provider("image", LazyProvider())
            registry.add_target(Target(id="4beecd8", kind="image", ref="sha256:4beecd8"))
        """
    )
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["ollama targets (1):", "  4beecd8: image sha256:4beecd8, starts on first use"]
    )
