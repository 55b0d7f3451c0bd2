"""Compose commands as argument vectors: no shell, bounded in time, ordered under interrupts.

pytest-docker's own executor runs ``<command> -f "<file>" -p "<project>" <subcommand>`` through
``/bin/sh``, so a ``$(...)``, a backquote or a ``"`` in the compose file's path (pytest's
basetemp, ``TMPDIR``) would be run or break the command. :class:`ComposeExecutor` runs the same
commands as an argv list; it also implements pytest-docker's executor protocol
(``execute(subcommand) -> bytes``), so pytest-docker's public ``Services`` (``port_for``) works
on top of it without any string of ours reaching a shell.

Every command runs in its own session (a terminal's Ctrl-C does not reach it) and is waited
for before anything else happens to its project:

* an interrupt during ``up`` lets it finish first (absorbing further interrupts, see
  :func:`interrupts.shielded`) and only then goes on, so ``down`` runs after it. Stopping
  ``up`` instead is not safe: a create request the daemon has already accepted still
  completes after compose exits, and the container would appear after the clean-up looked;
* ``finish=True`` (``down``): interrupts are absorbed while it runs.

In both, one interrupt more than the shield allows leaves the command running on its own,
tracked by the watchdog, which waits for it before it removes anything. A command past its
timeout is stopped (SIGTERM to its process group, SIGKILL after :data:`STOP_GRACE` s).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from pytest_ollama_regress.containers.engine import (
    ComposeCommand,
    DockerError,
    docker_host,
)
from pytest_ollama_regress.containers.interrupts import shielded

STOP_GRACE = 10.0
DAEMON_GRACE = 2.0  # after stopping compose mid-request: a create the daemon accepted completes
DEFAULT_TIMEOUT = 120.0


class ComposeFailed(DockerError):
    """A compose command failed or timed out; ``output`` is what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Tracker(Protocol):
    """Who must know about running helper processes (the watchdog)."""

    def track(self, pid: int, kind: str) -> None:
        """``kind``: ``compose`` (waited for) or ``follower`` (stopped at once)."""

    def untrack(self, pid: int) -> None: ...


def stop_group(proc: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """SIGTERM the process group of ``proc`` (a session leader), SIGKILL it after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


class ComposeExecutor:
    """``compose -f FILE -p PROJECT ARGS...`` without a shell (pytest-docker's executor protocol)."""

    def __init__(
        self,
        command: ComposeCommand,
        file: Path,
        project: str,
        *,
        tracker: Tracker | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.command = command
        self.file = Path(file)
        self.project = project
        self.tracker = tracker
        self.timeout = timeout
        #: a command an interrupt left running on its own (see :meth:`settle`)
        self.left_running: subprocess.Popen[Any] | None = None

    def argv(self, args: Sequence[str]) -> list[str]:
        return [*self.command.argv, "-f", str(self.file), "-p", self.project, *args]

    def run(self, args: Sequence[str], *, timeout: float | None = None, finish: bool = False) -> str:
        """Run ``compose ... ARGS``; its output, or :class:`ComposeFailed` (exit status, timeout)."""
        limit = self.timeout if timeout is None else timeout
        what = f"`compose {' '.join(args[:1])}`"
        with tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                self.argv(args),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            if self.tracker is not None:
                self.tracker.track(proc.pid, "compose")
            deadline = time.monotonic() + limit
            try:
                if finish:
                    with shielded(f"{what} runs"):
                        code = self._wait(proc, limit, what)
                else:
                    code = self._wait(proc, limit, what)
            except KeyboardInterrupt:
                if not finish:
                    with shielded(f"{what} finishes"), contextlib.suppress(ComposeFailed):
                        self._wait(proc, max(deadline - time.monotonic(), 1.0), what)
                raise  # if it still runs, it goes on alone; the watchdog knows its pid
            finally:
                self.left_running = proc if proc.poll() is None else None
                if self.tracker is not None and proc.poll() is not None:
                    self.tracker.untrack(proc.pid)
            out.seek(0)
            text = out.read().decode("utf-8", errors="replace")
        if code != 0:
            raise ComposeFailed(f"{what} failed with exit status {code}", text)
        return text

    @staticmethod
    def _wait(proc: subprocess.Popen[Any], limit: float, what: str) -> int:
        try:
            return proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            time.sleep(DAEMON_GRACE)
            raise ComposeFailed(
                f"{what} did not finish within {limit:g}s (engine at {docker_host()} is too "
                "slow or stuck)"
            ) from None

    def settle(self, timeout: float | None = None) -> None:
        """Wait for a command an interrupt left running (bounded; stopped after that)."""
        proc, self.left_running = self.left_running, None
        if proc is None or proc.poll() is not None:
            return
        with shielded("a compose command finishes"):
            try:
                proc.wait(timeout=self.timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                stop_group(proc)
                time.sleep(DAEMON_GRACE)
        if self.tracker is not None:
            self.tracker.untrack(proc.pid)

    def execute(self, subcommand: str, **kwargs: Any) -> bytes:
        """pytest-docker's executor protocol: run ``subcommand`` (split like a shell would)."""
        try:
            return self.run(shlex.split(subcommand)).encode()
        except ComposeFailed as exc:
            raise Exception(f"{exc}: {exc.output.strip()}") from None  # as pytest-docker raises
