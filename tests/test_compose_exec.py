"""The compose executor without an engine: a fake compose that records how it was run.

No shell sees the arguments; an interrupted ``up`` has exited before the interrupt goes on;
``down`` finishes under one interrupt.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from pytest_docker import Services

from pytest_ollama_regress.containers.compose_exec import ComposeExecutor, ComposeFailed
from pytest_ollama_regress.containers.engine import ComposeCommand

FAKE = """
import json, signal, sys, time
from pathlib import Path

out = Path(sys.argv[1])
out.with_suffix(".argv").write_text(json.dumps(sys.argv[2:]))

def stopped(signum, frame):
    time.sleep(0.3)  # compose tidying up after a cancel
    out.with_suffix(".stopped").write_text(str(time.monotonic()))
    sys.exit(130)

signal.signal(signal.SIGTERM, stopped)
args = sys.argv[2:]
if "port" in args:
    print("127.0.0.1:49153")
elif "fail" in args:
    print("Error response from daemon: no such thing", file=sys.stderr)
    sys.exit(1)
else:
    time.sleep(float(args[-1]) if args[-1].replace(".", "").isdigit() else 0)
out.with_suffix(".done").write_text(str(time.monotonic()))
"""


@pytest.fixture
def fake(tmp_path: Path) -> tuple[ComposeExecutor, Path]:
    script = tmp_path / "fake_compose.py"
    script.write_text(FAKE)
    record = tmp_path / "rec.out"
    command = ComposeCommand((sys.executable, str(script), str(record)), "2.99.0")
    weird = tmp_path / 'bt$(touch PWNED)"q`x`' / "compose.yaml"
    return ComposeExecutor(command, weird, "olr-test", timeout=30), record


def _interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_arguments_reach_compose_literally(fake, tmp_path: Path) -> None:
    executor, record = fake
    executor.run(["up", "-d", "0"])
    argv = json.loads(record.with_suffix(".argv").read_text())
    assert argv == ["-f", str(executor.file), "-p", "olr-test", "up", "-d", "0"]
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()


def test_pytest_docker_services_run_on_it(fake) -> None:
    executor, _ = fake
    assert Services(executor).port_for("ollama", 11434) == 49153


def test_a_failure_carries_the_output(fake) -> None:
    executor, _ = fake
    with pytest.raises(ComposeFailed) as info:
        executor.run(["fail"])
    assert "exit status 1" in str(info.value)
    assert "Error response from daemon: no such thing" in info.value.output


def test_an_interrupted_up_finishes_before_the_interrupt_goes_on(fake) -> None:
    """Stopping it mid-request would let the daemon create a container after the clean-up."""
    executor, record = fake
    timer = _interrupt_after(0.5)
    with pytest.raises(KeyboardInterrupt):
        executor.run(["up", "-d", "1.5"])
    raised = time.monotonic()
    timer.join()
    assert float(record.with_suffix(".done").read_text()) < raised
    assert not record.with_suffix(".stopped").exists() and executor.left_running is None


def test_an_up_left_running_is_waited_for_before_down(fake) -> None:
    executor, record = fake
    timers = [_interrupt_after(0.3), _interrupt_after(0.6), _interrupt_after(0.9)]
    with pytest.raises(KeyboardInterrupt):
        executor.run(["up", "-d", "2.5"])
    for timer in timers:
        timer.join()
    assert executor.left_running is not None and not record.with_suffix(".done").exists()
    executor.settle()
    assert record.with_suffix(".done").exists() and executor.left_running is None


def test_down_finishes_under_one_interrupt(fake, capfd) -> None:
    executor, record = fake
    timer = _interrupt_after(0.3)
    executor.run(["down", "1.5"], finish=True)
    timer.join()
    assert record.with_suffix(".done").exists() and not record.with_suffix(".stopped").exists()
    assert "finishing it first" in capfd.readouterr().err


def test_down_is_left_running_after_a_second_interrupt(fake) -> None:
    executor, record = fake
    timers = [_interrupt_after(0.3), _interrupt_after(0.6)]
    with pytest.raises(KeyboardInterrupt):
        executor.run(["down", "2"], finish=True)
    for timer in timers:
        timer.join()
    deadline = time.monotonic() + 10
    while not record.with_suffix(".done").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.with_suffix(".done").exists()  # it went on alone and finished


def test_a_command_past_its_timeout_is_stopped(fake) -> None:
    executor, record = fake
    with pytest.raises(ComposeFailed, match="did not finish within 0.5s"):
        executor.run(["up", "-d", "20"], timeout=0.5)
    assert record.with_suffix(".stopped").exists()
