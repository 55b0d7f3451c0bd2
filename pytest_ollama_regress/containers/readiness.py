"""Readiness with proof of ownership: the server that answers is the container we started.

Any server can answer ``GET /api/version`` on a port; a verdict about an image is only worth
something if the answer came from that image's container. The proof, per network mode:

* **host network**: the container's server listens on ``127.0.0.1:0``, so the kernel gives it a
  free port atomically, and the server logs it: Ollama ``Listening on 127.0.0.1:<port> (version
  <v>)`` right after its ``listen`` succeeded (the simulator logs the same line), llama-server
  ``listening on http://127.0.0.1:<port>`` (the dialect's ``find_listening`` reads either).
  Readiness reads the port from that line in the container's own log, asks that port, then
  checks the container is still running (its log stream is still open): a socket that a
  running process has bound cannot be answered by anyone else, so the answer was the
  container's. A version in the log line must match the answer.
* **bridge network**: Docker publishes the container port on a free 127.0.0.1 port and holds
  it (``docker compose port`` reads it back); the answer must come while the container runs.

A container that exits (or never binds) before that is a start failure with its exit code and
log tail; one that does not get there within the start timeout is a timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_ollama_regress.dialects.base import ContainerLaunch, Listening
from pytest_ollama_regress.dialects.ollama import OLLAMA

#: addresses a 127.0.0.1 client reaches
_LOOPBACK_OR_ANY = {"127.0.0.1", "0.0.0.0", "[::]", "::", "localhost"}


def find_listening(text: str) -> Listening | None:
    """The first ``Listening on HOST:PORT (version V)`` line of an Ollama log, or ``None``."""
    return OLLAMA.launch.find_listening(text)


class NotReady(Exception):
    """The container did not become ready; ``reason`` is ``exited``, ``timeout`` or ``foreign``."""

    def __init__(self, reason: str, message: str, exit_code: Any = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.exit_code = exit_code


class Watched(Protocol):
    """What readiness needs of a started Compose project."""

    def log_text(self) -> str:
        """Everything the container has logged so far."""

    def follower_running(self) -> bool:
        """False once ``docker logs -f`` ended and the container is not running."""

    def state(self) -> dict[str, Any]:
        """``docker inspect`` ``.State`` (empty when the container is gone)."""

    def published_port(self) -> int | None:
        """Bridge network: the 127.0.0.1 port Docker published, ``None`` if not (yet) known."""


Probe = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Ready:
    url: str
    version: str


def wait_ready(
    project: Watched,
    *,
    network: str,
    timeout: float,
    interval: float,
    probe: Probe,
    launch: ContainerLaunch = OLLAMA.launch,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Ready:
    """Wait until the project's own server answers; :class:`NotReady` otherwise.

    ``probe(url)`` returns the version the server answered (Ollama: ``GET /api/version``), or
    ``None``; the dialect's ``launch`` finds the startup line in the log.
    """
    deadline = clock() + timeout
    port: int | None = None
    claimed: str | None = None  # the version the log line claims (host network)
    while True:
        started = clock()
        if port is None:
            if network == "host":
                line = launch.find_listening(project.log_text())
                if line is not None and line.host in _LOOPBACK_OR_ANY:
                    port, claimed = line.port, line.version
                elif line is not None:
                    raise NotReady(
                        "foreign",
                        f"the server listens on {line.host}:{line.port}, which 127.0.0.1 does not "
                        f"reach; the image must honour {' and '.join(launch.reserved_env)}",
                    )
            else:
                port = project.published_port()
        if port is not None:
            url = f"http://127.0.0.1:{port}"
            version = probe(url)
            # An answer counts only while the container still runs (its socket, nobody else's):
            # its log stream is still open (as cheap as it is authoritative: both the stream
            # and ``docker inspect`` are the daemon's view of the process).
            if version is not None and project.follower_running():
                if claimed and version != claimed:
                    raise NotReady(
                        "foreign",
                        f"{url} answered version {version!r} but the container logged "
                        f"version {claimed!r}: another server answers on its port",
                    )
                return Ready(url, version)
        if not project.follower_running():
            state = project.state()
            if not state.get("Running"):
                code = state.get("ExitCode", "unknown") if state else "unknown (container gone)"
                raise NotReady("exited", f"the container exited during start with exit code {code}",
                               exit_code=code)
        if started >= deadline:
            where = f"GET http://127.0.0.1:{port}/api/version" if port is not None else (
                "the server" if network == "host" else "Docker"
            )
            what = "did not answer" if port is not None else (
                f"never logged '{launch.listening_line}'" if network == "host"
                else "never published the port"
            )
            raise NotReady("timeout", f"{where} {what} within {timeout:g}s")
        sleep(max(0.0, interval - (clock() - started)))
