"""The watchdog: a process that outlives pytest's and removes its containers if pytest dies first.

Started (in its own session, so a terminal's Ctrl-C does not reach it) before a process's first
``compose up``. It reads a pipe from its owner: ``track PID START KIND`` / ``untrack PID`` for
compose commands and log followers in flight, ``done`` once the owner has removed everything
itself.
When the pipe ends without ``done`` (the owner was SIGKILLed, died in a signal, gave up on a
clean-up after repeated interrupts or never ran it because another plugin's hook failed), or
the owner process is gone, it:

1. lets tracked compose commands finish (up to :data:`COMPOSE_WAIT` s, then stops them) and
   stops the log followers (SIGTERM to their process groups, SIGKILL after a grace period), so
   a ``compose up`` cannot create a container after step 2 (stopping one mid-request would not
   do: the daemon completes a create it accepted, hence a short grace after any stop);
2. removes every container and network labelled with the owner's pid, pid start time, host
   and session, except those labelled ``keep`` (``--ollama-keep``).

It logs what it did to the file given by its owner and then exits. The next run's reaper
(:mod:`reaper`) remains the last resort for anything it could not remove.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from pytest_ollama_regress.containers.compose_file import LABEL_PID, LABEL_SESSION
from pytest_ollama_regress.containers.reaper import Owner, process_alive, process_start, reap

MODULE = "pytest_ollama_regress.containers.watchdog"
CHECK_INTERVAL = 1.0
STOP_GRACE = 10.0
COMPOSE_WAIT = 300.0  # `compose up` is bounded by the start timeout + 60 s (default 180 s)
DAEMON_GRACE = 3.0  # for a create the daemon accepted from a compose command that was stopped
RELEASE_WAIT = 5.0


class Watchdog:
    """The owner's end of the pipe to its watchdog process."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self._pipe: IO[bytes] | None = proc.stdin
        self.tracked: set[int] = set()

    @classmethod
    def start(cls, owner: Owner, log_path: Path) -> Watchdog:
        """Spawn the watchdog for ``owner`` (this process), logging to ``log_path``."""
        args = [
            sys.executable, "-m", MODULE,
            "--pid", str(owner.pid), "--pid-start", owner.pid_start,
            "--host", owner.host, "--session", owner.session,
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(proc)

    def _send(self, line: str) -> None:
        if self._pipe is None:
            return
        try:
            self._pipe.write(line.encode() + b"\n")
            self._pipe.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._pipe = None  # it died: the reaper of the next run is the fallback

    def track(self, pid: int, kind: str) -> None:
        """A process in flight: ``compose`` (waited for) or ``follower`` (stopped)."""
        self.tracked.add(pid)
        self._send(f"track {pid} {process_start(pid) or '-'} {kind}")

    def untrack(self, pid: int) -> None:
        self.tracked.discard(pid)
        self._send(f"untrack {pid}")

    def release(self) -> None:
        """The owner removed everything itself: the watchdog exits without doing anything
        (unless a tracked process still runs: then it is handed over)."""
        if any(process_alive(pid) for pid in self.tracked):
            self.hand_over()
            return
        self._send("done")
        self._close(wait=True)

    def hand_over(self) -> None:
        """The owner gives up its clean-up: the watchdog does it now (after the owner exits)."""
        self._close(wait=False)

    def _close(self, *, wait: bool) -> None:
        if self._pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                self._pipe.close()
            self._pipe = None
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=RELEASE_WAIT)


# the watchdog process ----------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} watchdog[{os.getpid()}]: {message}", flush=True)


def _watch(pid: int, pid_start: str) -> tuple[bool, dict[int, tuple[str, str]]]:
    """Read the owner's pipe until it ends or the owner is gone: (released, tracked pids with
    their start time and kind)."""
    tracked: dict[int, tuple[str, str]] = {}
    released = False
    stdin = sys.stdin.buffer
    buffer = b""
    while True:
        ready, _, _ = select.select([stdin], [], [], CHECK_INTERVAL)
        if not ready:
            if not process_alive(pid, pid_start):
                return released, tracked  # gone, though a forked child still holds the pipe
            continue
        chunk = os.read(stdin.fileno(), 4096)
        if not chunk:
            return released, tracked
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            word, _, rest = raw.decode(errors="replace").partition(" ")
            if word == "track":
                child, start, kind = (rest.split(" ") + ["", "", ""])[:3]
                with contextlib.suppress(ValueError):
                    tracked[int(child)] = (start.strip("-"), kind or "compose")
            elif word == "untrack":
                with contextlib.suppress(ValueError):
                    tracked.pop(int(rest), None)
            elif word == "done":
                released = True


def _alive(procs: dict[int, str]) -> dict[int, str]:
    return {pid: start for pid, start in procs.items() if process_alive(pid, start)}


def _stop(procs: dict[int, str]) -> None:
    """SIGTERM the process groups, SIGKILL what is left after :data:`STOP_GRACE` s."""
    alive = _alive(procs)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive:
            _log(f"sending {signal.Signals(sig).name} to process group {pid}")
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
        deadline = time.monotonic() + STOP_GRACE
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = _alive(alive)
        if not alive:
            return


def _settle_tracked(tracked: dict[int, tuple[str, str]]) -> None:
    """Followers stop now; compose commands finish (or are stopped after COMPOSE_WAIT s)."""
    followers = {pid: start for pid, (start, kind) in tracked.items() if kind == "follower"}
    composes = _alive({pid: start for pid, (start, kind) in tracked.items() if kind != "follower"})
    _stop(followers)
    if composes:
        _log(f"waiting for compose command(s) {', '.join(map(str, composes))} to finish")
    deadline = time.monotonic() + COMPOSE_WAIT
    while composes and time.monotonic() < deadline:
        time.sleep(0.2)
        composes = _alive(composes)
    if composes:
        _stop(composes)
        time.sleep(DAEMON_GRACE)


def _wait_gone(pid: int, pid_start: str, limit: float = 60.0) -> None:
    """Give an owner that handed over its clean-up the time to exit (bounded)."""
    deadline = time.monotonic() + limit
    while process_alive(pid, pid_start) and time.monotonic() < deadline:
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--pid-start", default="")
    parser.add_argument("--host", required=True)
    parser.add_argument("--session", required=True)
    args = parser.parse_args(argv)
    # Interrupts are for the owner; the watchdog finishes what it starts.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    released, tracked = _watch(args.pid, args.pid_start)
    if released:
        return 0
    _log(f"owner {args.pid} ended without removing its containers; cleaning up")
    _wait_gone(args.pid, args.pid_start)
    _settle_tracked(tracked)
    from pytest_ollama_regress.containers.engine import DockerEngine, DockerError

    try:
        result = reap(
            DockerEngine(), args.host,
            filters=[f"label={LABEL_PID}={args.pid}", f"label={LABEL_SESSION}={args.session}"],
            check_owner=False,
        )
    except DockerError as exc:
        _log(f"removing the containers failed: {exc}")
        return 1
    _log(f"removed {result.count} container(s) {' '.join(result.containers)}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
