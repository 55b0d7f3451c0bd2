"""The llama.cpp server dialect: ``/health`` (503 while loading, then 200) and ``/props`` to
probe, :class:`LlamaServerClient` to talk, ``/v1/models`` + ``/props`` ``modalities`` for the
model and its capabilities."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from pytest_ollama_regress.dialects.base import DialectError, Listening, Timeouts, probe_client

__all__ = ["LLAMA_SERVER", "LlamaServerDialect", "LlamaServerLaunch"]

LOADING_POLL_S = 0.1
#: ``srv main: listening on http://127.0.0.1:40123`` (older builds: ``server is listening on``)
LISTENING_RE = re.compile(
    r"listening on https?://(?P<host>\[[^\]\s]*\]|[^\s:/]+):(?P<port>\d+)")
#: arguments that name the model (or a source of one) on llama-server's command line
MODEL_ARGS = frozenset({"-m", "--model", "-hf", "-hfr", "--hf-repo", "-mu", "--model-url",
                        "--models-dir", "--models-preset"})
#: arguments the plugin owns (it picks the address and the port)
ADDRESS_ARGS = frozenset({"--host", "--port"})


def _flags(command: Sequence[str]) -> set[str]:
    """The option names of a command line (``--port=8080`` counts as ``--port``)."""
    return {part.split("=", 1)[0] for part in command if part.startswith("-")}


class LlamaServerLaunch:
    """llama.cpp server images (official: entrypoint ``/app/llama-server``, port 8080): every
    argument has a ``LLAMA_ARG_*`` variable, so the plugin sets the address through
    ``LLAMA_ARG_HOST``/``LLAMA_ARG_PORT`` (port 0: the kernel picks one, the server logs
    ``listening on http://HOST:PORT``) and the model through ``LLAMA_ARG_MODEL``."""

    port = 8080
    listening_line = "listening on http://127.0.0.1:<port>"
    reserved_env = ("LLAMA_ARG_HOST", "LLAMA_ARG_PORT")

    def listen_env(self, host: str, port: int) -> dict[str, str]:
        return {"LLAMA_ARG_HOST": host, "LLAMA_ARG_PORT": str(port)}

    def check_command(self, command: Sequence[str]) -> None:
        """Refuse ``--host``/``--port`` (they would beat the plugin's ``LLAMA_ARG_*``)."""
        owned = sorted(_flags(command) & ADDRESS_ARGS)
        if owned:
            are, them = ("is", "it") if len(owned) == 1 else ("are", "them")
            raise DialectError(f"{' and '.join(owned)} {are} set by the plugin (it picks a free "
                               f"port and checks the answer is the container's); leave {them} out")

    def models_env(self, mount: str, folder: Path, read_only: bool, env: Mapping[str, str],
                   command: Sequence[str]) -> dict[str, str]:
        """``LLAMA_ARG_MODEL`` for the one ``.gguf`` model in the folder (and
        ``LLAMA_ARG_MMPROJ`` for its one ``mmproj*.gguf`` projector) unless the command or
        the environment already names a model."""
        if "LLAMA_ARG_MODEL" in env or _flags(command) & MODEL_ARGS:
            return {}
        files = sorted(p.name for p in folder.glob("*.gguf") if p.is_file())
        projectors = [name for name in files if name.lower().startswith("mmproj")]
        models = [name for name in files if name not in projectors]
        if len(models) != 1:
            found = ", ".join(models) if models else "no .gguf model"
            raise DialectError(
                f"--ollama-models-dir={folder}: llama-server needs one model and the folder "
                f"holds {found}; name it with --ollama-env LLAMA_ARG_MODEL={mount}/<file>.gguf "
                "(or -m in --ollama-server-args)")
        chosen = {"LLAMA_ARG_MODEL": f"{mount}/{models[0]}"}
        if len(projectors) == 1 and "LLAMA_ARG_MMPROJ" not in env and not (
                _flags(command) & {"-mm", "--mmproj"}):
            chosen["LLAMA_ARG_MMPROJ"] = f"{mount}/{projectors[0]}"
        return chosen

    def find_listening(self, log: str) -> Listening | None:
        match = LISTENING_RE.search(log)
        return Listening(match["host"].strip("[]") or "::", int(match["port"])) if match else None


class LlamaServerDialect:
    """llama.cpp's ``llama-server`` (OpenAI-compatible API plus its own endpoints)."""

    name = "llama-server"
    title = "llama.cpp server"

    def probe(self, url: str, *, timeout: float, what: str) -> str:
        """Wait (within ``timeout``) for ``GET /health`` to answer 200, then read
        ``/props`` ``build_info`` (e.g. ``b6123-abc1234``) as the version string."""
        base = url.rstrip("/")
        deadline = time.monotonic() + timeout
        with probe_client(url, timeout=timeout, what=what, path="/health") as http:
            while True:
                health = http.get(base + "/health")
                if health.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(LOADING_POLL_S)  # the model is still loading
            props = http.get(base + "/props") if health.status_code == 200 else None
        if health.status_code == 503:
            raise DialectError(f"{what}: llama-server still loading its model after "
                               f"{timeout:g} s (GET /health 503); raise --ollama-connect-timeout")
        data = _json(props) if props is not None else None
        if health.status_code != 200 or not isinstance(data, dict):
            raise DialectError(
                f"{what}: not a llama.cpp server (GET /health gave HTTP {health.status_code}, "
                "GET /props no JSON); point it at llama-server's port (8080 by default)"
            )
        return str(data.get("build_info") or "unknown")

    def client(self, url: str, timeouts: Timeouts) -> Any:
        from pytest_ollama_regress.dialects.llama_server_client import LlamaServerClient

        return LlamaServerClient(url, connect_timeout=timeouts.connect,
                                 stall_timeout=timeouts.stall, request_timeout=timeouts.request)

    def capabilities(self, client: Any) -> dict[str, list[str]]:
        props = client.props()
        modalities = props.get("modalities") or {}
        caps = ["completion", *(name for name, on in sorted(modalities.items())
                                if on and name != "text")]
        return {str(m.get("id")): list(caps) for m in client.models()}

    def catalogue(self, client: Any) -> list[Any]:
        """The one model a llama-server serves (its ``/v1/models`` id is the file name)."""
        from pytest_ollama_regress.catalogue.names import ModelEntry

        caps = self.capabilities(client)
        entries = []
        for model in client.models():
            name = str(model.get("id"))
            meta = model.get("meta") or {}
            entries.append(ModelEntry(
                name=name, variant=re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                family=name, quant=None, capabilities=tuple(caps.get(name, ())),
                capabilities_source="props", details=dict(meta),
                context_length=meta.get("n_ctx_train") if isinstance(meta, dict) else None))
        return entries

    def describe(self, version: str) -> str:
        return f"llama.cpp server {version}"

    launch = LlamaServerLaunch()

    def claims(self, entrypoint: Sequence[str], labels: Mapping[str, str]) -> bool:
        return any(Path(part).name == "llama-server" for part in entrypoint[:3])


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


LLAMA_SERVER = LlamaServerDialect()
