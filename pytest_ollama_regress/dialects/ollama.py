"""The Ollama dialect: ``GET /api/version`` to probe, :class:`OllamaClient` to talk,
``/api/tags`` + ``/api/show`` for the models and their capabilities."""

from __future__ import annotations

from typing import Any

import httpx

from pytest_ollama_regress.dialects import deadlines
from pytest_ollama_regress.dialects.base import DialectError, Timeouts

__all__ = ["OLLAMA", "OllamaDialect"]


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


class OllamaDialect:
    """Ollama's native API (the first dialect)."""

    name = "ollama"
    title = "Ollama"

    def probe(self, url: str, *, timeout: float, what: str) -> str:
        """``GET /api/version`` of ``url``, all of it within ``timeout`` (a trickling body
        too)."""
        try:
            # Certificates only matter for https; skipping their load makes a probe ~50x faster.
            verify = url.startswith("https:")
            with deadlines.limits(total=timeout), httpx.Client(
                transport=deadlines.transport(verify=verify),
                timeout=timeout,
                trust_env=False,
                follow_redirects=False,
            ) as http:
                response = http.get(url.rstrip("/") + "/api/version")
        except httpx.TimeoutException as exc:
            raise DialectError(
                f"{what}: no answer from GET /api/version within {timeout:g} s "
                f"({type(exc).__name__}); check the address or raise --ollama-connect-timeout"
            ) from None
        except httpx.HTTPError as exc:
            raise DialectError(
                f"{what}: cannot connect ({_one_line(exc) or type(exc).__name__}); start the "
                "server or fix the address"
            ) from None
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
