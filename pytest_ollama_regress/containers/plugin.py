"""pytest hooks for containers: ``--ollama-image`` and friends, header lines, the image provider.

Everything a user can get wrong is checked in ``pytest_configure`` (through the
``pytest_ollama_register_targets`` hook of ``targets/plugin.py``) before any test runs: ref
syntax, ``--ollama-env``, the models folder, ``--ollama-gpus``, the engine, Compose v2, every
image (resolved up front) and, for an explicit GPU request on an engine without an NVIDIA
runtime, the daemon's own refusal; that work is in ``images.py``, loaded only when images
are given.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_ollama_regress.containers.redact import env_text
from pytest_ollama_regress.containers.settings import OPTIONS
from pytest_ollama_regress.containers.settings import value as option_value
from pytest_ollama_regress.dialects import DEFAULT as DEFAULT_DIALECT
from pytest_ollama_regress.options import add_options
from pytest_ollama_regress.session import session_of
from pytest_ollama_regress.targets.providers import SimProvider
from pytest_ollama_regress.targets.registry import (
    TargetError,
    TargetRegistry,
    registry_of,
    target_param_of,
)

if TYPE_CHECKING:  # the engine and Compose code load only when images are given (images.py)
    from pytest_ollama_regress.containers.engine import EngineInfo
    from pytest_ollama_regress.containers.provider import ContainerProvider, ContainerSettings
    from pytest_ollama_regress.containers.reaper import ReapResult

_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class _State:
    provider: ContainerProvider | None = None
    engine: EngineInfo | None = None
    compose_version: str = ""
    network_reason: str = ""
    gpus_reason: str = ""
    reaped: ReapResult | None = None
    kept_notes: list[str] = field(default_factory=list)
    #: xdist controller: the session id of its workers, and what it removed of dead ones
    worker_session: str | None = None
    worker_notes: list[str] = field(default_factory=list)


def _state(config: pytest.Config) -> _State:
    """This capability's state in the session (created on first use)."""
    session = session_of(config)
    if not session.has(_State):
        session.put(_State())
    return session.get(_State)


def _started(config: pytest.Config) -> _State | None:
    """The state, if images were set up in this session."""
    session = session_of(config)
    return session.get(_State) if session.has(_State) else None


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser, OPTIONS)


# option parsing (no engine needed) -----------------------------------------------------------


def parse_env(values: list[str], source: str = "--ollama-env") -> dict[str, str]:
    """``KEY=VALUE`` items to a dict; ``TargetError`` naming the bad item otherwise."""
    env: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not _ENV_KEY_RE.match(key):
            raise TargetError(
                f"{source} {item!r}: expected KEY=VALUE with KEY made of letters, digits and _ "
                "(e.g. --ollama-env OLLAMA_DEBUG=2)"
            )
        if key == "OLLAMA_HOST":
            raise TargetError(
                f"{source} {item!r}: OLLAMA_HOST is set by the plugin (it picks a free port); "
                "leave it out"
            )
        env[key] = value
    return env


def parse_models_dir(value: str | None) -> Path | None:
    """The models folder as an absolute path (symlinks kept: Docker follows them)."""
    if not value:
        return None
    path = Path(value).expanduser()
    if ":" in str(path.absolute()):
        raise TargetError(
            f"--ollama-models-dir {value}: Docker cannot mount a path that contains ':'; link "
            "the folder from a path without one (ln -s ... ~/ollama-models) and give that"
        )
    if not path.exists():
        raise TargetError(
            f"--ollama-models-dir {value}: no such directory; create it or point at the folder "
            "that holds your Ollama models (e.g. ~/.ollama/models)"
        )
    if not path.is_dir():
        raise TargetError(
            f"--ollama-models-dir {value}: not a directory; give the models folder, not a file"
        )
    return path.absolute()


# the hook from targets/plugin.py --------------------------------------------------------------


def pytest_ollama_register_targets(config: pytest.Config, registry: TargetRegistry) -> None:
    """Check options, reach the engine, resolve images, reap, add the ``image`` provider.

    ``--ollama-env`` also reaches the in-process simulators, so a dry run with
    ``--ollama-sim`` sees the same environment as the containers would.
    """
    env = parse_env(list(option_value(config, "ollama_env") or []))
    sim_provider = registry.provider("sim")
    if isinstance(sim_provider, SimProvider):
        sim_provider.base_env = dict(env)
    # checked whatever the targets: a wrong folder must not pass silently with --ollama-sim
    models_dir = parse_models_dir(option_value(config, "ollama_models_dir") or None)
    values = list(option_value(config, "ollama_image") or [])
    if not values:
        return
    from pytest_ollama_regress.containers.images import register_images  # engine code: now

    register_images(config, registry, _state(config), values, env, models_dir)


@pytest.fixture(scope="session", autouse=True)
def _ollama_containers_workdir(request: pytest.FixtureRequest) -> None:
    """Compose files and logs go to pytest's temp dir (``<basetemp>/ollama-containers0``)."""
    state = _started(request.config)
    provider = state.provider if state is not None else None
    if provider is not None and provider.workdir is None:
        factory = request.getfixturevalue("tmp_path_factory")
        provider.workdir = Path(factory.mktemp("ollama-containers"))


# header, GPU fallback warning, keep notes ------------------------------------------------------


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = _started(config)
    if state is None or state.engine is None or state.provider is None:
        return []
    info = state.engine
    settings = state.provider.settings
    lines = [
        f"ollama containers: Docker {info.server_version} at {info.docker_host}, compose "
        f"{state.compose_version}, network {settings.network}"
        + (f" ({state.network_reason})" if state.network_reason else ""),
        f"ollama containers: GPUs {settings.gpus} ({state.gpus_reason}); start timeout "
        f"{settings.start_timeout:g}s"
        + (f"; models dir {settings.models_dir} -> /models ({_models_mode(settings)})"
           if settings.models_dir else "")
        + (f"; env {env_text(settings.env)}" if settings.env else ""),
    ]
    if state.reaped is not None:
        reaped = state.reaped
        text = f"ollama containers: reaped {reaped.count} container(s) of dead runs"
        if reaped.containers:
            text += f" ({', '.join(reaped.containers)})"
        if reaped.kept:
            text += f"; {reaped.kept} kept by --ollama-keep left alone"
        lines.append(text)
    return lines


def _models_mode(settings: ContainerSettings) -> str:
    from pytest_ollama_regress.containers.images import holds_models

    if settings.models_read_only:
        return ("read-only, OLLAMA_NOPRUNE=1 for Ollama; --ollama-models-rw to pull or delete "
                "models")
    if settings.models_dir is not None and not holds_models(settings.models_dir):
        return "read-write: it holds no manifests/ or .gguf files yet"
    return "read-write (--ollama-models-rw)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    try:
        return (yield)
    finally:
        _check_vram(item)


def _check_vram(item: pytest.Item) -> None:
    """Warn once per container when GPUs were asked for but a model runs with size_vram 0."""
    state = _started(item.config)
    provider = state.provider if state is not None else None
    if provider is None or provider.settings.gpus.mode == "none":
        return
    param = target_param_of(item)
    registry = registry_of(item.config)
    if param is None or registry is None:
        return
    endpoint = registry.started_endpoint(param.target_id, param.env_dict)
    if endpoint is None or endpoint.url in provider.vram_checked:
        return
    target = registry.target(param.target_id)
    if target.kind != "image" or target.dialect != DEFAULT_DIALECT:
        return  # /api/ps, which tells where a model runs, is Ollama's
    from pytest_ollama_regress.containers.provider import cpu_fallback_models

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models = cpu_fallback_models(endpoint.url)
    except Exception:  # noqa: BLE001 - a dead server is reported by the tests themselves
        return
    if models:
        provider.vram_checked.add(endpoint.url)
        warnings.warn(
            pytest.PytestWarning(
                f"{param.target_id}: GPUs were requested (--ollama-gpus "
                f"{provider.settings.gpus}) but /api/ps shows size_vram 0 for "
                f"{', '.join(models)}: Ollama is running them on the CPU"
            ),
            stacklevel=1,
        )


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = _started(config)
    if state is None or state.provider is None or not state.provider.settings.keep:
        return
    state.kept_notes = [
        f"{target_id}: {endpoint.url} (container {name}; stop it with: docker rm -f {name})"
        for target_id, name, endpoint in state.provider.running()
    ]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["ollama_kept"] = list(state.kept_notes)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: learn the workers' session id (their containers are labelled with it)."""
    state = _started(node.config)
    if state is None or state.provider is None or state.worker_session is not None:
        return
    session = str((getattr(node, "workerinput", None) or {}).get("testrunuid", ""))[:8]
    if session:
        state.worker_session = session
        # Once more at the very end, after xdist has shut the workers down.
        node.config.add_cleanup(lambda: _reap_dead_workers(state, None))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: a crashed worker's containers go now; kept ones join the summary."""
    notes = (getattr(node, "workeroutput", None) or {}).get("ollama_kept") or []
    state = _state(node.config)
    state.kept_notes.extend(notes)
    if error is not None:
        worker = (getattr(node, "workerinput", None) or {}).get("workerid")
        _reap_dead_workers(state, str(worker) if worker else None)


def _reap_dead_workers(state: _State, worker: str | None) -> None:
    """Remove the containers of dead workers of this run (never raises: it reports)."""
    if state.provider is None or state.worker_session is None:
        return
    from pytest_ollama_regress.containers.engine import DockerError
    from pytest_ollama_regress.containers.reaper import reap_workers

    who = f"worker {worker}" if worker else "workers"
    try:
        result = reap_workers(state.provider.engine, state.worker_session, worker)
    except DockerError as exc:
        state.worker_notes.append(f"removing the containers of dead {who} failed: {exc}")
        return
    if result.count:
        state.worker_notes.append(
            f"removed {result.count} container(s) of dead {who}: {', '.join(result.containers)}"
        )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = _started(config)
    if state is None:
        return
    if state.worker_notes:
        terminalreporter.section("ollama containers of crashed xdist workers")
        for note in state.worker_notes:
            terminalreporter.write_line(note)
    if state.kept_notes:
        terminalreporter.section("ollama containers kept (--ollama-keep)")
        for note in state.kept_notes:
            terminalreporter.write_line(note)

