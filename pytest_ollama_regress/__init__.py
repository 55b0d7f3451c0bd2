"""pytest-ollama-regress: regression-test Ollama servers from pytest."""

__version__ = "0.1.0"
