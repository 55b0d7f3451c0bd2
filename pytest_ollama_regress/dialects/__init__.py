"""Server dialects: one module per server family behind :class:`~.base.Dialect`.

``BUILTIN`` names the module of each built-in dialect (imported on first use, so a session
that never meets a family never loads it); :func:`register` adds one at run time (from the
``pytest_ollama_register_targets`` hook, say). Adding a dialect: one module here with an
object that satisfies the protocol, and one line in ``BUILTIN``.
"""

from __future__ import annotations

from importlib import import_module

from pytest_ollama_regress.dialects.base import Dialect, DialectError, Timeouts

__all__ = ["BUILTIN", "DEFAULT", "Dialect", "DialectError", "Timeouts", "get", "names",
           "register"]

DEFAULT = "ollama"
#: name -> "module:attribute" of the built-in dialects
BUILTIN: dict[str, str] = {
    "ollama": "pytest_ollama_regress.dialects.ollama:OLLAMA",
    "llama-server": "pytest_ollama_regress.dialects.llama_server:LLAMA_SERVER",
}
_loaded: dict[str, Dialect] = {}


def names() -> list[str]:
    """Every known dialect name."""
    return list(dict.fromkeys([*BUILTIN, *_loaded]))


def get(name: str) -> Dialect:
    """The dialect called ``name``; :class:`DialectError` naming the known ones otherwise."""
    if name not in _loaded:
        spec = BUILTIN.get(name)
        if spec is None:
            raise DialectError(f"unknown server dialect {name!r}; known: {', '.join(names())}")
        module, _, attribute = spec.partition(":")
        _loaded[name] = getattr(import_module(module), attribute)
    return _loaded[name]


def register(dialect: Dialect) -> None:
    """Add a dialect (refused when its name is taken by another one)."""
    current = _loaded.get(dialect.name)
    if (current is not None and current is not dialect) or (
            current is None and dialect.name in BUILTIN):
        raise ValueError(f"a server dialect called {dialect.name!r} is already registered")
    _loaded[dialect.name] = dialect
