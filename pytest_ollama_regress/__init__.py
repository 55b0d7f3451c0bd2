"""pytest-ollama-regress: regression-test LLM servers (Ollama first) from pytest.

The public surface for users writing their own checks, providers, dialects or report formats
is re-exported here, lazily, so that importing the simulator (``pytest_ollama_regress.sim``,
what the container images run) does not pull in the HTTP client stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_ollama_regress.dialects.async_ollama_client import AsyncOllamaClient
    from pytest_ollama_regress.dialects.base import Dialect, Timeouts
    from pytest_ollama_regress.dialects.ollama_client import (
        Completion,
        DebugRender,
        OllamaClient,
        OllamaError,
    )
    from pytest_ollama_regress.dialects.timing import ServerMetrics, StreamTiming, percentiles
    from pytest_ollama_regress.inventory.formats import InventoryReport, ReportFormat, TextFormat
    from pytest_ollama_regress.options import Option, OptionError
    from pytest_ollama_regress.session import SessionState, session_of
    from pytest_ollama_regress.suite.checks import Check
    from pytest_ollama_regress.suite.expectations import Expectations
    from pytest_ollama_regress.targets.registry import (
        Endpoint,
        Provider,
        Target,
        TargetError,
        TargetInfo,
        TargetRegistry,
    )
    from pytest_ollama_regress.versions import Version, parse_version

_EXPORTS = {
    "AsyncOllamaClient": "dialects.async_ollama_client",
    "Check": "suite.checks",
    "Completion": "dialects.ollama_client",
    "DebugRender": "dialects.ollama_client",
    "Dialect": "dialects.base",
    "Endpoint": "targets.registry",
    "Expectations": "suite.expectations",
    "InventoryReport": "inventory.formats",
    "OllamaClient": "dialects.ollama_client",
    "OllamaError": "dialects.ollama_client",
    "Option": "options",
    "OptionError": "options",
    "Provider": "targets.registry",
    "ReportFormat": "inventory.formats",
    "ServerMetrics": "dialects.timing",
    "SessionState": "session",
    "StreamTiming": "dialects.timing",
    "Target": "targets.registry",
    "TargetError": "targets.registry",
    "TargetInfo": "targets.registry",
    "TargetRegistry": "targets.registry",
    "TextFormat": "inventory.formats",
    "Timeouts": "dialects.base",
    "Version": "versions",
    "parse_version": "versions",
    "percentiles": "dialects.timing",
    "session_of": "session",
}

__all__ = [
    "AsyncOllamaClient",
    "Check",
    "Completion",
    "DebugRender",
    "Dialect",
    "Endpoint",
    "Expectations",
    "InventoryReport",
    "OllamaClient",
    "OllamaError",
    "Option",
    "OptionError",
    "Provider",
    "ReportFormat",
    "ServerMetrics",
    "SessionState",
    "StreamTiming",
    "Target",
    "TargetError",
    "TargetInfo",
    "TargetRegistry",
    "TextFormat",
    "Timeouts",
    "Version",
    "parse_version",
    "percentiles",
    "session_of",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"pytest_ollama_regress.{module}"), name)
