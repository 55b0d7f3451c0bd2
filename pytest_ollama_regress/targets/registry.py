"""What is under test and how to reach it: targets, endpoints, providers, the registry.

A :class:`Target` is what the user named (``--ollama-url``, ``--ollama-sim``, ``--ollama-image``).
An :class:`Endpoint` is a running server for one (target, env) pair. One :class:`Provider` per
target kind turns targets into endpoints; the :class:`TargetRegistry` (on
``config.stash[REGISTRY_KEY]``, see :func:`registry_of`) holds the targets in order, starts
endpoints lazily and caches them per ``(target id, env)``.

Built-in providers: :class:`UrlProvider` (kind ``"url"``: a server somebody else runs; a
non-empty env skips the test) and :class:`SimProvider` (kind ``"sim"``: one in-process
``SimServer`` per distinct env).

Adding a provider from another plugin (how ``plugins/containers.py`` adds kind ``"image"``):
implement the hook ``pytest_ollama_register_targets(config, registry)``; it is called once, from
``pytest_configure``, after the url/sim targets of the command line are in the registry and
before the plugin decides whether the embedded simulator is the default target, probes targets
and prints the header::

    def pytest_ollama_register_targets(config, registry):
        registry.add_provider("image", ContainerProvider(...))
        for ref in config.getoption("ollama_image") or []:
            registry.add_target(Target(id="4beecd8", kind="image", ref=ref, image=info))

A provider may also define ``describe(target, endpoint) -> str`` for its header line (``endpoint``
is the started env-less endpoint or ``None``); without it the header says "starts on first use".
``Endpoint.logs_path`` (or ``log_source``) is attached to the report of every failing test
that used the endpoint. Errors a user can fix are raised as :class:`TargetError` with a
one-line message.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
import pytest

from pytest_ollama_regress.dialects import deadlines

if TYPE_CHECKING:
    from pytest_ollama_regress.containers.provider import ImageInfo
    from pytest_ollama_regress.suite.expectations import Expectations

__all__ = [
    "DEFAULT_SIM_PROFILE",
    "REGISTRY_KEY",
    "TARGET_FIXTURE",
    "Endpoint",
    "Provider",
    "SimProvider",
    "Target",
    "TargetError",
    "TargetInfo",
    "TargetParam",
    "TargetRegistry",
    "UrlProvider",
    "env_key",
    "probe_version",
    "registry_of",
    "sim_targets",
    "target_id_of",
    "target_param_of",
    "url_target",
]

DEFAULT_SIM_PROFILE = "good"
TARGET_FIXTURE = "ollama_target"
LOG_TAIL_LINES = 60
URL_ENV_SKIP = (
    "--ollama-url targets run with the server's own environment; use --ollama-image or --ollama-sim"
)

EnvKey = tuple[tuple[str, str], ...]


class TargetError(Exception):
    """A target cannot be used; the message is one line that names the fix."""


def _one_line(text: object) -> str:
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


@dataclass
class Endpoint:
    """A running server for one (target, env)."""

    url: str
    server_version: str
    env: dict[str, str]
    logs_path: Path | None = None
    log_source: Callable[[int], list[str]] | None = field(default=None, repr=False, compare=False)

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


def probe_version(url: str, *, timeout: float, what: str | None = None) -> str:
    """``GET /api/version`` of ``url``, all of it within ``timeout`` (a trickling body too);
    a one-line :class:`TargetError` when it is no Ollama."""
    name = what or url
    try:
        # Certificates only matter for https; skipping their load makes an http probe ~50x faster.
        verify = url.startswith("https:")
        with deadlines.limits(total=timeout), httpx.Client(
            transport=deadlines.transport(verify=verify),
            timeout=timeout,
            trust_env=False,
            follow_redirects=False,
        ) as http:
            response = http.get(url.rstrip("/") + "/api/version")
    except httpx.TimeoutException as exc:
        raise TargetError(
            f"{name}: no answer from GET /api/version within {timeout:g} s "
            f"({type(exc).__name__}); check the address or raise --ollama-connect-timeout"
        ) from None
    except httpx.HTTPError as exc:
        raise TargetError(
            f"{name}: cannot connect ({_one_line(exc) or type(exc).__name__}); start the server "
            "or fix the address"
        ) from None
    try:
        data = response.json()
    except ValueError:
        data = None
    version = data.get("version") if isinstance(data, dict) else None
    if response.status_code != 200 or not isinstance(version, str):
        ctype = response.headers.get("content-type", "no content type").split(";")[0]
        raise TargetError(
            f"{name}: not an Ollama server (GET /api/version gave HTTP {response.status_code} "
            f'{ctype}, not JSON with a "version"); point it at Ollama\'s API (port 11434 by '
            "default)"
        )
    return version


def url_target(text: str, source: str = "--ollama-url") -> Target:
    """A target for an Ollama URL such as ``http://127.0.0.1:11434``."""
    fix = "write it as http://HOST:PORT, e.g. http://127.0.0.1:11434"
    raw = text.strip()
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{source} {raw!r} is malformed ({_one_line(exc)}); {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{source} {raw!r} is not an http(s) URL with a host; {fix}")
    if parts.query or parts.fragment:
        raise TargetError(f"{source} {raw!r} has a query or fragment; {fix}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    auth = parts.netloc.rpartition("@")[0]
    url = f"{parts.scheme}://{auth + '@' if auth else ''}{netloc}{path}"
    return Target(id=f"{netloc}{path}", kind="url", ref=raw, metadata={"url": url})


def sim_targets(
    specs: Iterable[tuple[str, str]], default_version: str | None = None, *, default: bool = False
) -> list[Target]:
    """Targets for ``PROFILE[@VERSION]`` specs given as ``(spec, source)`` pairs.

    ``default_version`` (the simulator's ``DEFAULT_VERSION`` when ``None``) applies to specs
    without ``@VERSION``. Ids are ``sim-<profile>``, with ``-<version>`` when the specs ask for several versions.
    """
    specs = list(specs)
    if not specs:
        return []
    try:
        from pytest_ollama_regress.sim import DEFAULT_VERSION, PROFILES, check_version
    except ImportError as exc:
        raise TargetError(f"the simulator cannot be loaded ({_one_line(exc)})") from None

    default_version = default_version or DEFAULT_VERSION
    wanted: list[tuple[str, str]] = []
    for spec, source in specs:
        profile, _, version = spec.strip().partition("@")
        version = version or default_version
        if profile not in PROFILES:
            hint = (
                "; write --ollama-sim=PROFILE (a bare --ollama-sim takes the next argument)"
                if "/" in profile or profile.endswith(".py")
                else ""
            )
            raise TargetError(
                f"{source} {spec!r}: unknown simulator profile {profile!r}; choose one of: "
                f"{', '.join(PROFILES)}{hint}"
            )
        try:
            check_version(version)
        except ValueError as exc:
            raise TargetError(f"{source} {spec!r}: {_one_line(exc)}") from None
        if (profile, version) not in wanted:
            wanted.append((profile, version))
    versioned = len({version for _, version in wanted}) > 1
    return [
        Target(
            id=f"sim-{profile}-{version}" if versioned else f"sim-{profile}",
            kind="sim",
            ref=f"{profile}@{version}" if versioned else profile,
            metadata={"profile": profile, "sim_version": version, "default": default},
        )
        for profile, version in wanted
    ]


class UrlProvider:
    """Servers run by somebody else: probed once, never started, env cannot be chosen."""

    kind = "url"

    def __init__(self, probe_timeout: float = 5.0) -> None:
        self.probe_timeout = probe_timeout

    def endpoint(self, target: Target, env: Mapping[str, str]) -> Endpoint:
        if env:
            pytest.skip(URL_ENV_SKIP)
        url = target.metadata.get("url", target.ref)
        version = probe_version(url, timeout=self.probe_timeout, what=f"--ollama-url {target.ref}")
        return Endpoint(url=url, server_version=version, env={})

    def describe(self, target: Target, endpoint: Endpoint | None) -> str:
        version = endpoint.server_version if endpoint else "not probed"
        return f"{target.metadata.get('url', target.ref)}, Ollama {version}"

    def close(self) -> None:
        """Nothing to stop: the server is not ours."""


class SimProvider:
    """The project's simulator, in process: one ``SimServer`` per distinct env."""

    kind = "sim"

    def __init__(self, probe_timeout: float = 5.0) -> None:
        self.probe_timeout = probe_timeout
        #: environment of every simulator (``--ollama-env``); ``ollama_env`` markers win
        self.base_env: dict[str, str] = {}
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self.servers: list[Any] = []

    def endpoint(self, target: Target, env: Mapping[str, str]) -> Endpoint:
        profile = target.metadata.get("profile", target.ref)
        version = target.metadata.get("sim_version")
        env = {**self.base_env, **env}
        kwargs: dict[str, Any] = {
            "profile": profile,
            "env": env,
            "host": "127.0.0.1",
            "log_stream": _Discard(),
        }
        if version:
            kwargs["version"] = version
        try:
            from pytest_ollama_regress.sim import SimServer

            server = SimServer(port=0, **kwargs)
            with self._lock:
                self._stack.enter_context(server)
                self.servers.append(server)
        except (ImportError, OSError, ValueError, RuntimeError) as exc:
            raise TargetError(
                f"simulator {target.id} (env {dict(env) or '{}'}) did not start: "
                f"{type(exc).__name__}: {_one_line(exc)}"
            ) from None
        reported = probe_version(
            server.url, timeout=self.probe_timeout, what=f"simulator {target.id}"
        )
        return Endpoint(
            url=server.url,
            server_version=reported,
            env=dict(env),
            log_source=_sim_log_source(server),
        )

    def describe(self, target: Target, endpoint: Endpoint | None) -> str:
        profile = target.metadata.get("profile", target.ref)
        if endpoint is None:
            return f"embedded simulator, profile {profile}, starts on first use"
        return f"embedded simulator, profile {profile}, Ollama {endpoint.server_version} at {endpoint.url}"

    def close(self) -> None:
        with self._lock:
            self.servers.clear()
            self._stack.close()


class _Discard:
    """A text stream that drops what it is given (the log tail is kept by the server)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _sim_log_source(server: Any) -> Callable[[int], list[str]] | None:
    """The simulator's recent log lines, if this ``SimServer`` keeps them."""
    log_lines = getattr(server, "log_lines", None)
    if not callable(log_lines):
        return None
    return lambda n: [str(line) for line in log_lines()[-n:]]


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
            return _one_line(describe(target, endpoint))
        if endpoint is not None:
            return f"{target.kind} {target.ref}, Ollama {endpoint.server_version} at {endpoint.url}"
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


REGISTRY_KEY = pytest.StashKey[TargetRegistry]()


def registry_of(config: pytest.Config) -> TargetRegistry:
    """The session's registry, created on first use (so any plugin may reach it early)."""
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None:
        registry = config.stash[REGISTRY_KEY] = TargetRegistry()
    return registry
