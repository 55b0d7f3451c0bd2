"""The Ollama dialect: ``GET /api/version`` to probe, :class:`OllamaClient` to talk,
``/api/tags`` + ``/api/show`` for the models and their capabilities."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ollama_regress.dialects.base import DialectError, Listening, Timeouts, probe_client

__all__ = ["OLLAMA", "OllamaDialect", "OllamaLaunch"]

#: Ollama's startup line (``routes.go``), unchanged since 0.1: ``Listening on ADDR (version V)``
LISTENING_RE = re.compile(r"Listening on (?P<host>\S+):(?P<port>\d+) \(version (?P<version>[^)\s]*)\)")


class OllamaLaunch:
    """Ollama images: ``OLLAMA_HOST`` sets the address (it logs the port it got, and its
    version), ``OLLAMA_MODELS`` the models folder."""

    port = 11434
    listening_line = "Listening on 127.0.0.1:<port>"
    reserved_env = ("OLLAMA_HOST",)

    def listen_env(self, host: str, port: int) -> dict[str, str]:
        return {"OLLAMA_HOST": f"{host}:{port}"}

    def check_command(self, command: Sequence[str]) -> None:
        """Nothing to refuse: Ollama takes its address from ``OLLAMA_HOST`` only."""

    def models_env(self, mount: str, folder: Path, read_only: bool, env: Mapping[str, str],
                   command: Sequence[str]) -> dict[str, str]:
        models = {"OLLAMA_MODELS": mount}
        if read_only:
            # Ollama prunes unused blobs and empty folders at start; on a read-only mount
            # that fails (and a test run should not prune the user's models anyway).
            models["OLLAMA_NOPRUNE"] = env.get("OLLAMA_NOPRUNE", "1")
        return models

    def find_listening(self, log: str) -> Listening | None:
        match = LISTENING_RE.search(log)
        if match is None:
            return None
        return Listening(match["host"], int(match["port"]), match["version"])


class OllamaDialect:
    """Ollama's native API (the first dialect)."""

    name = "ollama"
    title = "Ollama"

    def probe(self, url: str, *, timeout: float, what: str) -> str:
        """``GET /api/version`` of ``url``, all of it within ``timeout`` (a trickling body
        too)."""
        with probe_client(url, timeout=timeout, what=what, path="/api/version") as http:
            response = http.get(url.rstrip("/") + "/api/version")
        try:
            data = response.json()
        except ValueError:
            data = None
        version = data.get("version") if isinstance(data, dict) else None
        if response.status_code != 200 or not isinstance(version, str):
            ctype = response.headers.get("content-type", "no content type").split(";")[0]
            raise DialectError(
                f"{what}: not an Ollama server (GET /api/version gave HTTP "
                f'{response.status_code} {ctype}, not JSON with a "version"); point it at '
                "Ollama's API (port 11434 by default)"
            )
        return version

    def client(self, url: str, timeouts: Timeouts) -> Any:
        from pytest_ollama_regress.dialects.ollama_client import OllamaClient

        return OllamaClient(url, connect_timeout=timeouts.connect, stall_timeout=timeouts.stall,
                            request_timeout=timeouts.request)

    def capabilities(self, client: Any) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for model in client.tags():
            name = model.get("name") or model.get("model")
            found[name] = list(client.show(name).get("capabilities") or [])
        return found

    def catalogue(self, client: Any) -> list[Any]:
        from pytest_ollama_regress.catalogue.names import discover

        return discover(client)

    def describe(self, version: str) -> str:
        return f"Ollama {version}"

    launch = OllamaLaunch()

    def claims(self, entrypoint: Sequence[str], labels: Mapping[str, str]) -> bool:
        return any(Path(part).name == "ollama" for part in entrypoint[:1])


OLLAMA = OllamaDialect()
