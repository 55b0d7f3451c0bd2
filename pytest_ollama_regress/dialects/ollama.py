"""The Ollama dialect: ``GET /api/version`` to probe, :class:`OllamaClient` to talk,
``/api/tags`` + ``/api/show`` for the models and their capabilities."""

from __future__ import annotations

from typing import Any

from pytest_ollama_regress.dialects.base import DialectError, Timeouts, probe_client

__all__ = ["OLLAMA", "OllamaDialect"]


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


OLLAMA = OllamaDialect()
