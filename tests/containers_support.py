"""Helpers shared by the engine tests of ``--ollama-image`` (not a test module).

Every inner run is a pytest subprocess whose test writes its pid and the pid's start time to
``pid.txt``; the containers it owns are found with ``docker ps -a --filter
label=io.ollama-regress.pid=<pid> --filter label=io.ollama-regress.pid-start=<start>`` (pids
recycle fast, and other runs share the engine) and its helper processes (log followers, compose
commands, its watchdog) by their command lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_ollama_regress.containers.compose_file import LABEL_PID, LABEL_PID_START
from pytest_ollama_regress.containers.reaper import process_start

WATCHDOG = "pytest_ollama_regress.containers.watchdog"

RECORD = """
import json, os, subprocess
import pytest


@pytest.fixture(scope="session", autouse=True)
def _pid(pytestconfig):
    start = open("/proc/self/stat").read().rpartition(")")[2].split()[19]
    (pytestconfig.rootpath / "pid.txt").write_text("%d %s" % (os.getpid(), start))
    with open(pytestconfig.rootpath / "pids.txt", "a") as fh:
        print(os.getpid(), start, file=fh)


def _ours():
    out = subprocess.run(
        ["docker", "ps", "-q", "--filter", "label=io.ollama-regress.pid=%d" % os.getpid()],
        capture_output=True, text=True, timeout=30,
    )
    return len(out.stdout.split())


def test_record(ollama, ollama_target):
    info = {
        "id": ollama_target.id, "url": ollama_target.url,
        "server_version": ollama_target.server_version, "metadata": ollama_target.metadata,
        "logs_path": str(ollama_target.logs_path), "running": _ours(),
        "version": ollama.version(),
    }
    (ollama_target.logs_path.parent.parent.parent / ("rec-%s.json" % ollama_target.id)).write_text(
        json.dumps(info)
    )
"""


_STARTS: dict[str, str] = {}  # pid -> its start time, for the pid-start label


def remember(pid: int | str, start: str | None = None) -> str:
    """Note the start time of ``pid`` (read now when not given, so while it runs)."""
    start = start or process_start(int(pid))
    if start:
        _STARTS[str(pid)] = start
    return str(pid)


def ours(pid: int | str, *, running_only: bool = False) -> list[str]:
    """Containers of the run ``pid`` (of that process, not of a recycled pid)."""
    args = ["docker", "ps", "-q", "--filter", f"label={LABEL_PID}={pid}"]
    if str(pid) in _STARTS:
        args += ["--filter", f"label={LABEL_PID_START}={_STARTS[str(pid)]}"]
    if not running_only:
        args.insert(2, "-a")
    out = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.split()


def _recorded(line: str) -> str:
    pid, _, start = line.strip().partition(" ")
    return remember(pid, start or None)


def inner_pid(pytester: pytest.Pytester) -> str:
    """The pid of the inner run (its start time remembered for :func:`ours`)."""
    return _recorded((pytester.path / "pid.txt").read_text())


def inner_pids(pytester: pytest.Pytester) -> list[str]:
    """Every process of the inner run that set up a test (xdist workers)."""
    return [_recorded(line) for line in (pytester.path / "pids.txt").read_text().splitlines()
            if line.strip()]


def records(basetemp: Path) -> dict[str, dict]:
    """What each inner ``test_record`` saw, by target id (xdist workers included)."""
    return {
        json.loads(p.read_text())["id"]: json.loads(p.read_text())
        for p in basetemp.rglob("rec-*.json")
    }


def run(pytester: pytest.Pytester, *args: str, timeout: float = 300):
    basetemp = pytester.path / "bt"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={basetemp}", *args, timeout=timeout
    )
    return result, basetemp


SLEEPER = """
import os, time

def test_sleeps(ollama, ollama_target):
    (ollama_target.logs_path.parent.parent.parent.parent / "ready.txt").write_text(str(os.getpid()))
    time.sleep(120)
"""


def _like_a_terminal() -> None:
    """In the child: a terminal job's signal dispositions. This suite may run under ``nohup``
    or in the background, where an ignored SIGHUP/SIGINT would be inherited (and the plugin
    rightly leaves an ignored SIGHUP alone)."""
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def start_inner(pytester: pytest.Pytester, image: str, *args: str,
                **popen) -> subprocess.Popen:
    """The inner run in the background (``popen``: e.g. ``start_new_session=True``)."""
    proc = pytester.popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp={pytester.path}/bt",
         f"--ollama-image={image}", *args, "test_inner.py"],
        stdin=subprocess.DEVNULL, preexec_fn=_like_a_terminal, **popen,
    )
    remember(proc.pid)
    return proc


def start_sleeper(pytester: pytest.Pytester, image: str, *args: str,
                  **popen) -> tuple[subprocess.Popen, str]:
    """An inner run whose test sleeps once its container answered: (process, its pid)."""
    pytester.makepyfile(test_inner=SLEEPER)
    ready = pytester.path / "ready.txt"
    proc = start_inner(pytester, image, *args, **popen)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the inner run never started its container"
        time.sleep(0.1)
    pid = remember(ready.read_text().strip())
    assert len(ours(pid, running_only=True)) == 1
    return proc, pid


def cmdlines() -> dict[int, str]:
    """Every process's command line (NUL-separated arguments joined by spaces)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def container_names(pid: int | str) -> list[str]:
    ids = ours(pid)
    if not ids:
        return []
    out = subprocess.run(["docker", "inspect", "--format", "{{.Name}}", *ids],
                         capture_output=True, text=True, timeout=30)
    return [name.strip().lstrip("/") for name in out.stdout.split()]


def helpers(pid: int | str, names: list[str]) -> dict[int, str]:
    """Processes working for the run ``pid``: its watchdog, followers and compose commands."""
    marks = [_dog(pid), *names, *(f"-p {n.removesuffix('-ollama')}" for n in names)]
    return {p: c for p, c in cmdlines().items()
            if p != os.getpid() and any(mark in c + " " for mark in marks)}


def settle(pid: int | str, names: list[str], limit: float = 30.0) -> tuple[list[str], dict]:
    """(containers, helper processes) left by run ``pid`` once its helpers had ``limit`` s."""
    deadline = time.monotonic() + limit
    while helpers(pid, names) and time.monotonic() < deadline:
        time.sleep(0.2)
    return ours(pid), helpers(pid, names)


def _dog(pid: int | str) -> str:
    """How the watchdog of run ``pid`` shows in its command line."""
    start = _STARTS.get(str(pid))
    return f"{WATCHDOG} --pid {pid} " + (f"--pid-start {start} " if start else "")


def watchdog_of(pid: int | str) -> int | None:
    for proc, cmd in cmdlines().items():
        if _dog(pid) in cmd + " ":
            return proc
    return None


def children(pid: int | str, word: str) -> list[int]:
    """Child processes of ``pid`` whose command line contains ``word`` (e.g. compose up)."""
    found = []
    for proc, cmd in cmdlines().items():
        try:
            stat = Path(f"/proc/{proc}/stat").read_text()
        except OSError:
            continue
        if stat.rpartition(")")[2].split()[1] == str(pid) and word in cmd:
            found.append(proc)
    return found


def wait_for(predicate, limit: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the inner run ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
