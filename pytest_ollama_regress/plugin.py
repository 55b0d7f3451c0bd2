"""Entry point of the pytest plugin: wiring only.

Each capability registers its own options, markers, fixtures and hooks in a module of
``pytest_ollama_regress.plugins``; this module just loads them, as pytest's own
``_pytest`` package does with its features.
"""

import pytest

from pytest_ollama_regress import hookspecs

pytest_plugins = [
    "pytest_ollama_regress.cmdline",
    "pytest_ollama_regress.targets.plugin",
    "pytest_ollama_regress.containers.plugin",
    "pytest_ollama_regress.catalogue.plugin",
    "pytest_ollama_regress.suite.plugin",
    "pytest_ollama_regress.inventory.plugin",
    "pytest_ollama_regress.placement.plugin",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register every hook the plugin adds (:mod:`pytest_ollama_regress.hookspecs`)."""
    pluginmanager.add_hookspecs(hookspecs)
