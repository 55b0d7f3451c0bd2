"""JSON: ``{"markers": [...], "rows": [...], "boundary": {...} | null}``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, Boundary
from pytest_ollama_regress.inventory.formats.base import InventoryReport, TextFormat
from pytest_ollama_regress.inventory.formats.columns import COLUMNS, NOTES
from pytest_ollama_regress.inventory.table import InventoryRow


def boundary_dict(found: Boundary, paths: Sequence[str] = DEFAULT_DIFF_PATHS) -> dict[str, Any]:
    """The boundary as plain data."""
    return {
        "order": found.order,
        "markers": list(found.markers) if found.markers is not None else None,
        "lkg": found.lkg.target if found.lkg else None,
        "fkb": found.fkb.target if found.fkb else None,
        "monotonic": found.monotonic,
        "regressions": [[g.target, b.target] for g, b in found.regressions],
        "fixes": [[b.target, g.target] for b, g in found.fixes],
        "git_diff": found.diff_command(paths),
        "summary": found.lines(paths),
    }


def row_dict(row: InventoryRow, markers: Sequence[str]) -> dict[str, Any]:
    """One row: the metadata keys, ``statuses`` (markers the row has), ``notes``."""
    return {
        **{c.key: c.value(row) for c in COLUMNS},
        "statuses": {m: {"status": s.status, "first_failure": s.first_failure}
                     for m in markers if (s := row.statuses.get(m))},
        NOTES.key: NOTES.value(row),
    }


def to_json(
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
) -> str:
    """The JSON text (indented, final newline)."""
    data = {
        "markers": list(markers),
        "rows": [row_dict(r, markers) for r in rows],
        "boundary": boundary_dict(found, paths) if found else None,
    }
    return json.dumps(data, indent=2) + "\n"


class JsonFormat(TextFormat):
    """``.json``"""

    name = "json"
    suffixes = (".json",)

    def render(self, report: InventoryReport) -> str:
        return to_json(report.rows, report.markers, report.boundary, report.diff_paths)
