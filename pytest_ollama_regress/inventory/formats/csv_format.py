"""CSV: the metadata columns, ``<marker>_status`` and ``<marker>_first_failure``, notes."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pytest_ollama_regress.inventory.formats.base import InventoryReport, TextFormat
from pytest_ollama_regress.inventory.formats.columns import COLUMNS, NOTES
from pytest_ollama_regress.inventory.table import InventoryRow

STATUS_FIELDS = ("status", "first_failure")


def to_csv(rows: Sequence[InventoryRow], markers: Sequence[str]) -> str:
    """The CSV text (``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*(c.key for c in COLUMNS),
                     *(f"{m}_{k}" for m in markers for k in STATUS_FIELDS), NOTES.key])
    for r in rows:
        statuses: list[str] = []
        for m in markers:
            s = r.statuses.get(m)
            statuses += [s.status, s.first_failure or ""] if s else ["", ""]
        writer.writerow([*(c.text(r) for c in COLUMNS), *statuses, NOTES.text(r)])
    return buf.getvalue()


class CsvFormat(TextFormat):
    """``.csv``"""

    name = "csv"
    suffixes = (".csv",)
    newline = ""

    def render(self, report: InventoryReport) -> str:
        return to_csv(report.rows, report.markers)
