"""One started Compose project: ``up``, its log follower, what readiness watches, ``down``.

Ordered: ``down`` never overlaps ``up`` (an interrupted ``up`` finishes first, see
:mod:`compose_exec`), the log follower is stopped before the final ``docker logs``,
and every helper process is known to the watchdog while it runs.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pytest_docker import Services

from pytest_ollama_regress.containers.compose_exec import ComposeExecutor, Tracker
from pytest_ollama_regress.containers.compose_file import SERVICE, ComposeSpec
from pytest_ollama_regress.containers.engine import ComposeCommand, DockerEngine

FOLLOW_RESTARTS = 3
LOG_LINES_IN_ERRORS = 20
UP_ARGS = ("up", "-d", "--no-build", "--pull", "never")
DOWN_ARGS = ("down", "-v", "--remove-orphans")
DOWN_TIMEOUT = 120.0


class _NoTracker:
    def track(self, pid: int, kind: str) -> None:
        pass

    def untrack(self, pid: int) -> None:
        pass


class ComposeProject:
    """A generated compose file, the commands run on it and the container's log."""

    def __init__(
        self,
        spec: ComposeSpec,
        workdir: Path,
        compose: ComposeCommand,
        engine: DockerEngine,
        tracker: Tracker | None = None,
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.tracker: Tracker = tracker or _NoTracker()
        self.file = spec.write(workdir)
        self.logs_path = self.file.parent / "ollama.log"
        self.executor = ComposeExecutor(compose, self.file, spec.project, tracker=self.tracker)
        #: pytest-docker's view of the project (``port_for``), on our shell-free executor
        self.services = Services(self.executor)
        self.follower: subprocess.Popen[bytes] | None = None
        self.up_started = False
        self.closed = False
        self._restarts = 0

    @property
    def name(self) -> str:
        return self.spec.container_name

    # lifecycle ------------------------------------------------------------------------------

    def up(self, timeout: float) -> None:
        """``compose up -d``; an interrupt lets it finish before propagating."""
        self.up_started = True
        self.executor.run(UP_ARGS, timeout=timeout)

    def down(self) -> None:
        """``compose down -v`` (absorbing interrupts while it runs), never while ``up`` runs."""
        self.executor.settle()
        self.executor.run(DOWN_ARGS, timeout=DOWN_TIMEOUT, finish=True)

    def follow(self, *, append: bool = False) -> None:
        """Background ``docker logs -f`` into the log file; it ends when the container stops."""
        self.stop_follower()
        docker = shutil.which(self.engine.docker) or self.engine.docker
        with self.logs_path.open("ab" if append else "wb") as log:
            self.follower = subprocess.Popen(
                [docker, "logs", "-f", self.name],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.tracker.track(self.follower.pid, "follower")

    def stop_follower(self) -> None:
        proc, self.follower = self.follower, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self.tracker.untrack(proc.pid)

    def save_logs(self, timeout: float = 30) -> str:
        """Replace the followed log with the whole ``docker logs``; its last lines."""
        self.stop_follower()
        text = self.engine.logs(self.name, timeout=timeout)
        if text:
            self.logs_path.write_text(text, encoding="utf-8")
        else:
            text = self.log_text()
        return "\n".join(text.splitlines()[-LOG_LINES_IN_ERRORS:])

    # what readiness watches (readiness.Watched) ---------------------------------------------

    def log_text(self) -> str:
        try:
            return self.logs_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def follower_running(self) -> bool:
        if self.follower is None or self.follower.poll() is None:
            return True
        # `docker logs -f` ends when the container stops; if it still runs, follow it again.
        if self._restarts < FOLLOW_RESTARTS and self.state().get("Running"):
            self._restarts += 1
            self.follow(append=True)
            return True
        return False

    def state(self) -> dict[str, Any]:
        return self.engine.container_state(self.name) or {}

    def published_port(self) -> int | None:
        try:
            return int(self.services.port_for(SERVICE, self.spec.launch.port))
        except Exception:  # noqa: BLE001 - not published (yet): readiness retries or times out
            return None

    def close_quietly(self) -> None:
        """Stop helpers; never raises (used on paths that already report an error)."""
        with contextlib.suppress(Exception):
            self.stop_follower()
