"""The built-in providers: servers somebody else runs (``--ollama-url``) and the embedded
simulator (``--ollama-sim``); the target constructors their options use."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from pytest_ollama_regress.dialects import DEFAULT as DEFAULT_DIALECT
from pytest_ollama_regress.dialects import DialectError
from pytest_ollama_regress.dialects import get as get_dialect
from pytest_ollama_regress.dialects import names as dialect_names
from pytest_ollama_regress.targets.registry import (
    Endpoint,
    Target,
    TargetError,
    one_line,
)

__all__ = ["SimProvider", "UrlProvider", "probe_version", "sim_targets", "url_target"]

URL_ENV_SKIP = (
    "--ollama-url targets run with the server's own environment; use --ollama-image or --ollama-sim"
)


def probe_version(url: str, *, timeout: float, what: str | None = None,
                  dialect: str = DEFAULT_DIALECT) -> str:
    """The version the server at ``url`` reports, asked the way its dialect asks (Ollama:
    ``GET /api/version``), all of it within ``timeout``; a one-line :class:`TargetError`
    when it does not answer as that kind of server."""
    try:
        return get_dialect(dialect).probe(url, timeout=timeout, what=what or url)
    except DialectError as exc:
        raise TargetError(str(exc)) from None


def url_target(text: str, source: str = "--ollama-url") -> Target:
    """A target for a server URL such as ``http://127.0.0.1:11434``; ``DIALECT+`` in front
    (``llama-server+http://127.0.0.1:8080``) states its dialect, which is otherwise found by
    probing (Ollama first)."""
    fix = "write it as http://HOST:PORT, e.g. http://127.0.0.1:11434"
    given = text.strip()
    stated, plus, rest = given.partition("+")
    raw = rest if plus and "://" not in stated and stated else given
    dialect = stated if raw is not given else None
    if dialect is not None and dialect not in dialect_names():
        raise TargetError(f"{source} {given!r}: unknown server dialect {dialect!r}; write "
                          f"{' or '.join(n + '+' for n in dialect_names())}http://HOST:PORT")
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"{source} {raw!r} is malformed ({one_line(exc)}); {fix}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{source} {raw!r} is not an http(s) URL with a host; {fix}")
    if parts.query or parts.fragment:
        raise TargetError(f"{source} {raw!r} has a query or fragment; {fix}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    auth = parts.netloc.rpartition("@")[0]
    url = f"{parts.scheme}://{auth + '@' if auth else ''}{netloc}{path}"
    return Target(id=f"{netloc}{path}", kind="url", ref=given,
                  metadata={"url": url, "detect_dialect": dialect is None},
                  dialect=dialect or DEFAULT_DIALECT)


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
    try:  # the profiles and versions only: the server is loaded when one starts
        from pytest_ollama_regress.sim.features import DEFAULT_VERSION, check_version
        from pytest_ollama_regress.sim.profiles import PROFILES
    except ImportError as exc:
        raise TargetError(f"the simulator cannot be loaded ({one_line(exc)})") from None

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
            raise TargetError(f"{source} {spec!r}: {one_line(exc)}") from None
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
    #: probed when the session is configured (the header shows its version)
    starts_at_configure = True

    def __init__(self, probe_timeout: float = 5.0) -> None:
        self.probe_timeout = probe_timeout

    def endpoint(self, target: Target, env: Mapping[str, str]) -> Endpoint:
        if env:
            pytest.skip(URL_ENV_SKIP)
        url = target.metadata.get("url", target.ref)
        what = f"--ollama-url {target.ref}"
        try:
            version = probe_version(url, timeout=self.probe_timeout, what=what,
                                    dialect=target.dialect)
        except TargetError as first:
            if not target.metadata.get("detect_dialect") or "cannot connect" in str(first):
                raise
            version = self._other_dialect(target, url, what, first)
        return Endpoint(url=url, server_version=version, env={}, env_known=False)

    def _other_dialect(self, target: Target, url: str, what: str, first: TargetError) -> str:
        """The version from the first other dialect that answers; the first error if none."""
        for name in dialect_names():
            if name == target.dialect:
                continue
            try:
                version = probe_version(url, timeout=self.probe_timeout, what=what, dialect=name)
            except TargetError:
                continue
            target.dialect = name
            return version
        raise first

    def describe(self, target: Target, endpoint: Endpoint | None) -> str:
        version = endpoint.server_version if endpoint else "not probed"
        return f"{target.metadata.get('url', target.ref)}, {get_dialect(target.dialect).describe(version)}"

    def close(self) -> None:
        """Nothing to stop: the server is not ours."""


class SimProvider:
    """The project's simulator, in process: one ``SimServer`` per distinct env, started when
    the first test that uses its target sets up (a run that uses none starts none)."""

    kind = "sim"
    #: started on first use: the version it will report is known beforehand (header)
    starts_at_configure = False
    #: cheap enough to start before the tests to check a named model (``--ollama-model``)
    quick_start = True

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
                f"{type(exc).__name__}: {one_line(exc)}"
            ) from None
        reported = probe_version(
            server.url, timeout=self.probe_timeout, what=f"simulator {target.id}"
        )
        return Endpoint(
            url=server.url,
            server_version=reported,
            env=dict(env),
            log_source=_sim_log_source(server),
            simulated=True,
        )

    def expected_version(self, target: Target) -> str:
        """The version the simulator will report (``--ollama-sim PROFILE@VERSION``,
        ``--ollama-sim-version`` or its default), known without starting it."""
        return target.metadata.get("sim_version") or _sim_default_version()

    def describe(self, target: Target, endpoint: Endpoint | None) -> str:
        profile = target.metadata.get("profile", target.ref)
        if endpoint is None:
            return (f"embedded simulator, profile {profile}, Ollama "
                    f"{self.expected_version(target)}, starts on first use")
        return f"embedded simulator, profile {profile}, Ollama {endpoint.server_version} at {endpoint.url}"

    def close(self) -> None:
        with self._lock:
            self.servers.clear()
            self._stack.close()


def _sim_default_version() -> str:
    """The version a simulator reports unless told otherwise (for the header)."""
    try:
        from pytest_ollama_regress.sim.features import DEFAULT_VERSION
    except ImportError:
        return "(version unknown: the simulator cannot be loaded)"
    return DEFAULT_VERSION


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
