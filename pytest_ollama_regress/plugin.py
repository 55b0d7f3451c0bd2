"""Entry point of the pytest plugin: wiring only.

Each capability registers its own options, markers, fixtures and hooks in a module of
``pytest_ollama_regress.plugins``; this module just loads them, as pytest's own
``_pytest`` package does with its features.
"""

pytest_plugins = [
    "pytest_ollama_regress.plugins.cmdline",
    "pytest_ollama_regress.plugins.targets",
    "pytest_ollama_regress.plugins.containers",
    "pytest_ollama_regress.plugins.catalogue",
    "pytest_ollama_regress.plugins.suite",
    "pytest_ollama_regress.plugins.inventory",
    "pytest_ollama_regress.plugins.placement",
]
