"""The inventory's row schema, once: every metadata column with its Markdown / terminal header,
its CSV / JSON key and how to read it from a row; then the status and notes columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_ollama_regress.inventory.table import InventoryRow, format_created


@dataclass(frozen=True)
class Column:
    """One metadata column."""

    key: str  # CSV header, JSON key
    header: str | None  # Markdown / terminal header; None: in the files only
    text: Callable[[InventoryRow], str]  # the cell (CSV, Markdown, terminal)
    data: Callable[[InventoryRow], Any] | None = None  # the JSON value, when not ``text``

    def value(self, row: InventoryRow) -> Any:
        """The JSON value."""
        return (self.data or self.text)(row)


COLUMNS: tuple[Column, ...] = (
    Column("target", "Target", lambda r: r.target),
    Column("ref", None, lambda r: r.ref),
    Column("kind", None, lambda r: r.kind),
    Column("short_id", "Short ID", lambda r: r.short_id),
    Column("image_id", "Image ID", lambda r: r.image_id),
    Column("repo_tags", "Tags", lambda r: ";".join(r.repo_tags), lambda r: r.repo_tags),
    Column("repo_digests", "Digests", lambda r: ";".join(r.repo_digests),
           lambda r: r.repo_digests),
    Column("created_utc", "Created (UTC)", lambda r: format_created(r.created),
           lambda r: format_created(r.created) or None),
    Column("revision", "Revision", lambda r: r.revision),
    Column("source", "Source", lambda r: r.source),
    Column("version", "OCI version", lambda r: r.version),
    Column("server_version", "Server version", lambda r: r.server_version),
)
#: The free-text column after the statuses (Markdown and terminal: only when a row has notes).
NOTES = Column("notes", "Notes", lambda r: r.notes)


def status_text(row: InventoryRow, marker: str) -> str:
    """Status cell; empty when the target ran no test with that marker."""
    status = row.statuses.get(marker)
    return status.text() if status else ""


def table(rows: Sequence[InventoryRow], markers: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells for people (Markdown, terminal): the headed metadata columns, one
    column per marker, then notes when any row has some."""
    meta = [c for c in COLUMNS if c.header is not None]
    tail = [NOTES] if any(r.notes for r in rows) else []
    headers = [*(c.header or c.key for c in meta), *markers, *(c.header or c.key for c in tail)]
    cells = [[*(c.text(r) for c in meta), *(status_text(r, m) for m in markers),
              *(c.text(r) for c in tail)] for r in rows]
    return headers, cells
