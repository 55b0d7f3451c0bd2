"""Cleanup of simulators and providers, log sections on failure, the provider hook.

xdist runs (every worker builds its own targets) are in ``test_placement.py``.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

# Inner tests record every server URL they saw, so the outer test can check they are gone.
RECORD = """
import pathlib

def record(info):
    with pathlib.Path("urls.txt").open("a") as fh:
        fh.write(info.url + "\\n")
"""


def _urls(pytester: pytest.Pytester) -> list[str]:
    path = pytester.path / "urls.txt"
    return sorted(set(path.read_text().split())) if path.exists() else []


def _assert_all_stopped(urls: list[str], threads_before: set[threading.Thread]) -> None:
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/api/version", timeout=2, trust_env=False)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.02)
    raise AssertionError(f"threads left running: {extra}")


# Which simulator threads started during the run are still alive after the plugin's own
# pytest_unconfigure? (Threads of the outer session, when run in process, are ignored.)
THREAD_PROBE = """
import pathlib
import threading
import pytest

def _sims():
    return {t for t in threading.enumerate() if t.name.startswith("ollama-sim")}

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config._sims_before = _sims()

@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    alive = sorted(t.name for t in _sims() - config._sims_before if t.is_alive())
    pathlib.Path("threads.txt").write_text(repr(alive))
"""

CASES = {
    "pass": ("", [], pytest.ExitCode.OK),
    "fail-x": ("assert False, 'boom'", ["-x"], pytest.ExitCode.TESTS_FAILED),
    "interrupt": ("raise KeyboardInterrupt", [], pytest.ExitCode.INTERRUPTED),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_no_server_is_left_running(pytester: pytest.Pytester, case: str) -> None:
    body, args, code = CASES[case]
    pytester.makeconftest(THREAD_PROBE)
    pytester.makepyfile(
        RECORD
        + f"""
import pytest

def test_first(ollama_target):
    record(ollama_target)
    {body}

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="2")
def test_env(ollama_target):
    record(ollama_target)
"""
    )
    before = set(threading.enumerate())
    targets = ("--ollama-sim=good", "--ollama-sim=slow-ttft", *args)
    if case == "interrupt":  # pytester re-raises KeyboardInterrupt from in-process runs
        result = pytester.runpytest_subprocess(*targets, timeout=60)
    else:
        result = pytester.runpytest(*targets)
    assert result.ret == code
    assert (pytester.path / "threads.txt").read_text() == "[]"
    urls = _urls(pytester)
    assert len(urls) == {"pass": 4, "fail-x": 1, "interrupt": 1}[case]
    _assert_all_stopped(urls, before)


def test_no_server_is_left_after_a_fixture_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        RECORD
        + """
import pytest

@pytest.fixture
def broken(ollama_target):
    record(ollama_target)
    raise RuntimeError("fixture broke")

def test_x(broken):
    pass
"""
    )
    before = set(threading.enumerate())
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    _assert_all_stopped(_urls(pytester), before)


PROVIDER_CONFTEST = """
import pathlib
import pytest
from pytest_ollama_regress.sim import SimServer
from pytest_ollama_regress.targets.providers import probe_version
from pytest_ollama_regress.targets.registry import Endpoint, Target


class LocalProvider:
    \"\"\"Real simulators with a log file each, the way the container provider keeps logs.\"\"\"

    def __init__(self, folder):
        self.folder = folder
        self.servers = []

    def endpoint(self, target, env):
        server = SimServer(profile=target.ref, env=dict(env))
        server.__enter__()
        self.servers.append(server)
        log = self.folder / f"{target.id}-{len(self.servers)}.log"
        log.write_text("".join(f"container line {i}\\n" for i in range(100)) + "exit marker\\n")
        version = probe_version(server.url, timeout=5)
        return Endpoint(url=server.url, server_version=version, env=dict(env), logs_path=log)

    def describe(self, target, endpoint):
        return f"local {target.ref} labelled {target.metadata['label']}" + (
            "" if endpoint else ", starts on first use")

    def close(self):
        for server in self.servers:
            server.__exit__(None, None, None)
        pathlib.Path("closed.txt").write_text(str(len(self.servers)))


def pytest_ollama_register_targets(config, registry):
    registry.add_provider("local", LocalProvider(pathlib.Path.cwd()))
    registry.add_target(Target(id="loc-a", kind="local", ref="good", metadata={"label": "a"}))
    registry.add_target(Target(id="loc-b", kind="local", ref="vision-ignored",
                               metadata={"label": "b"}))
"""


def test_provider_hook_targets_logs_and_close(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROVIDER_CONFTEST)
    pytester.makepyfile(
        RECORD
        + """
import pytest

def test_ok(ollama, ollama_target):
    record(ollama_target)
    assert ollama_target.metadata["label"] in ("a", "b")
    assert ollama.version() == ollama_target.server_version

@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="3")
def test_fails(ollama_target):
    record(ollama_target)
    assert ollama_target.env == {"OLLAMA_NUM_PARALLEL": "3"}
    assert ollama_target.id != "loc-b", "loc-b is broken"
"""
    )
    before = set(threading.enumerate())
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "ollama targets (2):",
            "  loc-a: local good labelled a, starts on first use",
            "  loc-b: local vision-ignored labelled b, starts on first use",
            "*test_ok[[]loc-a[]] PASSED*",
            "*test_fails[[]loc-b[]] FAILED*",
            "*- ollama log: loc-b (last lines) -*",
            "container line 99",
            "exit marker",
        ]
    )
    assert "container line 39\n" not in result.stdout.str()  # only the tail
    assert "no target given" not in result.stdout.str()
    assert (pytester.path / "closed.txt").read_text() == "4"
    _assert_all_stopped(_urls(pytester), before)


def test_simulator_log_lines_are_attached_to_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails(ollama):
            ollama.generate("llama3.2:3b", "hello", options={"num_predict": 2}, stream=False)
            assert False, "look at the server log"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*- ollama log: sim-good (last lines) -*", '*POST * "/api/generate"*']
    )


def test_passing_tests_get_no_log_section(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PROVIDER_CONFTEST)
    pytester.makepyfile("def test_ok(ollama_target):\n    pass\n")
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=2)
    assert "ollama log:" not in result.stdout.str()


def test_sims_started_before_a_usage_error_are_stopped(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_ollama_regress.targets.providers import url_target

        def pytest_ollama_register_targets(config, registry):
            registry.add_target(url_target("http://127.0.0.1:9"))
        """
    )
    pytester.makepyfile("def test_x(ollama_target):\n    pass\n")
    before = set(threading.enumerate())
    result = pytester.runpytest("--ollama-sim=good", "--ollama-sim=slow-ttft")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-url http://127.0.0.1:9: cannot connect*"])
    _assert_all_stopped([], before)
