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

from pytest_ollama_regress.containers.reaper import process_alive, process_start


def _spawn(tmp_path: Path, owner: subprocess.Popen, monkeypatch) -> subprocess.Popen:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nobody.sock")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_ollama_regress.containers.watchdog", "--pid", str(owner.pid),
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


def test_an_owner_that_dies_gets_its_followers_stopped(tmp_path, monkeypatch) -> None:
    """The pipe stays open (as when a forked child holds it): the owner's death is enough."""
    owner, compose_up = _sleeper(), _sleeper()
    dog = _spawn(tmp_path, owner, monkeypatch)
    try:
        assert dog.stdin is not None
        dog.stdin.write(
            f"track {compose_up.pid} {process_start(compose_up.pid)} follower\n".encode()
        )
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
        lines = f"track {follower.pid} {process_start(follower.pid)} follower\n"
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


def test_a_compose_command_in_flight_is_waited_for_not_killed(tmp_path, monkeypatch) -> None:
    owner = _sleeper()
    marker = tmp_path / "finished"
    compose_up = subprocess.Popen(
        [sys.executable, "-c",
         f"import time, pathlib; time.sleep(2); pathlib.Path({str(marker)!r}).write_text('ok')"],
        start_new_session=True,
    )
    dog = _spawn(tmp_path, owner, monkeypatch)
    try:
        owner.kill()
        owner.wait()
        out, _ = dog.communicate(
            f"track {compose_up.pid} {process_start(compose_up.pid)} compose\n".encode(),
            timeout=60,
        )
        assert compose_up.wait(timeout=10) == 0 and marker.read_text() == "ok"
        assert b"waiting for compose command" in out and b"SIGTERM" not in out
        assert out.index(b"waiting for compose") < out.index(b"removing the containers failed")
    finally:
        for proc in (owner, compose_up):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
