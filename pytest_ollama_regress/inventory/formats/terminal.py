"""The inventory for a terminal: short forms, aligned columns."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pytest_ollama_regress.inventory.formats.base import InventoryReport
from pytest_ollama_regress.inventory.formats.columns import table
from pytest_ollama_regress.inventory.table import InventoryRow

_LONG_HEX = re.compile(r"\b(sha256:)?([0-9a-f]{12})[0-9a-f]{28,52}\b")


def _terminal_cell(text: str) -> str:
    """Long hex (digests, revisions) cut to 12 digits plus an ellipsis."""
    return _LONG_HEX.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}…", text)


def terminal_lines(rows: Sequence[InventoryRow], markers: Sequence[str]) -> list[str]:
    """The table aligned for a terminal.

    Short forms only: the full image ID is left out (the short ID names the image), digests and
    revisions are cut to 12 hex digits; metadata columns that are empty or repeat the target in
    every row are left out too (an unlabelled image's target is its short ID). The files keep
    every column in full.
    """
    headers, cells = table(rows, markers)
    cells = [[_terminal_cell(v) for v in line] for line in cells]
    keep = [i for i, h in enumerate(headers)
            if h in markers or h == "Target"
            or (h != "Image ID" and any(line[i] not in ("", line[0]) for line in cells))]
    headers = [headers[i] for i in keep]
    cells = [[line[i] for i in keep] for line in cells]
    widths = [max(len(h), *(len(line[i]) for line in cells)) for i, h in enumerate(headers)]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    return [fmt(headers), fmt(["-" * w for w in widths]), *(fmt(line) for line in cells)]


def report_lines(report: InventoryReport) -> list[str]:
    """The table, then the boundary lines and the bisection line when there are some."""
    lines = terminal_lines(report.rows, report.markers)
    if report.boundary is not None:
        lines += report.boundary.lines(report.diff_paths)
    if report.bisect is not None:
        lines.append(report.bisect.line())
    return lines
