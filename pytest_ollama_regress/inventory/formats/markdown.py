"""Markdown: a heading, the pipe table, the boundary lines and the git diff in a code block;
also what goes to the GitHub step summary."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, Boundary
from pytest_ollama_regress.inventory.formats.base import InventoryReport, TextFormat
from pytest_ollama_regress.inventory.formats.columns import table
from pytest_ollama_regress.inventory.table import InventoryRow

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
TITLE = "Ollama image inventory"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
    *,
    title: str = TITLE,
) -> str:
    """The Markdown section."""
    headers, cells = table(rows, markers)
    out = [f"### {title}", "", "| " + " | ".join(headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_md_cell(c) for c in line) + " |" for line in cells]
    if found:
        out.append("")
        lines = found.lines(paths)
        cmd = found.diff_command(paths)
        out += [f"- {line}" for line in lines if line != cmd]
        if cmd:
            out += ["", "```sh", cmd, "```"]
    return "\n".join(out) + "\n"


class MarkdownFormat(TextFormat):
    """``.md`` (also ``.markdown``)"""

    name = "md"
    suffixes = (".md", ".markdown")

    def render(self, report: InventoryReport) -> str:
        return to_markdown(report.rows, report.markers, report.boundary, report.diff_paths)


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to the file named by ``GITHUB_STEP_SUMMARY`` when it is set; returns it."""
    target = (os.environ if environ is None else environ).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


def step_summary(report: InventoryReport, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append ``report`` as Markdown to the GitHub step summary, when there is one."""
    return append_step_summary(MarkdownFormat().render(report), environ)
