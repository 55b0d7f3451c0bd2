#!/usr/bin/env python3
"""Fault matrix: how runs with ``--ollama-image`` end, and what each one leaves behind.

Every case runs an inner ``pytest --ollama-image IMAGE`` N times (``--runs``, default 20) and
ends it one way: it passes, fails, stops at ``-x``, has a fixture error, meets a failing
``pytest_unconfigure`` in a conftest, gets Ctrl-C mid-test, Ctrl-C 0.3 s into ``compose up``,
a second Ctrl-C during ``compose down``, SIGTERM, SIGHUP, SIGKILL (counted before and after
the next run) or loses an xdist worker to SIGKILL. Signals that a terminal sends (SIGINT,
SIGHUP) go to the run's process group, the others to its process.

After each run ends, helpers get up to ``--settle`` seconds to exit; then the script counts

* **containers left**: containers labelled with the pid (and the pid's start time: pids recycle,
  and other runs may share the engine) of the run or of any of its workers;
* **helpers left**: processes still working for the run: its watchdogs, ``docker logs -f`` of
  its containers, ``docker compose -p <its project>``.

Anything left is removed before the next run, so runs do not add up. Needs an engine at
DOCKER_HOST and the simulator images::

    eval "$(bash .ci/docker-up.sh)"
    python fixtures/images/build_sim_images.py >/dev/null
    python benchmarks/bench_fault_matrix.py [--runs 20] [--case sigterm ...] [--json out.json]

Exit status 1 if anything was left where nothing should be.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

IMAGE = "ollama-regress-sim:good"
LABEL_PID = "io.ollama-regress.pid"
LABEL_PID_START = "io.ollama-regress.pid-start"
WATCHDOG = "pytest_ollama_regress.containers.watchdog"
RUN_LIMIT = 180.0

RECORD = """
import os, time
import pytest


@pytest.fixture(scope="session", autouse=True)
def _pid(pytestconfig):
    start = open("/proc/self/stat").read().rpartition(")")[2].split()[19]
    with open(pytestconfig.rootpath / "pids.txt", "a") as fh:
        print(os.getpid(), start, file=fh)
"""
SLEEPER = RECORD + """

def test_sleeps(ollama, pytestconfig):
    (pytestconfig.rootpath / "ready.txt").write_text(str(os.getpid()))
    time.sleep(120)
"""
TESTS = {
    "pass": RECORD + "\n\ndef test_ok(ollama):\n    assert ollama.version()\n",
    "fail": RECORD + "\n\ndef test_fails(ollama):\n    assert False\n",
    "exitfirst": RECORD + (
        "\n\ndef test_a_fails(ollama):\n    assert False\n\n\n"
        "def test_b_never_runs(ollama):\n    pass\n"
    ),
    "fixture-error": RECORD + (
        "\n\n@pytest.fixture\ndef broken(ollama):\n    raise RuntimeError('fixture error')\n\n\n"
        "def test_x(broken):\n    pass\n"
    ),
    "sleeper": SLEEPER,
    "xdist-kill": RECORD + (
        "\nimport signal\n\n\ndef test_dies(ollama):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
        "\n\ndef test_lives(ollama):\n    assert ollama.version()\n"
    ),
}
FAILING_UNCONFIGURE = "def pytest_unconfigure(config):\n    raise RuntimeError('boom')\n"


@dataclass
class Run:
    """One inner run and what it left."""

    code: int | None
    seconds: float
    containers: int
    helpers: int
    containers_after_next: int | None = None
    helpers_after_next: int | None = None
    note: str = ""


@dataclass
class Case:
    name: str
    what: str
    test: str
    act: Callable[[subprocess.Popen, Path], str]
    args: tuple[str, ...] = ()
    conftest: str = ""
    next_run: bool = False
    runs: list[Run] = field(default_factory=list)


# what happens to a run --------------------------------------------------------------------


def _cmdlines() -> dict[int, str]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            found[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace") + " "
    return found


def _children(pid: int, word: str) -> list[int]:
    out = []
    for proc, cmd in _cmdlines().items():
        try:
            ppid = Path(f"/proc/{proc}/stat").read_text().rpartition(")")[2].split()[1]
        except (OSError, IndexError):
            continue
        if ppid == str(pid) and word in cmd:
            out.append(proc)
    return out


def _wait(predicate: Callable[[], object], limit: float, proc: subprocess.Popen) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def wait_only(proc: subprocess.Popen, folder: Path) -> str:
    return ""


def _when_ready(then: Callable[[subprocess.Popen], None]) -> Callable[[subprocess.Popen, Path], str]:
    def act(proc: subprocess.Popen, folder: Path) -> str:
        if not _wait(lambda: (folder / "ready.txt").exists(), 120, proc):
            return "never ready"
        then(proc)
        return ""

    return act


def _group(sig: signal.Signals) -> Callable[[subprocess.Popen], None]:
    return lambda proc: os.killpg(proc.pid, sig)


def _process(sig: signal.Signals) -> Callable[[subprocess.Popen], None]:
    return lambda proc: proc.send_signal(sig)


def sigint_during_up(proc: subprocess.Popen, folder: Path) -> str:
    if not _wait(lambda: _children(proc.pid, " up -d"), 120, proc):
        return "compose up not seen"
    time.sleep(0.3)
    during = bool(_children(proc.pid, " up -d"))
    os.killpg(proc.pid, signal.SIGINT)
    return "" if during else "up had ended"


def double_sigint(proc: subprocess.Popen, folder: Path) -> str:
    if not _wait(lambda: (folder / "ready.txt").exists(), 120, proc):
        return "never ready"
    os.killpg(proc.pid, signal.SIGINT)
    if not _wait(lambda: _children(proc.pid, " down -v"), 60, proc):
        return "compose down not seen"
    os.killpg(proc.pid, signal.SIGINT)
    return ""


CASES = [
    Case("pass", "the test passes", TESTS["pass"], wait_only),
    Case("fail", "the test fails", TESTS["fail"], wait_only),
    Case("exitfirst", "-x after a failure", TESTS["exitfirst"], wait_only, ("-x",)),
    Case("fixture-error", "a fixture using ollama raises", TESTS["fixture-error"], wait_only),
    Case("unconfigure-error", "a conftest's pytest_unconfigure raises", TESTS["pass"], wait_only,
         conftest=FAILING_UNCONFIGURE),
    Case("sigint", "Ctrl-C (process group) mid-test", SLEEPER, _when_ready(_group(signal.SIGINT))),
    Case("sigint-during-up", "Ctrl-C (process group) 0.3 s into compose up", TESTS["pass"],
         sigint_during_up),
    Case("double-sigint", "Ctrl-C, then Ctrl-C again during compose down", SLEEPER,
         double_sigint),
    Case("sigterm", "SIGTERM to the process mid-test", SLEEPER,
         _when_ready(_process(signal.SIGTERM))),
    Case("sighup", "SIGHUP (process group) mid-test", SLEEPER, _when_ready(_group(signal.SIGHUP))),
    Case("sigkill", "SIGKILL mid-test; counted before and after the next run", SLEEPER,
         _when_ready(_process(signal.SIGKILL)), next_run=True),
    Case("xdist-worker-kill", "-n 2: a worker SIGKILLs itself mid-test", TESTS["xdist-kill"],
         wait_only, ("-n", "2")),
]


# counting ----------------------------------------------------------------------------------


def _start(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _pids(folder: Path, proc: subprocess.Popen, start: str) -> dict[str, str]:
    """pid -> start time of the run and of every worker that set up a test."""
    pids = {str(proc.pid): start}
    if (folder / "pids.txt").exists():
        for line in (folder / "pids.txt").read_text().splitlines():
            pid, _, pid_start = line.partition(" ")
            pids[pid] = pid_start.strip()
    return pids


def containers_of(pids: dict[str, str]) -> list[str]:
    ids: list[str] = []
    for pid, start in pids.items():
        args = ["docker", "ps", "-aq", "--filter", f"label={LABEL_PID}={pid}"]
        if start:
            args += ["--filter", f"label={LABEL_PID_START}={start}"]
        ids += subprocess.run(args, capture_output=True, text=True, timeout=60).stdout.split()
    return ids


def helpers_of(pids: dict[str, str], folder: Path) -> list[int]:
    projects = [p.parent.name for p in folder.glob("bt/**/olr-*/compose.yaml")]
    marks = [f"{WATCHDOG} --pid {pid} --pid-start {start} " for pid, start in pids.items()]
    marks += [f"-p {p} " for p in projects] + [f"{p}-ollama " for p in projects]
    return [proc for proc, cmd in _cmdlines().items() if any(m in cmd for m in marks)]


def settle(pids: dict[str, str], folder: Path, limit: float) -> tuple[list[str], list[int]]:
    deadline = time.monotonic() + limit
    while helpers_of(pids, folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    return containers_of(pids), helpers_of(pids, folder)


def tidy(ids: list[str], helpers: list[int]) -> None:
    for proc in helpers:
        with contextlib.suppress(OSError):
            os.kill(proc, signal.SIGKILL)
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, timeout=120)


def _like_a_terminal() -> None:
    """In the child: the signal dispositions of a terminal's foreground job (this script may
    itself run under ``nohup`` or in the background, where SIGHUP/SIGINT are ignored and that
    would be inherited; the plugin rightly leaves an ignored SIGHUP alone)."""
    for sig in (signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def pytest_argv(folder: Path, image: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
            f"--basetemp={folder / 'bt'}", f"--ollama-image={image}", *args]


def one_run(case: Case, image: str, settle_s: float) -> Run:
    folder = Path(tempfile.mkdtemp(prefix=f"fault-{case.name}-"))
    try:
        (folder / "test_inner.py").write_text(case.test)
        if case.conftest:
            (folder / "conftest.py").write_text(case.conftest)
        started = time.monotonic()
        proc = subprocess.Popen(
            pytest_argv(folder, image, *case.args, "test_inner.py"), cwd=folder,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_like_a_terminal,
        )
        start = _start(proc.pid)
        note = case.act(proc, folder)
        try:
            code = proc.wait(timeout=RUN_LIMIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code, note = proc.wait(), (note + " hung").strip()
        seconds = time.monotonic() - started
        pids = _pids(folder, proc, start)
        ids, helpers = settle(pids, folder, settle_s)
        run = Run(code, seconds, len(ids), len(helpers), note=note)
        if case.next_run:
            (folder / "test_inner.py").write_text(TESTS["pass"])
            nxt = subprocess.run(pytest_argv(folder, image, "test_inner.py"), cwd=folder,
                                 capture_output=True, timeout=RUN_LIMIT)
            if nxt.returncode != 0:
                run.note = (run.note + f" next run exited {nxt.returncode}").strip()
            ids, helpers = settle(pids, folder, settle_s)
            run.containers_after_next, run.helpers_after_next = len(ids), len(helpers)
        tidy(ids, helpers)
        return run
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per case (default 20)")
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES],
                        help="only these cases (repeatable; default all)")
    parser.add_argument("--image", default=IMAGE)
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds helpers get to exit after a run ends (default 20)")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    cases = [c for c in CASES if not args.case or c.name in args.case]
    total_started = time.monotonic()
    for case in cases:
        for n in range(args.runs):
            run = one_run(case, args.image, args.settle)
            case.runs.append(run)
            print(f"{case.name} {n + 1}/{args.runs}: exit {run.code}, {run.seconds:.1f}s, "
                  f"containers {run.containers}, helpers {run.helpers}"
                  + (f", after next run {run.containers_after_next}/{run.helpers_after_next}"
                     if case.next_run else "") + (f" ({run.note})" if run.note else ""),
                  file=sys.stderr, flush=True)
    print(f"\n{args.runs} run(s) per case, image {args.image}, "
          f"{(time.monotonic() - total_started) / 60:.1f} min\n")
    print("| case | what | exit codes | containers left | helpers left | runs with leftovers "
          "| median s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    bad = False
    for case in cases:
        runs = case.runs
        codes = ", ".join(f"{code}×{sum(r.code == code for r in runs)}"
                          for code in sorted({r.code for r in runs}, key=str))
        containers = sum(r.containers for r in runs)
        helpers = sum(r.helpers for r in runs)
        leftover = sum(1 for r in runs if r.containers or r.helpers)
        cell_c, cell_h = str(containers), str(helpers)
        if case.next_run:
            after_c = sum(r.containers_after_next or 0 for r in runs)
            after_h = sum(r.helpers_after_next or 0 for r in runs)
            cell_c, cell_h = f"{containers} → {after_c} after next run", f"{helpers} → {after_h}"
            leftover = sum(1 for r in runs if r.containers_after_next or r.helpers_after_next)
            bad |= bool(after_c or after_h)
        else:
            bad |= bool(containers or helpers)
        notes = "; ".join(sorted({r.note for r in runs if r.note}))
        median = statistics.median(r.seconds for r in runs)
        print(f"| {case.name} | {case.what} | {codes} | {cell_c} | {cell_h} | "
              f"{leftover}/{len(runs)} | {median:.1f} | {notes} |")
    if args.json:
        data = {c.name: [vars(r) for r in c.runs] for c in cases}
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
