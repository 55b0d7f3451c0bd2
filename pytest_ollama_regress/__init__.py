"""pytest-ollama-regress: regression-test Ollama servers from pytest.

The small public surface for users writing their own checks is re-exported here, lazily, so
that importing the simulator (``pytest_ollama_regress.sim``, what the container images run)
does not pull in the HTTP client stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ollama_regress.dialects.ollama_client import (
        Completion,
        DebugRender,
        OllamaClient,
        OllamaError,
    )
    from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming, percentiles
    from pytest_ollama_regress.versions import Version, parse_version

_EXPORTS = {
    "Completion": "client",
    "DebugRender": "client",
    "OllamaClient": "client",
    "OllamaError": "client",
    "ServerMetrics": "timing",
    "StreamTiming": "timing",
    "percentiles": "timing",
    "Version": "versions",
    "parse_version": "versions",
}

__all__ = [
    "Completion",
    "DebugRender",
    "OllamaClient",
    "OllamaError",
    "ServerMetrics",
    "StreamTiming",
    "Version",
    "parse_version",
    "percentiles",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"pytest_ollama_regress.{module}"), name)
