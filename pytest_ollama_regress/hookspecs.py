"""Every hook this plugin adds, in one place (registered by ``plugin.py``).

Implement them in a ``conftest.py`` or a plugin of your own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_ollama_regress.inventory.formats import FormatRegistry
    from pytest_ollama_regress.targets.registry import TargetRegistry


@pytest.hookspec
def pytest_ollama_register_targets(config: pytest.Config, registry: TargetRegistry) -> None:
    """Add providers and targets to ``registry`` (called once from ``pytest_configure``)."""


@pytest.hookspec
def pytest_ollama_inventory_formats(config: pytest.Config, formats: FormatRegistry) -> None:
    """Add report formats to ``formats`` with ``formats.register(fmt)``, ``fmt`` a
    :class:`~pytest_ollama_regress.inventory.formats.ReportFormat`; ``--ollama-inventory``
    then writes the suffixes it names (called once from ``pytest_configure``, before the
    output paths are checked)."""
