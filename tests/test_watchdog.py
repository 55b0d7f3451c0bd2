"""The watchdog's protocol without an engine (the engine tests cover the removal itself).

Its docker calls go to a socket nobody listens on; what is checked is when it acts and that
it stops the processes it was told about before removing anything.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_ollama_regress.reaper import process_alive, process_start


def _spawn(tmp_path: Path, owner: subprocess.Popen, monkeypatch) -> subprocess.Popen:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_ollama_regress.watchdog", "--pid", str(owner.pid),
         "--pid-start", process_start(owner.pid), "--host", "h", "--session", "s"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                            start_new_session=True)


def test_done_means_nothing_to_do(tmp_path, monkeypatch) -> None:
    owner = _sleeper()
    dog = _spawn(tmp_path, owner, monkeypatch)
    try:
        out, _ = dog.communicate(b"done\n", timeout=30)
        assert dog.returncode == 0 and b"cleaning up" not in out
    finally:
        owner.kill()
        owner.wait()


def test_an_owner_that_dies_gets_its_tracked_processes_stopped(tmp_path, monkeypatch) -> None:
    """The pipe stays open (as when a forked child holds it): the owner's death is enough."""
    owner, compose_up = _sleeper(), _sleeper()
    dog = _spawn(tmp_path, owner, monkeypatch)
    try:
        assert dog.stdin is not None
        dog.stdin.write(f"track {compose_up.pid} {process_start(compose_up.pid)}\n".encode())
        dog.stdin.flush()
        time.sleep(0.3)
        owner.kill()
        owner.wait()
        started = time.monotonic()
        compose_up.wait(timeout=20)
        assert time.monotonic() - started < 5  # noticed within its 1 s check, then SIGTERM
        out = dog.stdout.read() if dog.wait(timeout=30) is not None else b""
        assert b"ended without removing its containers" in out
        assert b"sending SIGTERM to process group" in out
        assert not process_alive(compose_up.pid)
    finally:
        for proc in (owner, compose_up, dog):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("untrack", [True, False])
def test_untracked_processes_are_left_alone(tmp_path, monkeypatch, untrack) -> None:
    owner, follower = _sleeper(), _sleeper()
    dog = _spawn(tmp_path, owner, monkeypatch)
    try:
        lines = f"track {follower.pid} {process_start(follower.pid)}\n"
        if untrack:
            lines += f"untrack {follower.pid}\n"
        owner.kill()
        owner.wait()
        dog.communicate(lines.encode(), timeout=30)  # then the pipe ends
        assert (follower.poll() is None) is untrack
    finally:
        for proc in (follower,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
