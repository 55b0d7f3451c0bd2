"""The llama.cpp server dialect: ``/health`` (503 while loading, then 200) and ``/props`` to
probe, :class:`LlamaServerClient` to talk, ``/v1/models`` + ``/props`` ``modalities`` for the
model and its capabilities."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

from pytest_ollama_regress.dialects.base import DialectError, Timeouts, probe_client

__all__ = ["LLAMA_SERVER", "LlamaServerDialect"]

LOADING_POLL_S = 0.1


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


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


LLAMA_SERVER = LlamaServerDialect()
