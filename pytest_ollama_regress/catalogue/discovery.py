"""The models of a server, discovered once per URL per session (cached in the session)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.catalogue.names import ModelEntry
from pytest_ollama_regress.dialects import DEFAULT as DEFAULT_DIALECT
from pytest_ollama_regress.dialects import get as get_dialect
from pytest_ollama_regress.session import session_of

__all__ = ["discovered"]


def discovered(config: pytest.Config, client: Any,
               dialect: str = DEFAULT_DIALECT) -> list[ModelEntry]:
    """The catalogue of the server behind ``client``, as its dialect lists it (Ollama:
    ``/api/tags`` + ``/api/show``)."""
    state = session_of(config)
    url = str(client.base_url).rstrip("/")
    with state.lock:
        if url not in state.catalogues:
            state.catalogues[url] = get_dialect(dialect).catalogue(client)
        return state.catalogues[url]
