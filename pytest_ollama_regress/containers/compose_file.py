"""Compose files the plugin generates: one project per (image, env), written to a temp dir.

The file pins the image by ID, sets the environment (the dialect's: ``OLLAMA_MODELS=/models``
when a models folder is mounted, or llama-server's ``LLAMA_ARG_MODEL=/models/<file>.gguf``),
the command (``--ollama-server-args``), lets the kernel or Docker pick the port (host network:
the dialect's address variables on port 0, the server logs the port it got; bridge: the
container port published on an ephemeral 127.0.0.1 port), labels the container with the
session and owner, and turns ``--ollama-gpus`` into Compose device reservations.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_ollama_regress.dialects.base import ContainerLaunch
from pytest_ollama_regress.dialects.ollama import OLLAMA

SERVICE = "ollama"
CONTAINER_PORT = OLLAMA.launch.port  # an Ollama image's; ComposeSpec.launch has each dialect's
MODELS_MOUNT = "/models"
STOP_GRACE = "3s"

# Labels on every container (and network) the plugin creates; the reaper reads them.
LABEL_SESSION = "io.ollama-regress.session"
LABEL_PID = "io.ollama-regress.pid"
LABEL_PID_START = "io.ollama-regress.pid-start"
LABEL_HOST = "io.ollama-regress.host"
LABEL_KEEP = "io.ollama-regress.keep"
LABEL_WORKER = "io.ollama-regress.worker"  # main, or the xdist worker id (gw0, ...)
LABEL_IMAGE = "io.ollama-regress.image"

# A device index, or an NVIDIA UUID (GPU-…, MIG-…) as nvidia-smi -L prints it.
_GPU_ID_RE = re.compile(r"^(?:\d+|(?:GPU|MIG)-[0-9A-Za-z/-]+)$")


@dataclass(frozen=True)
class GpuRequest:
    """A parsed ``--ollama-gpus`` value."""

    mode: str  # "auto" | "all" | "none" | "count" | "ids"
    count: int = 0
    device_ids: tuple[str, ...] = ()

    def docker_run_flag(self) -> str:
        """The equivalent ``docker run --gpus`` value."""
        if self.mode == "count":
            return str(self.count)
        if self.mode == "ids":
            return f'"device={",".join(self.device_ids)}"'
        return "all"

    def __str__(self) -> str:
        if self.mode == "count":
            return str(self.count)
        if self.mode == "ids":
            ids = ",".join(self.device_ids)
            return f"device={ids}" if len(self.device_ids) == 1 else ids
        return self.mode


def parse_gpus(value: str) -> GpuRequest:
    """Parse ``auto|all|none|N|ID[,ID]|device=ID[,ID]``; ``ValueError`` (one line) otherwise.

    A bare number is a count, as for ``docker run --gpus 2``; one device index is
    ``device=1`` (or ``1,3`` for several).
    """
    text = value.strip()
    if text in ("auto", "all", "none"):
        return GpuRequest(text)
    if text.isdigit():
        count = int(text)
        return GpuRequest("none") if count == 0 else GpuRequest("count", count=count)
    # A lone index is a count (as for `docker run --gpus 2`); name one device as device=1.
    ids = tuple(part.strip() for part in text.removeprefix("device=").split(","))
    if ids and all(_GPU_ID_RE.match(part) for part in ids):
        return GpuRequest("ids", device_ids=ids)
    raise ValueError(
        f"--ollama-gpus {value!r}: expected auto, all, none, a count (e.g. 2) or device IDs "
        "(e.g. 0,1 or device=1 or GPU-<uuid>)"
    )


def device_reservations(request: GpuRequest) -> list[dict[str, object]]:
    """Compose ``deploy.resources.reservations.devices`` for a resolved GPU request."""
    if request.mode == "all":
        return [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    if request.mode == "count":
        return [{"driver": "nvidia", "count": request.count, "capabilities": ["gpu"]}]
    if request.mode == "ids":
        return [{"driver": "nvidia", "device_ids": list(request.device_ids), "capabilities": ["gpu"]}]
    return []


def env_digest(env: Mapping[str, str]) -> str:
    """Six hex digits naming a distinct environment (``0`` for none)."""
    if not env:
        return "0"
    text = "\n".join(f"{k}={v}" for k, v in sorted(env.items()))
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def project_name(session: str, worker: str, short_id: str, env: Mapping[str, str]) -> str:
    """A Compose project name: lowercase letters, digits, ``-`` (``olr-<session>-gw0-4beecd8-0``)."""
    raw = f"olr-{session}-{worker}-{short_id}-{env_digest(env)}".lower()
    return re.sub(r"[^a-z0-9_-]", "-", raw)


@dataclass
class ComposeSpec:
    """Everything one generated compose file says.

    No host port is chosen here: on the host network the server listens on
    ``127.0.0.1:0`` (the kernel picks a free port, the server logs it); on a bridge Docker
    publishes the container port on a free 127.0.0.1 port (``docker compose port`` reads it).
    Nothing can take a port between its choice and its use.
    """

    project: str
    image_id: str
    network: str  # "host" | "bridge"
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    models_dir: Path | None = None
    models_read_only: bool = True
    gpus: GpuRequest = GpuRequest("none")
    #: how the image's server family is started (Ollama's unless the target says otherwise)
    launch: ContainerLaunch = OLLAMA.launch
    #: arguments after the entrypoint (``--ollama-server-args``); ``None`` keeps the image's CMD
    command: tuple[str, ...] | None = None
    #: what the dialect sets for the models folder (``provider.models_env``, which sees the
    #: image's own ENV and CMD); ``None``: the dialect's answer from this spec alone
    models: dict[str, str] | None = None

    @property
    def container_name(self) -> str:
        return f"{self.project}-{SERVICE}"

    def environment(self) -> dict[str, str]:
        """The container's environment: the user's, then what the plugin must set."""
        env = dict(self.env)
        if self.models_dir is not None:
            env.update(self.models if self.models is not None else self.launch.models_env(
                MODELS_MOUNT, self.models_dir, self.models_read_only, self.env,
                self.command or ()))
        if self.network == "host":
            env.update(self.launch.listen_env("127.0.0.1", 0))
        else:
            env.update(self.launch.listen_env("0.0.0.0", self.launch.port))
        return env

    def to_dict(self) -> dict[str, object]:
        service: dict[str, object] = {
            "image": self.image_id,
            "container_name": self.container_name,
            "pull_policy": "never",
            "init": True,
            "environment": self.environment(),
            "labels": dict(self.labels),
            "stop_signal": "SIGTERM",
            "stop_grace_period": STOP_GRACE,
            "restart": "no",
        }
        if self.command is not None:
            service["command"] = list(self.command)
        if self.network == "host":
            service["network_mode"] = "host"
        else:
            service["ports"] = [f"127.0.0.1::{self.launch.port}"]
        if self.models_dir is not None:
            service["volumes"] = [
                {
                    "type": "bind",
                    "source": str(self.models_dir),
                    "target": MODELS_MOUNT,
                    "read_only": self.models_read_only,
                }
            ]
        devices = device_reservations(self.gpus)
        if devices:
            service["deploy"] = {"resources": {"reservations": {"devices": devices}}}
        data: dict[str, object] = {"name": self.project, "services": {SERVICE: service}}
        if self.network != "host":
            data["networks"] = {"default": {"labels": dict(self.labels)}}
        return data

    def write(self, directory: Path) -> Path:
        """Write ``<directory>/<project>/compose.yaml`` (owner-only) and return its path.

        Every ``$`` is written as ``$$``: Compose interpolates ``$VAR`` and ``${VAR:?msg}`` with
        the environment of the process that runs it, so without this ``--ollama-env
        V=$HOME`` would reach the container as the host's home and a models path with a ``$``
        would mount another folder. ``$$`` is Compose's escape for one literal ``$``.
        """
        folder = directory / self.project
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "compose.yaml"
        text = yaml.safe_dump(escape_interpolation(self.to_dict()), sort_keys=False)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # env may hold secrets
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path


def escape_interpolation(value: Any) -> Any:
    """``value`` with ``$`` doubled in every string (keys included), for Compose to undo."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, Mapping):
        return {escape_interpolation(k): escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_interpolation(v) for v in value]
    return value
