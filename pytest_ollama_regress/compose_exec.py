"""Compose commands as argument vectors: no shell, bounded in time, ordered under interrupts.

pytest-docker's own executor runs ``<command> -f "<file>" -p "<project>" <subcommand>`` through
``/bin/sh``, so a ``$(...)``, a backquote or a ``"`` in the compose file's path (pytest's
basetemp, ``TMPDIR``) would be run or break the command. :class:`ComposeExecutor` runs the same
commands as an argv list; it also implements pytest-docker's executor protocol
(``execute(subcommand) -> bytes``), so pytest-docker's public ``Services`` (``port_for``) works
on top of it without any string of ours reaching a shell.

Every command runs in its own session (a terminal's Ctrl-C does not reach it) and is waited
for before anything else happens to its project:

* ``finish=False`` (``up``): an interrupt stops the command (SIGTERM to its process group,
  SIGKILL after :data:`STOP_GRACE` seconds) and waits until it has exited, then re-raises, so
  it cannot create a container after the clean-up that follows;
* ``finish=True`` (``down``): interrupts are absorbed while it runs (see
  :func:`interrupts.shielded`); one more than that leaves it running on its own, tracked by the
  watchdog.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from pytest_ollama_regress.docker_engine import ComposeCommand, DockerError, docker_host
from pytest_ollama_regress.interrupts import shielded

STOP_GRACE = 10.0
DEFAULT_TIMEOUT = 120.0


class ComposeFailed(DockerError):
    """A compose command failed or timed out; ``output`` is what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Tracker(Protocol):
    """Who must know about running helper processes (the watchdog)."""

    def track(self, pid: int) -> None: ...

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
                self.tracker.track(proc.pid)
            try:
                if finish:
                    with shielded(f"{what} runs"):
                        code = self._wait(proc, limit, what)
                else:
                    code = self._wait(proc, limit, what)
            except KeyboardInterrupt:
                if not finish:
                    with shielded(f"{what} is being stopped"):
                        stop_group(proc)
                raise  # with finish=True it goes on alone; the watchdog knows its pid
            finally:
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
            raise ComposeFailed(
                f"{what} did not finish within {limit:g}s (engine at {docker_host()} is too "
                "slow or stuck)"
            ) from None

    def execute(self, subcommand: str, **kwargs: Any) -> bytes:
        """pytest-docker's executor protocol: run ``subcommand`` (split like a shell would)."""
        try:
            return self.run(shlex.split(subcommand)).encode()
        except ComposeFailed as exc:
            raise Exception(f"{exc}: {exc.output.strip()}") from None  # as pytest-docker raises
