"""The configure-time work of ``--ollama-image``: refs parsed, the engine and Compose v2
reached, every image resolved (pulled with ``--ollama-pull``), network and GPUs decided, dead
runs' containers reaped, then the ``image`` provider and its targets added to the registry.

Imported by ``containers/plugin.py`` only when images are given, so a run without them never
loads the engine, Compose or YAML code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_ollama_regress.containers.compose_file import GpuRequest, parse_gpus
from pytest_ollama_regress.containers.engine import (
    DockerEngine,
    DockerError,
    EngineInfo,
    ImageInfo,
    ImageNotFound,
    ImageRef,
    daemon_error,
    docker_host,
    find_compose,
    parse_image_ref,
)
from pytest_ollama_regress.containers.interrupts import stop_like_ctrl_c
from pytest_ollama_regress.containers.provider import (
    ContainerProvider,
    ContainerSettings,
    ContainerStartError,
    models_env,
)
from pytest_ollama_regress.containers.reaper import Owner, reap
from pytest_ollama_regress.containers.settings import value as option_value
from pytest_ollama_regress.dialects import DEFAULT as DEFAULT_DIALECT
from pytest_ollama_regress.dialects import DialectError
from pytest_ollama_regress.dialects import get as get_dialect
from pytest_ollama_regress.dialects import names as dialect_names
from pytest_ollama_regress.targets.registry import Target, TargetError, TargetRegistry

__all__ = ["LABEL_DIALECT", "PULL_TIMEOUT", "holds_models", "image_dialect", "register_images",
           "worker_of"]

PULL_TIMEOUT = 1800.0
#: an image label that states the server family (``llama-server``), when the entrypoint does not
LABEL_DIALECT = "io.ollama-regress.dialect"


def register_images(config: pytest.Config, registry: TargetRegistry, state: Any,
                    values: list[str], env: dict[str, str], models_dir: Path | None) -> None:
    """Resolve ``values`` (the ``--ollama-image`` refs) and add their targets and the provider;
    ``state`` (the plugin's) gets the engine, Compose version, reasons and reap result."""
    # 1. everything that needs no engine
    refs: list[ImageRef] = []
    for value in values:
        try:
            refs.append(parse_image_ref(value))
        except ValueError as exc:
            raise TargetError(str(exc)) from None
    try:
        gpus = parse_gpus(str(option_value(config, "ollama_gpus") or "auto"))
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    start_timeout = float(option_value(config, "ollama_start_timeout"))
    network = str(option_value(config, "ollama_network") or "auto")
    # 2. the engine and Compose v2
    engine = DockerEngine()
    try:
        info = engine.info()
        compose = find_compose(engine)
        images = [_resolve(engine, ref, pull=bool(option_value(config, "ollama_pull"))) for ref in refs]
    except DockerError as exc:
        raise TargetError(str(exc)) from None
    seen: dict[str, str] = {}
    for image in images:
        if image.id in seen:
            raise TargetError(
                f"--ollama-image {seen[image.id]} and {image.ref} are the same image "
                f"{image.id[:19]}…; give it once"
            )
        seen[image.id] = image.ref
    state.engine = info
    state.compose_version = compose.version
    # 3. network and GPUs
    if network == "auto":
        network = "bridge" if info.has_bridge else "host"
        state.network_reason = (
            "auto: the engine has a bridge network" if network == "bridge"
            else "auto: the engine has no bridge network"
        )
    elif network == "bridge" and not info.has_bridge:
        raise TargetError(
            "--ollama-network bridge: the engine has no bridge network (dockerd --bridge=none); "
            "use --ollama-network host"
        )
    worker, run_id = worker_of(config)
    owner = Owner.new(run_id, worker)
    gpus, state.gpus_reason = _resolve_gpus(engine, info, gpus, images[0].id, owner)
    # 4. leftovers of dead runs (once, in the process that owns the session)
    if worker == "main":
        try:
            state.reaped = reap(engine, owner.host)
        except DockerError as exc:
            raise TargetError(f"removing containers of dead runs failed: {exc}") from None
    settings = ContainerSettings(
        gpus=gpus,
        network=network,
        env=env,
        models_dir=models_dir,
        models_read_only=_models_read_only(config, models_dir),
        start_timeout=start_timeout,
        keep=bool(option_value(config, "ollama_keep")),
        command=option_value(config, "ollama_server_args") or None,
    )
    provider = ContainerProvider(engine, compose, settings, owner)
    state.provider = provider
    registry.add_provider("image", provider)
    # SIGTERM/SIGHUP end the run like Ctrl-C; undone by the last clean-up (after the
    # registry's, which config.add_cleanup runs first: see targets/plugin.py).
    config.add_cleanup(stop_like_ctrl_c())
    targets = [
        Target(
            id=ref.label or image.short_id,
            kind="image",
            ref=ref.given,
            image=image,
            metadata={
                **image.as_metadata(),
                "network": network,
                "gpus": str(gpus),
                "models_dir": str(models_dir) if models_dir else None,
            },
            dialect=image_dialect(ref, image),
        )
        for ref, image in zip(refs, images, strict=True)
    ]
    for target in targets:
        _check_launch(target, settings)
    for target in targets:
        registry.add_target(target)


def image_dialect(ref: ImageRef, image: ImageInfo) -> str:
    """The server family of an image: stated (``llama-server+REF``), else its
    ``io.ollama-regress.dialect`` label, else the dialect whose server its entrypoint (or
    command) runs (``/app/llama-server``), else Ollama."""
    if ref.dialect:
        return ref.dialect
    labelled = image.labels.get(LABEL_DIALECT)
    if labelled:
        if labelled not in dialect_names():
            raise TargetError(
                f"--ollama-image {ref.given}: label {LABEL_DIALECT}={labelled!r} names no known "
                f"server dialect ({', '.join(dialect_names())}); state it with "
                f"{DEFAULT_DIALECT}+{ref.text} or similar")
        return labelled
    argv = [*image.entrypoint, *image.cmd]
    for name in dialect_names():
        if get_dialect(name).claims(argv, image.labels):
            return name
    return DEFAULT_DIALECT


def _check_launch(target: Target, settings: ContainerSettings) -> None:
    """What the image's dialect refuses, before any test: arguments that take the address,
    variables the plugin sets, a models folder it cannot use as it is."""
    image = target.image
    assert image is not None
    dialect = get_dialect(target.dialect)
    if settings.command is not None:
        try:
            dialect.launch.check_command(settings.command)
        except DialectError as exc:
            raise TargetError(f"--ollama-server-args for {target.id} ({dialect.title}): "
                              f"{exc}") from None
    for name in dialect.launch.reserved_env:
        if name in settings.env:
            raise TargetError(f"--ollama-env {name}: set by the plugin for {target.id} "
                              f"({dialect.title}; it picks a free port); leave it out")
    try:
        models_env(dialect, settings, image, settings.env)
    except ContainerStartError as exc:
        raise TargetError(str(exc)) from None


def _resolve(engine: DockerEngine, ref: ImageRef, *, pull: bool) -> Any:
    try:
        return engine.resolve(ref)
    except ImageNotFound:
        if not pull:
            raise
    engine.pull(ref, PULL_TIMEOUT)
    return engine.resolve(ref)


def _resolve_gpus(
    engine: DockerEngine, info: EngineInfo, gpus: GpuRequest, image_id: str, owner: Owner
) -> tuple[GpuRequest, str]:
    """Turn ``auto`` into all/none; check an explicit request against the daemon for real."""
    runtimes = ", ".join(info.runtimes) or "none"
    if gpus.mode == "auto":
        if info.has_nvidia:
            return GpuRequest("all"), "auto: the engine has an NVIDIA runtime"
        return GpuRequest("none"), f"auto: no NVIDIA runtime on the engine (runtimes: {runtimes})"
    if gpus.mode == "none" or info.has_nvidia:
        return gpus, "as requested"
    # No NVIDIA runtime listed: ask the daemon (it may still have CDI devices) and quote it.
    reason = _gpu_probe(engine, gpus, image_id, owner)
    if reason:
        raise TargetError(
            f"--ollama-gpus {gpus}: the Docker engine at {docker_host()} cannot give GPUs: "
            f"{reason} (runtimes: {runtimes}); install the NVIDIA Container Toolkit and restart "
            "dockerd, or pass --ollama-gpus none"
        )
    return gpus, "as requested (the engine accepted a GPU container)"


def _gpu_probe(engine: DockerEngine, gpus: GpuRequest, image_id: str, owner: Owner) -> str:
    """Create and start a throwaway GPU container; the daemon's error, or '' if it ran."""
    args = ["create", "--gpus", gpus.docker_run_flag().strip('"'), "--network", "none"]
    for key, value in owner.labels().items():
        args += ["--label", f"{key}={value}"]
    created = engine.run([*args, image_id], check=False)
    if created.returncode != 0:
        return _daemon_words(created.stderr or created.stdout)
    cid = created.stdout.strip().splitlines()[-1]
    try:
        started = engine.run(["start", cid], check=False)
        return "" if started.returncode == 0 else _daemon_words(started.stderr or started.stdout)
    finally:
        engine.remove_containers([cid])


def _daemon_words(text: str) -> str:
    """The daemon's refusal, else the last line of the CLI's output."""
    lines = text.strip().splitlines()
    return daemon_error(text) or (lines[-1].strip() if lines else "unknown error")


def worker_of(config: pytest.Config) -> tuple[str, str | None]:
    """(worker name, xdist test run id) of this process."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput:
        return str(workerinput.get("workerid", "gw0")), str(workerinput.get("testrunuid", ""))[:8]
    return "main", None


def holds_models(models_dir: Path) -> bool:
    """An Ollama models folder (``manifests/``) or a folder of GGUF files (llama-server's)."""
    return (models_dir / "manifests").is_dir() or any(models_dir.glob("*.gguf"))


def _models_read_only(config: pytest.Config, models_dir: Path | None) -> bool:
    """Read-only unless asked, or unless the folder holds no models yet: a server must be able
    to initialise an empty folder, and there is nothing in it to protect."""
    if models_dir is None or option_value(config, "ollama_models_rw"):
        return False
    return holds_models(models_dir)
