"""pytest-ollama-regress: regression-test Ollama servers from pytest.

The small public surface for users writing their own checks is re-exported here.
"""

from pytest_ollama_regress.client import Completion, DebugRender, OllamaClient, OllamaError
from pytest_ollama_regress.timing import ServerMetrics, StreamTiming, percentiles
from pytest_ollama_regress.versions import Version, parse_version

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
