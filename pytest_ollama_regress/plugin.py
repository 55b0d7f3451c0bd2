"""Entry point of the pytest plugin: wiring only.

Each capability registers its own options, markers, fixtures and hooks in the ``plugin.py``
of its folder; this module loads them, as pytest's own ``_pytest`` package does with its
features, and registers the hook specs of ``hookspecs.py``.
"""

from __future__ import annotations

import pytest

#: the capabilities' hook modules, loaded in this order
HOOK_MODULES = (
    "pytest_ollama_regress.cmdline",
    "pytest_ollama_regress.targets.plugin",
    "pytest_ollama_regress.containers.plugin",
    "pytest_ollama_regress.catalogue.plugin",
    "pytest_ollama_regress.suite.plugin",
    "pytest_ollama_regress.inventory.plugin",
    "pytest_ollama_regress.placement.plugin",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_ollama_regress import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    # By module name. A ``pytest_plugins`` list would also search every installed
    # distribution's entry points once per name, which cost more than the modules themselves.
    for name in HOOK_MODULES:
        pluginmanager.import_plugin(name)
