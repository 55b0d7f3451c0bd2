"""pytest hooks for targets: options, markers, header, per-target parametrization, fixtures.

Every test that uses ``ollama`` or ``ollama_target`` runs once per target (ids name the
target), parametrized at session scope so tests are grouped per target. Other plugins add
target kinds through the ``pytest_ollama_register_targets`` hook (see
``pytest_ollama_regress.targets.registry``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_ollama_regress.targets.registry import (
    DEFAULT_SIM_PROFILE,
    REGISTRY_KEY,
    TARGET_FIXTURE,
    SimProvider,
    Target,
    TargetError,
    TargetInfo,
    TargetParam,
    TargetRegistry,
    UrlProvider,
    env_key,
    registry_of,
    sim_targets,
    target_param_of,
    url_target,
)
from pytest_ollama_regress.versions import parse_version

GROUP = "ollama"
DEFAULT_TIMEOUT = 120.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 600.0

MARKERS = (
    "ollama_env(**env): run the test against a server started with this environment "
    "(e.g. OLLAMA_NUM_PARALLEL='4'); --ollama-url targets skip it",
    "requires_capability(name): skip unless a model on the target reports this /api/show "
    "capability (vision, tools, thinking, embedding, ...); fails instead with --ollama-strict",
    "min_version(version): skip when the target's Ollama version is lower (e.g. '0.11.5')",
)


@dataclass
class Settings:
    """The ollama options, from the command line or else the ini file."""

    urls: list[tuple[str, str]]
    sims: list[tuple[str, str]]
    sim_version: str | None
    model: str | None
    vision_model: str | None
    timeout: float
    connect_timeout: float
    strict: bool
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT


@dataclass
class _State:
    settings: Settings
    clients: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, dict[str, list[str]] | str] = field(default_factory=dict)


_STATE_KEY = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "Ollama regression testing")
    group.addoption(
        "--ollama-url",
        action="append",
        dest="ollama_url",
        metavar="URL",
        help="an Ollama server to test, e.g. http://127.0.0.1:11434 (repeatable)",
    )
    group.addoption(
        "--ollama-sim",
        action="append",
        nargs="?",
        const=DEFAULT_SIM_PROFILE,
        dest="ollama_sim",
        metavar="PROFILE[@VERSION]",
        help="test the embedded simulator with this profile (default good; repeatable)",
    )
    group.addoption(
        "--ollama-sim-version",
        dest="ollama_sim_version",
        metavar="VERSION",
        help="Ollama version the simulator reports (default: the simulator's DEFAULT_VERSION)",
    )
    group.addoption(
        "--ollama-model",
        dest="ollama_model",
        metavar="NAME",
        help="model(s) to test: all, vision, a name, or @registry.json (default: discovery)",
    )
    group.addoption(
        "--ollama-vision-model",
        dest="ollama_vision_model",
        metavar="NAME",
        help="vision model to test (default: the first vision model the server reports)",
    )
    group.addoption(
        "--ollama-timeout",
        dest="ollama_timeout",
        type=float,
        metavar="SECONDS",
        help=f"stall timeout: the longest wait for the next streamed chunk, and the whole of a "
        f"non-streaming request (default {DEFAULT_TIMEOUT:g})",
    )
    group.addoption(
        "--ollama-request-timeout",
        dest="ollama_request_timeout",
        type=float,
        metavar="SECONDS",
        help=f"the whole of one streamed request, however steadily it sends (default "
        f"{DEFAULT_REQUEST_TIMEOUT:g})",
    )
    group.addoption(
        "--ollama-connect-timeout",
        dest="ollama_connect_timeout",
        type=float,
        metavar="SECONDS",
        help=f"connect timeout, and the whole of the /api/version probe (default "
        f"{DEFAULT_CONNECT_TIMEOUT:g})",
    )
    group.addoption(
        "--ollama-strict",
        action="store_true",
        default=None,
        dest="ollama_strict",
        help="fail instead of skip when a target lacks what a test needs",
    )
    parser.addini("ollama_url", "Ollama servers to test (one per line)", type="linelist")
    parser.addini("ollama_sim", "simulator profiles to test (one per line)", type="linelist")
    parser.addini("ollama_sim_version", "Ollama version the simulator reports", default="")
    parser.addini("ollama_model", "model(s) to test (see --ollama-model)", default="")
    parser.addini("ollama_vision_model", "vision model to test", default="")
    parser.addini("ollama_timeout", "stall timeout in seconds", default=str(DEFAULT_TIMEOUT))
    parser.addini(
        "ollama_request_timeout", "seconds for a whole streamed request",
        default=str(DEFAULT_REQUEST_TIMEOUT),
    )
    parser.addini(
        "ollama_connect_timeout", "connect timeout in seconds", default=str(DEFAULT_CONNECT_TIMEOUT)
    )
    parser.addini(
        "ollama_strict", "fail instead of skip (see --ollama-strict)", type="bool", default=False
    )


def _seconds(config: pytest.Config, name: str) -> float:
    value = config.getoption(name)
    source = "--" + name.replace("_", "-")
    if value is None:
        raw = config.getini(name)
        source = f"ini {name}"
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(f"{source} = {raw!r} is not a number of seconds") from None
    if not value > 0:
        raise pytest.UsageError(f"{source} must be a positive number of seconds, not {value:g}")
    return float(value)


def _listed(config: pytest.Config, name: str) -> list[tuple[str, str]]:
    values = config.getoption(name)
    if values:
        return [(v, "--" + name.replace("_", "-")) for v in values]
    return [(v, f"ini {name}") for v in config.getini(name) if v.strip()]


def text_option(config: pytest.Config, name: str) -> str | None:
    """The option ``name`` (its dest), else its ini key; ``None`` when neither is set."""
    value = config.getoption(name)
    return value if value is not None else (config.getini(name).strip() or None)


def read_settings(config: pytest.Config) -> Settings:
    """Options merged with their ini keys (the command line wins); bad values: UsageError."""
    sim_version = text_option(config, "ollama_sim_version")
    if sim_version is not None:
        try:
            from pytest_ollama_regress.sim import check_version

            check_version(sim_version)
        except (ImportError, ValueError) as exc:
            raise pytest.UsageError(f"--ollama-sim-version: {' '.join(str(exc).split())}") from None
    strict = config.getoption("ollama_strict")
    return Settings(
        urls=_listed(config, "ollama_url"),
        sims=_listed(config, "ollama_sim"),
        sim_version=sim_version,
        model=text_option(config, "ollama_model"),
        vision_model=text_option(config, "ollama_vision_model"),
        timeout=_seconds(config, "ollama_timeout"),
        connect_timeout=_seconds(config, "ollama_connect_timeout"),
        request_timeout=_seconds(config, "ollama_request_timeout"),
        strict=bool(strict if strict is not None else config.getini("ollama_strict")),
    )


def settings_of(config: pytest.Config) -> Settings:
    """The resolved ollama settings of this session."""
    state = config.stash.get(_STATE_KEY, None)
    return state.settings if state is not None else read_settings(config)


def _no_session(config: pytest.Config) -> bool:
    """``--help`` and ``--markers`` configure pytest without running tests."""
    return bool(getattr(config.option, "help", False) or getattr(config.option, "markers", False))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if _no_session(config):
        return
    settings = read_settings(config)
    config.stash[_STATE_KEY] = _State(settings)
    registry = registry_of(config)
    try:
        _build_registry(config, registry, settings)
    except TargetError as exc:
        close_targets(config)
        raise pytest.UsageError(str(exc)) from None
    except BaseException:
        close_targets(config)
        raise
    # Closed by the first pytest_unconfigure (below) and, should that never run, by a config
    # cleanup: pytest runs those whatever the unconfigure hooks did (pluggy stops at the first
    # one that raises). Closing twice does nothing.
    config.add_cleanup(lambda: close_targets(config))


def _build_registry(config: pytest.Config, registry: TargetRegistry, settings: Settings) -> None:
    registry.add_provider("url", UrlProvider(settings.connect_timeout))
    registry.add_provider("sim", SimProvider(settings.connect_timeout))
    for text, source in settings.urls:
        registry.add_target(url_target(text, source))
    for target in sim_targets(settings.sims, settings.sim_version):
        registry.add_target(target)
    config.hook.pytest_ollama_register_targets(config=config, registry=registry)
    if not registry.targets:
        registry.add_target(_default_target(settings))
    for target in registry.targets:
        if target.kind not in ("url", "sim"):
            continue
        try:
            registry.endpoint(target.id)  # validates URLs, starts sims for the header
        except TargetError:
            if not target.metadata.get("default"):
                raise
            # The implicit simulator failing must not break runs that never use a target:
            # the header says why, and tests that use it fail with the same message.


def _default_target(settings: Settings) -> Target:
    """The embedded simulator (profile good), used when no target is given."""
    try:
        return sim_targets([(DEFAULT_SIM_PROFILE, "default")], settings.sim_version, default=True)[
            0
        ]
    except TargetError:
        metadata = {"profile": DEFAULT_SIM_PROFILE, "sim_version": settings.sim_version}
        return Target(
            id=f"sim-{DEFAULT_SIM_PROFILE}",
            kind="sim",
            ref=DEFAULT_SIM_PROFILE,
            metadata={**metadata, "default": True},
        )


def close_targets(config: pytest.Config) -> None:
    """Close the clients and stop every target (idempotent)."""
    state = config.stash.get(_STATE_KEY, None)
    if state is not None:
        for client in state.clients.values():
            close = getattr(client, "close", None)
            if callable(close):
                close()
        state.clients.clear()
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is not None:
        try:
            registry.close()
        except Exception as exc:  # noqa: BLE001 - report, never mask the session's outcome
            print(f"pytest-ollama-regress: closing targets failed: {exc}", file=sys.stderr)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Servers and containers go first, before other plugins' unconfigure hooks can fail."""
    close_targets(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    registry = config.stash.get(REGISTRY_KEY, None)
    if registry is None or not registry.targets:
        return []
    targets = registry.targets
    if len(targets) == 1 and targets[0].metadata.get("default"):
        target = targets[0]
        return [
            f"ollama: no target given, testing the embedded simulator: {target.id}: "
            f"{registry.describe(target.id)}",
            "ollama: to test a real server pass --ollama-url http://HOST:11434 or "
            "--ollama-image REF",
        ]
    lines = [f"ollama targets ({len(targets)}):"]
    lines += [f"  {t.id}: {registry.describe(t.id)}" for t in targets]
    return lines


def _marker_env(definition: pytest.Item) -> dict[str, str]:
    env: dict[str, str] = {}
    for mark in reversed(list(definition.iter_markers("ollama_env"))):
        if len(mark.args) > 1 or (mark.args and not isinstance(mark.args[0], Mapping)):
            pytest.fail(
                f"{definition.nodeid}: ollama_env takes KEY=VALUE keywords or one mapping, "
                f"e.g. @pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL='4')",
                pytrace=False,
            )
        for key, value in {**(mark.args[0] if mark.args else {}), **mark.kwargs}.items():
            env[str(key)] = "1" if value is True else "0" if value is False else str(value)
    return env


def _check_marker_args(definition: pytest.Item) -> None:
    for mark in definition.iter_markers("min_version"):
        arg = mark.args[0] if len(mark.args) == 1 and not mark.kwargs else None
        try:
            parse_version(arg if isinstance(arg, str) else "")
        except ValueError:
            pytest.fail(
                f"{definition.nodeid}: min_version takes one version string such as "
                f"'0.11.5', not {mark.args!r}",
                pytrace=False,
            )
    for mark in definition.iter_markers("requires_capability"):
        if len(mark.args) != 1 or not isinstance(mark.args[0], str) or mark.kwargs:
            pytest.fail(
                f"{definition.nodeid}: requires_capability takes one capability name such as "
                f"'vision', not {mark.args!r}",
                pytrace=False,
            )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize over the targets first, so the target's id opens the test id's brackets
    (``test_x[4beecd8-short]``): the xdist placement reads it there (``placement.py``)."""
    if TARGET_FIXTURE not in metafunc.fixturenames:
        return
    registry = registry_of(metafunc.config)
    env = env_key(_marker_env(metafunc.definition))
    _check_marker_args(metafunc.definition)
    params = [TargetParam(target_id, env) for target_id in registry.ids()]
    metafunc.parametrize(
        TARGET_FIXTURE, params, ids=[p.target_id for p in params], indirect=True, scope="session"
    )


@pytest.fixture(scope="session")
def ollama_target(request: pytest.FixtureRequest) -> TargetInfo:
    """The current target: id, kind, ref, url, server_version, env, image, metadata."""
    param = getattr(request, "param", None)
    if not isinstance(param, TargetParam):
        pytest.fail(
            "ollama_target must be requested as a test or fixture argument so the test is "
            "parametrized over the targets",
            pytrace=False,
        )
    registry = registry_of(request.config)
    try:
        endpoint = registry.endpoint(param.target_id, param.env_dict)
    except TargetError as exc:
        error = str(exc)
    else:
        return TargetInfo(registry.target(param.target_id), endpoint)
    pytest.fail(error, pytrace=False)


@pytest.fixture(scope="session")
def ollama(ollama_target: TargetInfo, pytestconfig: pytest.Config) -> Any:
    """An ``OllamaClient`` bound to the current target, with the session's timeouts."""
    return client_for(pytestconfig, ollama_target.url)


def client_for(config: pytest.Config, url: str) -> Any:
    """A client for ``url`` with the session's timeouts, shared for the session."""
    from pytest_ollama_regress.dialects.ollama_client import OllamaClient

    state = config.stash[_STATE_KEY]
    client = state.clients.get(url)
    if client is None:
        client = state.clients[url] = OllamaClient(
            url,
            connect_timeout=state.settings.connect_timeout,
            stall_timeout=state.settings.timeout,
            request_timeout=state.settings.request_timeout,
        )
    return client


def capabilities_of(config: pytest.Config, url: str) -> dict[str, list[str]]:
    """Each model's ``/api/show`` capabilities on the server at ``url`` (cached)."""
    state = config.stash[_STATE_KEY]
    cached = state.capabilities.get(url)
    if cached is None:
        client = client_for(config, url)
        cached = {}
        for model in client.tags():
            name = model.get("name") or model.get("model")
            cached[name] = list(client.show(name).get("capabilities") or [])
        state.capabilities[url] = cached
    return cached  # type: ignore[return-value]


def _stated_expectations(config: pytest.Config, info: TargetInfo) -> Any:
    """The target's possible releases, narrowed by ``--ollama-behaves-as ID=X.Y.Z`` (or one
    for every target) and the image label (see ``behaviour``)."""
    from pytest_ollama_regress.suite.behaviour import parse_behaves_as, stated_release
    from pytest_ollama_regress.suite.expectations import Expectations

    try:
        stated = parse_behaves_as(config.getoption("ollama_behaves_as", None) or [])
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    labels = info.image.labels if info.image is not None else None
    return Expectations.for_version(info.server_version,
                                    stated_release(stated, info.id, labels))


def _marker_skip(config: pytest.Config, item: pytest.Item, info: TargetInfo) -> None:
    for mark in item.iter_markers("min_version"):
        required = parse_version(mark.args[0])
        expect = _stated_expectations(config, info)
        newer = {release >= required for release in expect.releases}
        if newer == {False}:
            pytest.skip(f"{info.id} runs Ollama {info.server_version}, older than {required} "
                        "required by min_version")
        if newer == {True, False}:
            pytest.skip(f"min_version {required}: {expect.ambiguous_reason('min_version')}")
    for mark in item.iter_markers("requires_capability"):
        capability = mark.args[0]
        models = capabilities_of(config, info.url)
        if not any(capability in caps for caps in models.values()):
            message = (
                f"{info.id} has no model with capability {capability!r} "
                f"(models: {', '.join(models) or 'none'})"
            )
            if settings_of(config).strict:
                pytest.fail(message + " [--ollama-strict]", pytrace=False)
            pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    result = yield
    funcargs = getattr(item, "funcargs", {})
    info = funcargs.get(TARGET_FIXTURE)
    if isinstance(info, TargetInfo):
        _marker_skip(item.config, item, info)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        param = target_param_of(item)
        registry = item.config.stash.get(REGISTRY_KEY, None)
        if param is not None and registry is not None:
            endpoint = registry.started_endpoint(param.target_id, param.env_dict)
            tail = endpoint.log_tail() if endpoint is not None else None
            if tail:
                report.sections.append((f"ollama log: {param.target_id} (last lines)", tail))
    return report
