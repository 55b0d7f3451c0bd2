"""pytest hooks for targets: options, markers, header, per-target parametrization, fixtures.

Every test that uses ``ollama`` or ``ollama_target`` runs once per target (ids name the
target), parametrized at session scope so tests are grouped per target. Other plugins add
target kinds through the ``pytest_ollama_register_targets`` hook (``hookspecs.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_ollama_regress.options import add_options, no_session
from pytest_ollama_regress.session import close_session, session_of
from pytest_ollama_regress.targets.providers import (
    SimProvider,
    UrlProvider,
    sim_targets,
    url_target,
)
from pytest_ollama_regress.targets.registry import (
    DEFAULT_SIM_PROFILE,
    TARGET_FIXTURE,
    Target,
    TargetError,
    TargetInfo,
    TargetParam,
    TargetRegistry,
    env_key,
    registry_of,
    target_param_of,
)
from pytest_ollama_regress.targets.settings import OPTIONS, TargetSettings, read_settings

MARKERS = (
    "ollama_env(**env): run the test against a server started with this environment "
    "(e.g. OLLAMA_NUM_PARALLEL='4'); --ollama-url targets skip it",
    "requires_capability(name): skip unless a model on the target reports this /api/show "
    "capability (vision, tools, thinking, embedding, ...); fails instead with --ollama-strict",
    "min_version(version): skip when the target's Ollama version is lower (e.g. '0.11.5')",
    "requires_dialect(*names): skip unless the target's server speaks one of these dialects "
    "(e.g. 'ollama')",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, OPTIONS)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if no_session(config):
        return
    settings = read_settings(config)
    state = session_of(config)
    state.put(settings)
    state.clients.timeouts = settings.timeouts
    registry = registry_of(config)
    try:
        _build_registry(config, registry, settings)
    except TargetError as exc:
        close_session(config)
        raise pytest.UsageError(str(exc)) from None
    except BaseException:
        close_session(config)
        raise
    # Closed by the first pytest_unconfigure (below) and, should that never run, by a config
    # cleanup: pytest runs those whatever the unconfigure hooks did (pluggy stops at the first
    # one that raises). Closing twice does nothing.
    config.add_cleanup(lambda: close_session(config))


def _build_registry(config: pytest.Config, registry: TargetRegistry,
                    settings: TargetSettings) -> None:
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
        if not getattr(registry.provider(target.kind), "starts_at_configure", False):
            continue  # started on first use (simulators, containers)
        registry.endpoint(target.id)  # probes URLs: a wrong one stops the run here


def _default_target(settings: TargetSettings) -> Target:
    """The embedded simulator (profile good), used when no target is given; the profile is
    known and ``--ollama-sim-version`` was checked when read, so nothing is loaded here."""
    return Target(
        id=f"sim-{DEFAULT_SIM_PROFILE}",
        kind="sim",
        ref=DEFAULT_SIM_PROFILE,
        metadata={"profile": DEFAULT_SIM_PROFILE, "sim_version": settings.sim_version,
                  "default": True},
    )


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Servers and containers go first, before other plugins' unconfigure hooks can fail."""
    close_session(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    registry = registry_of(config)
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
        from pytest_ollama_regress.versions import parse_version

        arg = mark.args[0] if len(mark.args) == 1 and not mark.kwargs else None
        try:
            parse_version(arg if isinstance(arg, str) else "")
        except ValueError:
            pytest.fail(
                f"{definition.nodeid}: min_version takes one version string such as "
                f"'0.11.5', not {mark.args!r}",
                pytrace=False,
            )
    for mark in definition.iter_markers("requires_dialect"):
        if not mark.args or mark.kwargs or not all(isinstance(a, str) for a in mark.args):
            pytest.fail(
                f"{definition.nodeid}: requires_dialect takes dialect names such as 'ollama', "
                f"not {mark.args!r}",
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
    """A client bound to the current target (its dialect's: an ``OllamaClient`` for Ollama),
    with the session's timeouts."""
    return session_of(pytestconfig).clients.client(ollama_target.url, ollama_target.dialect)


def _stated_expectations(config: pytest.Config, info: TargetInfo) -> Any:
    """The target's possible releases, narrowed by ``--ollama-behaves-as`` and the image label
    (see ``suite.behaviour``)."""
    from pytest_ollama_regress.suite.behaviour import stated_release
    from pytest_ollama_regress.suite.expectations import Expectations
    from pytest_ollama_regress.suite.settings import SuiteSettings

    state = session_of(config)
    stated = state.get(SuiteSettings).behaves_as if state.has(SuiteSettings) else {}
    labels = info.image.labels if info.image is not None else None
    return Expectations.for_version(info.server_version, stated_release(stated, info.id, labels))


def _dialect_skip(item: pytest.Item) -> None:
    """Before any fixture: a test for another server family is skipped, naming it."""
    param = target_param_of(item)
    if param is None:
        return
    target = registry_of(item.config).target(param.target_id)
    for mark in item.iter_markers("requires_dialect"):
        if target.dialect not in mark.args:
            pytest.skip(f"{target.id} speaks the {target.dialect} dialect; this test needs "
                        f"{' or '.join(mark.args)}")


def _marker_skip(config: pytest.Config, item: pytest.Item, info: TargetInfo) -> None:
    for mark in item.iter_markers("min_version"):
        from pytest_ollama_regress.versions import parse_version

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
        models = session_of(config).model_capabilities(info.url, info.dialect)
        if not any(capability in caps for caps in models.values()):
            message = (
                f"{info.id} has no model with capability {capability!r} "
                f"(models: {', '.join(models) or 'none'})"
            )
            if session_of(config).get(TargetSettings).strict:
                pytest.fail(message + " [--ollama-strict]", pytrace=False)
            pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    _dialect_skip(item)
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
        registry = registry_of(item.config)
        if param is not None and registry is not None:
            endpoint = registry.started_endpoint(param.target_id, param.env_dict)
            tail = endpoint.log_tail() if endpoint is not None else None
            if tail:
                report.sections.append((f"ollama log: {param.target_id} (last lines)", tail))
    return report
