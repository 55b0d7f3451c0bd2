"""Refuse option values pytest would also read as test paths (``--ollama-models-dir DIR``).

pytest picks its rootdir and ini file from the command line's existing paths *before* it loads
plugins, so it does not know that ``DIR`` in ``--ollama-models-dir DIR`` belongs to an option:
the rootdir moves to ``DIR`` (snapshots and reports land there, the project's ini file is not
read). No plugin hook runs early enough to change that, so the plugin stops the run with a
one-line error naming the ``--option=value`` form, which pytest never mistakes for a path:

- path options (:data:`PATH_OPTIONS`) always, so a command that works today does not break
  once the file it writes exists;
- any other ``--ollama-*`` option whose separate value is an existing path.

Checked: the command line and ``PYTEST_ADDOPTS`` (what pytest reads the rootdir from).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

#: options whose value is a path on this machine
PATH_OPTIONS = ("--ollama-models-dir", "--ollama-inventory", "--ollama-snapshot-dir")
PREFIX = "--ollama-"


def misplaced_value(
    args: Sequence[str], value_of: Callable[[str], str], cwd: Path
) -> tuple[str, str, str] | None:
    """The first ``(option, value, kind)`` written as two words that pytest would take for a
    path; ``value_of(option)`` is the option's kind: ``required``, ``optional`` or ``flag``."""
    for option, value in zip(args, args[1:], strict=False):
        if option == "--":
            return None
        if not option.startswith(PREFIX) or "=" in option or value.startswith("-"):
            continue
        kind = value_of(option)
        if kind == "flag":
            continue  # the next word really is a test path
        if (kind == "required" and option in PATH_OPTIONS) or _exists(cwd, value):
            return option, value, kind
    return None


def _exists(cwd: Path, value: str) -> bool:
    path = value.split("::", 1)[0]
    try:
        return (cwd / Path(path).expanduser()).exists()
    except (OSError, ValueError):
        return False


def option_kinds(parser: pytest.Parser) -> Callable[[str], str]:
    """``kind(option)``: ``required`` (takes the next word), ``optional`` (takes it unless it
    starts with ``-``, like ``--ollama-sim``) or ``flag``; asks the parser."""
    probe = "\x00ollama-probe"
    known: dict[str, str] = {}

    def kind(option: str) -> str:
        if option not in known:
            try:
                parser.parse_known_args([option])
            except pytest.UsageError:
                known[option] = "required"  # "expected one argument"
            else:
                positional = vars(parser.parse_known_args([probe]))
                taken = vars(parser.parse_known_args([option, probe]))
                known[option] = "optional" if any(
                    _holds(value, probe) and not _holds(positional.get(dest), probe)
                    for dest, value in taken.items()
                ) else "flag"
        return known[option]

    return kind


def _holds(value: object, probe: str) -> bool:
    return value == probe or (isinstance(value, list) and probe in value)


def message(option: str, value: str, kind: str) -> str:
    if kind == "optional":
        return (
            f"{option} {value}: {option} takes {value} as its value and pytest takes it for a "
            f"test path; write {option}=VALUE (with '='), and test paths before {option}"
        )
    return (
        f"{option} {value}: write {option}={value} (with '='): as a separate word pytest also "
        "takes it for a test path and moves its rootdir there"
    )


def pytest_load_initial_conftests(
    early_config: pytest.Config, parser: pytest.Parser, args: list[str]
) -> None:
    env = os.environ.get("PYTEST_ADDOPTS", "")
    sources = [(list(early_config.invocation_params.args), "")]
    if env.strip():
        sources.insert(0, (shlex.split(env), " (in PYTEST_ADDOPTS)"))
    kind = option_kinds(parser)
    for words, where in sources:
        found = misplaced_value(words, kind, early_config.invocation_params.dir)
        if found is not None:
            raise pytest.UsageError(message(*found) + where)
