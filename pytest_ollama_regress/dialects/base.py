"""The dialect protocol: how to probe, describe, list models and talk to one kind of server.

A target carries its dialect's name (``Target.dialect``); everything that depends on the
server family asks the dialect instead of comparing names. Suite modules state the dialects
they need with ``pytest.mark.requires_dialect("ollama")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import httpx

__all__ = ["ContainerLaunch", "Dialect", "DialectError", "Listening", "Timeouts", "probe_client"]


class DialectError(Exception):
    """A server cannot be reached or is not of the dialect; one line that names the fix."""


@dataclass(frozen=True)
class Timeouts:
    """The session's timeouts (``--ollama-connect-timeout``, ``--ollama-timeout``,
    ``--ollama-request-timeout``)."""

    connect: float = 5.0
    stall: float = 120.0
    request: float = 600.0


@dataclass(frozen=True)
class Listening:
    """Where a server says (in its log) that it listens, and the version it claims there."""

    host: str
    port: int
    version: str | None = None


@runtime_checkable
class ContainerLaunch(Protocol):
    """How one family's image is started in a container and found in its log."""

    #: the port the server listens on inside a bridge network
    port: int
    #: the startup line that says where it listens, for messages (``Listening on …``)
    listening_line: str
    #: variables the plugin sets (a user's value for them is refused)
    reserved_env: tuple[str, ...]

    def listen_env(self, host: str, port: int) -> dict[str, str]:
        """The environment that makes the server listen on ``host:port`` (port 0: any)."""
        ...

    def check_command(self, command: Sequence[str]) -> None:
        """:class:`DialectError` naming the fix when ``--ollama-server-args`` sets what the
        plugin owns (the address, the port)."""
        ...

    def models_env(self, mount: str, folder: Path, read_only: bool, env: Mapping[str, str],
                   command: Sequence[str]) -> dict[str, str]:
        """The environment for a models folder mounted at ``mount``, given the user's ``env``
        and the container's ``command`` (arguments after the entrypoint); :class:`DialectError`
        naming the fix when the folder cannot be used as it is."""
        ...

    def find_listening(self, log: str) -> Listening | None:
        """The first line of ``log`` that says where the server listens, or ``None``."""
        ...


@runtime_checkable
class Dialect(Protocol):
    """One server family."""

    #: the name targets carry, e.g. ``"ollama"``
    name: str
    #: what the family is called in messages and headers, e.g. ``"Ollama"``
    title: str

    def probe(self, url: str, *, timeout: float, what: str) -> str:
        """The server's version string, all of it within ``timeout``; :class:`DialectError`
        naming the fix when nothing (or another kind of server) answers."""
        ...

    def client(self, url: str, timeouts: Timeouts) -> Any:
        """A client for the server at ``url`` (closed with ``close()``)."""
        ...

    def capabilities(self, client: Any) -> dict[str, list[str]]:
        """Each model the server offers, with its capabilities (``vision``, ``completion``...)."""
        ...

    def catalogue(self, client: Any) -> list[Any]:
        """The server's models as ``catalogue.names.ModelEntry`` items, in its order."""
        ...

    def describe(self, version: str) -> str:
        """The server in a header line, e.g. ``"Ollama 0.12.6"``."""
        ...

    #: how its images are started in a container
    launch: ContainerLaunch

    def claims(self, entrypoint: Sequence[str], labels: Mapping[str, str]) -> bool:
        """Whether an image with this entrypoint (and command) and labels runs this family's
        server (e.g. ``/app/llama-server``), for images whose dialect is not stated."""
        ...


@contextlib.contextmanager
def probe_client(url: str, *, timeout: float, what: str, path: str) -> Iterator[httpx.Client]:
    """An httpx client for a probe: all of it within ``timeout`` (a trickling body too);
    transport failures become one-line :class:`DialectError` naming ``path`` and the fix."""
    import httpx  # on first use: a session that starts no server never loads it

    from pytest_ollama_regress.dialects import deadlines

    try:
        # Certificates only matter for https; skipping their load makes a probe ~50x faster.
        with deadlines.limits(total=timeout), httpx.Client(
            transport=deadlines.transport(verify=url.startswith("https:")), timeout=timeout,
            trust_env=False, follow_redirects=False,
        ) as http:
            yield http
    except httpx.TimeoutException as exc:
        raise DialectError(
            f"{what}: no answer from GET {path} within {timeout:g} s "
            f"({type(exc).__name__}); check the address or raise --ollama-connect-timeout"
        ) from None
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DialectError(
            f"{what}: cannot connect ({reason}); start the server or fix the address"
        ) from None
