"""The model catalogue's options (one row each)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ollama_regress.catalogue.selector import ModelSelector, parse_model_selector
from pytest_ollama_regress.options import Option, read_all

OPTIONS = (
    Option("ollama_model", "model(s) to test: all, vision, a name, or @registry.json (default: "
           "discovery)", metavar="NAME", ini_help="model(s) to test (see --ollama-model)"),
    Option("ollama_vision_model", "vision model to test (default: the first vision model the "
           "server reports)", metavar="NAME", ini_help="vision model to test"),
)


@dataclass(frozen=True)
class CatalogueSettings:
    """Which models the tests use."""

    model: str | None
    vision_model: str | None
    selector: ModelSelector


def read_settings(config: pytest.Config) -> CatalogueSettings:
    """The catalogue's settings; a bad ``--ollama-model`` is a one-line ``UsageError``."""
    v = read_all(config, OPTIONS)
    model = v["ollama_model"].value if v["ollama_model"].given else None
    try:
        selector = parse_model_selector(model)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return CatalogueSettings(model, v["ollama_vision_model"].value or None, selector)
