"""The built-in checks, declared once: marker name, help, whether the inventory gives it a
status column. The suite's modules take their marks from here (``CHECKS["vision"].mark``), the
suite plugin registers the markers, the inventory reads its default columns.

Adding a check: a row here and, per dialect it knows, a module in this package whose
``pytestmark`` is ``marks("<name>", "<dialect>")``: ``test_<name>.py`` for Ollama,
``test_<name>_<dialect with _>.py`` for another (``test_numctx_llama_server.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

__all__ = ["CHECKS", "Check", "marks", "module_name", "tracked_markers"]


@dataclass(frozen=True)
class Check:
    """One built-in check (a marker selecting one module of the suite)."""

    name: str
    help: str
    #: the inventory gives it a status column by default
    tracked: bool = True
    #: the server dialects it has a module for
    dialects: tuple[str, ...] = ("ollama", "llama-server")

    @property
    def mark(self) -> pytest.MarkDecorator:
        return getattr(pytest.mark, self.name)


CHECKS: dict[str, Check] = {check.name: check for check in (
    Check("vision", "image counting via the debug render, [img-N] tags, history images, the "
          "model saw the picture, invalid images -> 400, images to a non-vision model"),
    Check("debug_render", "rendered templates snapshotted per image; --ollama-baseline diffs "
          "them against the baseline image"),
    Check("numctx", "/api/ps context_length against the num_ctx policy, OLLAMA_NUM_PARALLEL, "
          "reloads, truncation, truncate:false"),
    Check("ttft", "time to first token (short/long prompts, warm/cold) through "
          "pytest-benchmark; --ollama-ttft-max-regression gates candidates against the "
          "baseline"),
    Check("numerics", "greedy outputs of a fixed prompt set snapshotted per image; with "
          "--ollama-baseline their log-probability divergence (KL, same top token) is judged "
          "by --ollama-numerics-* thresholds"),
)}


def marks(name: str, dialect: str = "ollama") -> list[pytest.MarkDecorator]:
    """The ``pytestmark`` of a check's module for one dialect: its marker and the dialect."""
    check = CHECKS[name]
    if dialect not in check.dialects:
        raise ValueError(f"check {name!r} declares no module for dialect {dialect!r}")
    return [check.mark, pytest.mark.requires_dialect(dialect)]


def module_name(name: str, dialect: str) -> str:
    """The file of a check's module for ``dialect``."""
    suffix = "" if dialect == "ollama" else "_" + dialect.replace("-", "_")
    return f"test_{name}{suffix}.py"


def tracked_markers() -> tuple[str, ...]:
    """The markers the inventory has a status column for by default."""
    return tuple(name for name, check in CHECKS.items() if check.tracked)
