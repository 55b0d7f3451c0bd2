"""``ollama-regress sim``: flags, environment, start-up log, bad input, simulated start failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from pytest_ollama_regress.sim import check_version
from pytest_ollama_regress.sim.cli import parse_ollama_host
from pytest_ollama_regress.sim.server import free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    env.update(extra)
    return env


def _wait_up(url: str, proc: subprocess.Popen, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"simulator exited with {proc.returncode}")
        try:
            return httpx.get(url + "/api/version", timeout=1).json()["version"]
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("simulator did not answer in time")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=10)
    return proc.returncode, err


@pytest.mark.parametrize("module", ["pytest_ollama_regress.cli", "pytest_ollama_regress.sim"])
def test_flags_serve_and_log(module):
    port = free_port()
    args = [sys.executable, "-m", module] + (["sim"] if module.endswith(".cli") else [])
    proc = subprocess.Popen(args + ["--port", str(port), "--profile", "vision-ignored",
                                    "--version", "0.11.4"],
                            env=_env(OLLAMA_DEBUG="1", OLLAMA_NUM_PARALLEL="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_up(f"http://127.0.0.1:{port}", proc) == "0.11.4"
        httpx.post(f"http://127.0.0.1:{port}/api/generate",
                   json={"model": "llama3.2:3b", "prompt": "hi", "stream": False}, timeout=10)
    finally:
        code, err = _stop(proc)
    assert code == 0
    assert f"Listening on 127.0.0.1:{port} (version 0.11.4)" in err
    assert 'msg="server config" env="map[' in err and "OLLAMA_NUM_PARALLEL:2" in err
    assert "level=DEBUG" in err and 'msg="generate request" images=0' in err
    assert '"/api/generate"' in err and "[GIN]" in err


def test_ollama_host_and_sim_env():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_ollama_regress.sim"],
        env=_env(OLLAMA_HOST=f"127.0.0.1:{port}", OLLAMA_SIM_VERSION="0.15.5",
                 OLLAMA_SIM_PROFILE="numctx-scaled"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_up(f"http://127.0.0.1:{port}", proc) == "0.15.5"
    finally:
        code, err = _stop(proc)
    assert code == 0 and "profile=numctx-scaled" in err
    assert "level=DEBUG" not in err


@pytest.mark.parametrize(("args", "env", "fragment"), [
    (["--profile", "nope"], {}, "unknown simulator profile 'nope': choose one of good"),
    (["--version", "nope"], {}, "unknown simulator version 'nope'"),
    (["--version", "0.9.0"], {}, "the simulator covers 0.10.0 to 0.33.x"),
    ([], {"OLLAMA_SIM_PROFILE": "bad"}, "unknown simulator profile 'bad'"),
    (["--port", "0"], {"OLLAMA_NUM_PARALLEL": "many"}, "OLLAMA_NUM_PARALLEL='many'"),
])
def test_bad_input_is_one_line(args, env, fragment):
    result = subprocess.run([sys.executable, "-m", "pytest_ollama_regress.sim", *args],
                            env=_env(**env), capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_fail_at_start_exits_with_code():
    result = subprocess.run([sys.executable, "-m", "pytest_ollama_regress.sim", "--port", "0"],
                            env=_env(OLLAMA_SIM_FAIL_AT_START="7"), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 7
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1


def test_port_in_use_is_reported():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "pytest_ollama_regress.sim", "--port", str(port)],
            env=_env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and f"listen tcp 127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [
    ("", ("127.0.0.1", 11434)), ("0.0.0.0", ("0.0.0.0", 11434)),
    ("0.0.0.0:8080", ("0.0.0.0", 8080)), ("http://example.internal", ("example.internal", 80)),
    ("https://h:9", ("h", 9)), (' "127.0.0.1:5" ', ("127.0.0.1", 5)), ("[::1]:7", ("::1", 7)),
])
def test_parse_ollama_host(value, expected):
    assert parse_ollama_host(value) == expected


@pytest.mark.parametrize("version", ["0.10.0", "0.11.5-rc3", "0.33.9", "0.0.0", "v0.12.6"])
def test_check_version_accepts(version):
    assert check_version(version)


@pytest.mark.parametrize("version", ["0.9.9", "0.34.0", "1.0.0", "latest", ""])
def test_check_version_rejects_in_one_line(version):
    with pytest.raises(ValueError) as info:
        check_version(version)
    assert "\n" not in str(info.value)
