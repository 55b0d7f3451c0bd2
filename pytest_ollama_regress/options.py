"""Options as table rows: one :class:`Option` declares the command-line flag, the ini key
and (where it makes sense) an environment variable; :func:`read` is the one reader.

Each capability keeps its table in its own ``settings.py`` and turns it into a typed settings
object there; its hook module only calls :func:`add_options`. The model is pytest's own
``add_option_ini`` / ``get_option_ini`` (``_pytest/logging.py``). Precedence: command line,
then environment variable, then ini key, then the row's default. A value that does not parse
is a one-line ``pytest.UsageError`` naming where it came from (``--ollama-x``, ``env X`` or
``ini ollama_x``) and how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest

__all__ = ["GROUP", "Option", "OptionError", "Value", "add_options", "no_session", "read"]

GROUP = "ollama"
GROUP_TITLE = "Ollama regression testing"

Kind = Literal["text", "list", "args", "flag"]


class OptionError(ValueError):
    """A value that does not parse; the message says what to write instead."""


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is the ini key and the ``dest``; the flag is ``--`` + its dashes.

    ``kind``: ``text`` (one value), ``list`` (repeatable flag, ``linelist`` ini key), ``args``
    (repeatable flag, space-separated ini key) or ``flag`` (``store_true``, ``bool`` ini key).
    ``parse(raw)`` turns what was given into the setting (raising :class:`OptionError` or
    ``ValueError``); without it the raw value is the setting. ``default`` is the raw value
    when nothing is given. ``const`` makes the flag's value optional (``--ollama-sim``).
    """

    name: str
    help: str
    kind: Kind = "text"
    metavar: str | None = None
    default: Any = None
    parse: Callable[[Any], Any] | None = None
    choices: tuple[str, ...] | None = None
    const: str | None = None
    env: str | None = None
    ini_help: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def _ini_type(self) -> str | None:
        return {"list": "linelist", "args": "args", "flag": "bool"}.get(self.kind)

    def _ini_default(self) -> Any:
        if self.kind == "flag":
            return bool(self.default)
        if self.kind in ("list", "args"):
            return list(self.default or [])
        return "" if self.default is None else str(self.default)


@dataclass(frozen=True)
class Value:
    """A setting and where it came from (for messages)."""

    value: Any
    source: str
    given: bool


def add_options(parser: pytest.Parser, options: Iterable[Option]) -> None:
    """Declare each row's flag (in the ``ollama`` group) and ini key."""
    group = parser.getgroup(GROUP, GROUP_TITLE)
    for option in options:
        kwargs: dict[str, Any] = {"dest": option.name, "help": _help(option)}
        if option.kind == "flag":
            kwargs.update(action="store_true", default=None)
        else:
            kwargs["metavar"] = option.metavar
            if option.kind in ("list", "args"):
                kwargs["action"] = "append"
            if option.choices:
                kwargs["choices"] = option.choices
            if option.const is not None:
                kwargs.update(nargs="?", const=option.const)
        group.addoption(option.flag, **kwargs)
        parser.addini(option.name, option.ini_help or f"see {option.flag}",
                      type=option._ini_type(), default=option._ini_default())


def _help(option: Option) -> str:
    text = option.help.replace("%", "%%")
    return f"{text} (env {option.env})" if option.env else text


def _given(option: Option, value: Any) -> bool:
    return value is not None and value != [] and value != ""


def _raw(config: pytest.Config, option: Option) -> tuple[Any, str, bool]:
    cli = config.getoption(option.name, None)
    if cli is not None and cli != []:  # an explicit empty value is given too
        return cli, option.flag, True
    if option.env and os.environ.get(option.env, "").strip():
        text = os.environ[option.env]
        if option.kind in ("list", "args"):
            return text.split(), f"env {option.env}", True
        if option.kind == "flag":
            return text.strip().lower() in ("1", "true", "yes", "on"), f"env {option.env}", True
        return text.strip(), f"env {option.env}", True
    ini = config.getini(option.name)
    if option.kind in ("list", "args"):
        ini = [v for v in ini if str(v).strip()]
    elif option.kind == "text":
        ini = str(ini).strip()
    given = _given(option, ini) and ini != option._ini_default()
    if option.kind == "flag":
        return bool(ini), f"ini {option.name}", bool(ini)
    if not _given(option, ini):
        return option.default, "default", False
    return ini, f"ini {option.name}", given


def read(config: pytest.Config, option: Option) -> Value:
    """The option's setting: command line, env, ini, default; parse errors -> UsageError."""
    raw, source, given = _raw(config, option)
    if option.choices and option.kind == "text" and raw is not None and raw not in option.choices:
        raise pytest.UsageError(
            f"{source} = {raw!r}: choose one of {', '.join(option.choices)}")
    if option.parse is None or raw is None:
        return Value(raw, source, given)
    try:
        return Value(option.parse(raw), source, given)
    except ValueError as exc:
        shown = " ".join(raw) if isinstance(raw, list) else raw
        reason = " ".join(str(exc).split())
        joint = " " if reason.startswith("is ") else ": "
        raise pytest.UsageError(f"{source} {shown!r}{joint}{reason}") from None


def read_all(config: pytest.Config, options: Sequence[Option]) -> dict[str, Value]:
    """Every row of a table, by name."""
    return {option.name: read(config, option) for option in options}


def no_session(config: pytest.Config) -> bool:
    """``--help``, ``--markers`` and ``--version`` configure pytest without running tests."""
    return bool(getattr(config.option, "help", False) or getattr(config.option, "markers", False)
                or getattr(config.option, "version", False))
