"""The session's shared state: one typed object on one stash key.

Each capability keeps its validated settings and its own per-session state here, one object
per type (``state.put(settings)``, read back with ``state.get(SuiteSettings)``); the targets
capability sets up the client pool; the suite writes TTFT results and behaviour verdicts that
the inventory reads. No plugin imports
another plugin's hook module to reach a service: they all go through :func:`session_of`.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_ollama_regress.dialects import Timeouts
from pytest_ollama_regress.dialects import get as get_dialect
from pytest_ollama_regress.targets.registry import TargetRegistry

if TYPE_CHECKING:
    from pytest_ollama_regress.catalogue.names import ModelEntry
    from pytest_ollama_regress.suite.expectations import Expectations

__all__ = ["SESSION_KEY", "ClientPool", "SessionState", "TtftSeconds", "session_of"]

T = TypeVar("T")


class ClientPool:
    """One client per (dialect, URL) for the session, with the session's timeouts."""

    def __init__(self, timeouts: Timeouts | None = None) -> None:
        self.timeouts = timeouts or Timeouts()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, url: str, dialect: str = "ollama") -> Any:
        """The shared client for ``url`` (created on first use)."""
        key = (dialect, url)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = get_dialect(dialect).client(url, self.timeouts)
            return client

    def close(self) -> None:
        """Close every client (idempotent)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close = getattr(client, "close", None)
            if callable(close):
                close()


@dataclass
class TtftSeconds:
    """TTFT seconds measured per test (node id), written by the suite, read by the inventory."""

    by_test: dict[str, list[float]] = field(default_factory=dict)

    def add(self, nodeid: str, seconds: list[float]) -> None:
        self.by_test.setdefault(nodeid, []).extend(seconds)

    def of(self, nodeid: str) -> list[float]:
        return list(self.by_test.get(nodeid, []))


@dataclass
class SessionState:
    """The targets, settings and state per capability, the client pool, caches per server,
    results for reports."""

    by_type: dict[type, Any] = field(default_factory=dict)
    registry: TargetRegistry = field(default_factory=TargetRegistry)
    clients: ClientPool = field(default_factory=ClientPool)
    #: url -> model -> capabilities
    capabilities: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: url -> the models discovered on it
    catalogues: dict[str, list[ModelEntry]] = field(default_factory=dict)
    #: "target@url" -> what the target promises, once probed
    expectations: dict[str, Expectations] = field(default_factory=dict)
    ttft: TtftSeconds = field(default_factory=TtftSeconds)
    #: the suite's TTFT results (a ``suite.ttft_probe.TtftStore``), kept for the gate
    ttft_results: Any = None
    notes: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def put(self, value: Any) -> None:
        """Keep a capability's settings or state object (one per type)."""
        self.by_type[type(value)] = value

    def get(self, kind: type[T]) -> T:
        """The object of type ``kind`` (``LookupError`` before it is put)."""
        try:
            return self.by_type[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} in this session yet") from None

    def has(self, kind: type) -> bool:
        return kind in self.by_type

    def model_capabilities(self, url: str, dialect: str = "ollama") -> dict[str, list[str]]:
        """Each model's capabilities on the server at ``url`` (asked once per session)."""
        with self.lock:
            if url not in self.capabilities:
                client = self.clients.client(url, dialect)
                self.capabilities[url] = get_dialect(dialect).capabilities(client)
            return self.capabilities[url]


SESSION_KEY = pytest.StashKey[SessionState]()


def session_of(config: pytest.Config) -> SessionState:
    """The session's state, created on first use (any plugin may reach it early)."""
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        state = config.stash[SESSION_KEY] = SessionState()
    return state


def close_session(config: pytest.Config) -> None:
    """Close the clients and stop every target (idempotent; errors are printed, never raised,
    so they cannot mask the session's outcome)."""
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    state.clients.close()
    try:
        state.registry.close()
    except Exception as exc:  # noqa: BLE001 - report, never mask the session's outcome
        print(f"pytest-ollama-regress: closing targets failed: {exc}", file=sys.stderr)
