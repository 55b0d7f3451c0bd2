"""What is under test and how to reach it: targets, endpoints, providers, the registry.

A :class:`Target` is what the user named (``--ollama-url``, ``--ollama-sim``, ``--ollama-image``)
and carries its server dialect (``"ollama"``; see :mod:`pytest_ollama_regress.dialects`). An
:class:`Endpoint` is a running server for one (target, env) pair. One :class:`Provider` per
target kind turns targets into endpoints; the :class:`TargetRegistry` (on
the session state, see :func:`registry_of`) holds the targets in order, starts
endpoints lazily and caches them per ``(target id, env)``. The built-in providers are in
:mod:`~.providers`.

Adding a provider (how ``containers/plugin.py`` adds kind ``"image"``): implement the hook
``pytest_ollama_register_targets(config, registry)`` (``hookspecs.py``); it is called once,
from ``pytest_configure``, after the url/sim targets of the command line are in the registry
and before the default target is chosen, targets are probed and the header is printed::

    def pytest_ollama_register_targets(config, registry):
        registry.add_provider("image", ContainerProvider(...))
        registry.add_target(Target(id="4beecd8", kind="image", ref=ref, image=info))

A provider whose ``starts_at_configure`` is true is started for the header before tests run
(the url provider: a wrong address stops the run at once); others start on first use (the
simulator and containers), so a run whose tests use no target starts nothing. One whose
``quick_start`` is true (the simulator) is started before the tests when a named model
(``--ollama-model NAME``) must be checked on it. A provider may also define
``describe(target, endpoint) -> str`` for its header line (``endpoint``
is the started env-less endpoint or ``None``); without it the header says "starts on first use".
One that knows the version a target will report before starting it defines
``expected_version(target) -> str`` (the simulator): the header and the inventory use it for
targets not started.
``Endpoint.logs_path`` (or ``log_source``) is attached to the report of every failing test
that used the endpoint. Errors a user can fix are raised as :class:`TargetError` with a
one-line message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pytest

from pytest_ollama_regress.dialects import DEFAULT as DEFAULT_DIALECT

if TYPE_CHECKING:
    from pytest_ollama_regress.containers.engine import ImageInfo
    from pytest_ollama_regress.suite.expectations import Expectations

__all__ = [
    "DEFAULT_SIM_PROFILE",
    "TARGET_FIXTURE",
    "Endpoint",
    "Provider",
    "Target",
    "TargetError",
    "TargetInfo",
    "TargetParam",
    "TargetRegistry",
    "env_key",
    "registry_of",
    "target_id_of",
    "target_param_of",
]

DEFAULT_SIM_PROFILE = "good"
TARGET_FIXTURE = "ollama_target"
LOG_TAIL_LINES = 60

EnvKey = tuple[tuple[str, str], ...]


class TargetError(Exception):
    """A target cannot be used; the message is one line that names the fix."""


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def env_key(env: Mapping[str, str] | None) -> EnvKey:
    """A hashable, order-independent form of an environment."""
    return tuple(sorted((str(k), str(v)) for k, v in (env or {}).items()))


@dataclass
class Target:
    """What the user named: a URL, a simulator profile or an image."""

    id: str
    kind: str
    ref: str
    image: ImageInfo | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: the server family: how it is probed, described and talked to
    dialect: str = DEFAULT_DIALECT


@dataclass
class Endpoint:
    """A running server for one (target, env)."""

    url: str
    server_version: str
    env: dict[str, str]
    logs_path: Path | None = None
    log_source: Callable[[int], list[str]] | None = field(default=None, repr=False, compare=False)
    #: the env of the server is what was asked for (not so for servers somebody else runs)
    env_known: bool = True
    #: an in-process simulator: memory-heavy requests cost nothing
    simulated: bool = False

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str | None:
        """The last ``lines`` log lines of this server, or ``None`` when it keeps no log."""
        if self.log_source is not None:
            tail = list(self.log_source(lines))[-lines:]
        elif self.logs_path is not None:
            tail = _tail_file(Path(self.logs_path), lines)
        else:
            return None
        text = "\n".join(line.rstrip("\n") for line in tail)
        return text or None


def _tail_file(path: Path, lines: int, chunk: int = 65536) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - chunk))
            data = fh.read()
    except OSError as exc:
        return [f"(log file {path} unreadable: {exc})"]
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > chunk and text:
        text = text[1:]  # first line is probably cut
    return text[-lines:]


@dataclass(frozen=True)
class TargetInfo:
    """What a test sees of its target (the ``ollama_target`` fixture)."""

    target: Target
    endpoint: Endpoint

    @property
    def id(self) -> str:
        return self.target.id

    @property
    def kind(self) -> str:
        return self.target.kind

    @property
    def ref(self) -> str:
        return self.target.ref

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def server_version(self) -> str:
        return self.endpoint.server_version

    @property
    def env(self) -> dict[str, str]:
        return dict(self.endpoint.env)

    @property
    def image(self) -> ImageInfo | None:
        return self.target.image

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.target.metadata)

    @property
    def logs_path(self) -> Path | None:
        return self.endpoint.logs_path

    @property
    def dialect(self) -> str:
        return self.target.dialect

    @property
    def env_known(self) -> bool:
        return self.endpoint.env_known

    @property
    def simulated(self) -> bool:
        return self.endpoint.simulated

    @property
    def expect(self) -> Expectations:
        """The version rules of this target's server (see :mod:`~.expectations`)."""
        from pytest_ollama_regress.suite.expectations import Expectations

        return Expectations.for_version(self.server_version)


@dataclass(frozen=True)
class TargetParam:
    """The parameter of ``ollama_target``: a target id and the env its test asked for."""

    target_id: str
    env: EnvKey = ()

    @property
    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def __str__(self) -> str:
        return self.target_id


def target_param_of(item: pytest.Item) -> TargetParam | None:
    """The target parameter of a collected test, or ``None`` when it uses no target."""
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get(TARGET_FIXTURE) if callspec is not None else None
    return param if isinstance(param, TargetParam) else None


def target_id_of(item: pytest.Item) -> str | None:
    """The id of the target a collected test runs against, or ``None``."""
    param = target_param_of(item)
    return param.target_id if param is not None else None


@runtime_checkable
class Provider(Protocol):
    """Turns targets of one kind into running endpoints."""

    def endpoint(self, target: Target, env: Mapping[str, str]) -> Endpoint: ...

    def close(self) -> None: ...


class TargetRegistry:
    """The targets in order, one provider per kind, endpoints cached per (target, env)."""

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}
        self._providers: dict[str, Provider] = {}
        self._endpoints: dict[tuple[str, EnvKey], Endpoint] = {}
        self._failures: dict[tuple[str, EnvKey], TargetError] = {}
        self._lock = threading.RLock()
        self.closed = False

    @property
    def targets(self) -> list[Target]:
        return list(self._targets.values())

    def ids(self) -> list[str]:
        return list(self._targets)

    def add_provider(self, kind: str, provider: Provider) -> None:
        """Register the provider for targets of ``kind`` (one per kind)."""
        current = self._providers.get(kind)
        if current is not None and current is not provider:
            raise ValueError(f"a provider for target kind {kind!r} is already registered")
        self._providers[kind] = provider

    def provider(self, kind: str) -> Provider:
        try:
            return self._providers[kind]
        except KeyError:
            raise TargetError(
                f"no provider for target kind {kind!r} (is the plugin that adds it loaded?)"
            ) from None

    def add_target(self, target: Target) -> Target:
        """Add a target; the same target twice is kept once, two targets with one id are an error."""
        existing = self._targets.get(target.id)
        if existing is not None:
            if (existing.kind, existing.ref) == (target.kind, target.ref):
                return existing
            raise TargetError(
                f"two targets share the id {target.id!r} ({existing.kind} {existing.ref!r} and "
                f"{target.kind} {target.ref!r}); give each a distinct one"
            )
        self._targets[target.id] = target
        return target

    def target(self, target_id: str) -> Target:
        try:
            return self._targets[target_id]
        except KeyError:
            raise TargetError(
                f"unknown target {target_id!r}; targets are: {', '.join(self._targets) or 'none'}"
            ) from None

    def endpoint(self, target_id: str, env: Mapping[str, str] | None = None) -> Endpoint:
        """The running endpoint for (target, env), started on first use and cached.

        A start failure is cached too, so a broken target fails its tests at once.
        """
        target = self.target(target_id)
        key = (target_id, env_key(env))
        with self._lock:
            if self.closed:
                raise TargetError("the target registry is closed (the session has ended)")
            if key in self._endpoints:
                return self._endpoints[key]
            if key in self._failures:
                raise self._failures[key]
            provider = self.provider(target.kind)
            try:
                endpoint = provider.endpoint(target, dict(key[1]))
            except TargetError as exc:
                self._failures[key] = exc
                raise
            self._endpoints[key] = endpoint
            return endpoint

    def started_endpoint(
        self, target_id: str, env: Mapping[str, str] | None = None
    ) -> Endpoint | None:
        """The endpoint for (target, env) if it was started; never starts one."""
        return self._endpoints.get((target_id, env_key(env)))

    def server_version(self, target_id: str) -> str | None:
        """The version the target's env-less server reports: the started endpoint's, else the
        one its provider knows in advance (``expected_version(target)``, the simulator's),
        else ``None``; never starts one."""
        endpoint = self.started_endpoint(target_id)
        if endpoint is not None:
            return endpoint.server_version
        target = self.target(target_id)
        expected = getattr(self._providers.get(target.kind), "expected_version", None)
        return expected(target) if callable(expected) else None

    def failure(self, target_id: str, env: Mapping[str, str] | None = None) -> TargetError | None:
        """The error a failed start of (target, env) left, if any."""
        return self._failures.get((target_id, env_key(env)))

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        """Every started endpoint as (target id, endpoint)."""
        return [(tid, ep) for (tid, _), ep in self._endpoints.items()]

    def describe(self, target_id: str) -> str:
        """One header line for a target, from its provider's ``describe`` when it has one."""
        target = self.target(target_id)
        endpoint = self.started_endpoint(target_id)
        failure = self.failure(target_id)
        if failure is not None:
            return f"{target.kind} {target.ref}, unavailable: {failure}"
        provider = self._providers.get(target.kind)
        describe = getattr(provider, "describe", None)
        if callable(describe):
            return one_line(describe(target, endpoint))
        if endpoint is not None:
            return f"{target.kind} {target.ref}, {describe_server(target, endpoint)} at {endpoint.url}"
        return f"{target.kind} {target.ref}, starts on first use"

    def close(self) -> None:
        """Close every provider (last registered first); raise the first error after all ran."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._endpoints.clear()
            errors: list[BaseException] = []
            for provider in reversed(list(self._providers.values())):
                try:
                    provider.close()
                except Exception as exc:  # noqa: BLE001 - every provider must get its close
                    errors.append(exc)
        if errors:
            raise errors[0]


def describe_server(target: Target, endpoint: Endpoint) -> str:
    """``Ollama 0.12.6``: the target's server family and version."""
    from pytest_ollama_regress.dialects import get

    return get(target.dialect).describe(endpoint.server_version)


def registry_of(config: pytest.Config) -> TargetRegistry:
    """The session's registry (in the session state; created on first use, so any plugin may
    reach it early)."""
    from pytest_ollama_regress.session import session_of

    return session_of(config).registry
