"""Inventory report formats: one :class:`ReportFormat` per module, chosen by the output's
suffix from a :class:`FormatRegistry`; every one gets the run as one :class:`InventoryReport`.

Add a format: a ``ReportFormat`` subclass in a new module here, listed in
:func:`builtin_formats`; or, outside this package, register an instance from a
``pytest_ollama_inventory_formats(config, formats)`` hook implementation.
"""

from pytest_ollama_regress.inventory.formats.base import (
    BisectSummary,
    InventoryReport,
    ReportFormat,
    TextFormat,
)
from pytest_ollama_regress.inventory.formats.columns import COLUMNS, NOTES, Column, table
from pytest_ollama_regress.inventory.formats.csv_format import CsvFormat, to_csv
from pytest_ollama_regress.inventory.formats.json_format import JsonFormat, to_json
from pytest_ollama_regress.inventory.formats.markdown import (
    MarkdownFormat,
    append_step_summary,
    step_summary,
    to_markdown,
)
from pytest_ollama_regress.inventory.formats.pictures import (
    PictureFormat,
    require_matplotlib,
    ttft_series,
    ttft_stats,
)
from pytest_ollama_regress.inventory.formats.registry import (
    FormatRegistry,
    builtin_formats,
    output_format,
    write_inventory,
)
from pytest_ollama_regress.inventory.formats.terminal import report_lines, terminal_lines

__all__ = [
    "COLUMNS",
    "NOTES",
    "BisectSummary",
    "Column",
    "CsvFormat",
    "FormatRegistry",
    "InventoryReport",
    "JsonFormat",
    "MarkdownFormat",
    "PictureFormat",
    "ReportFormat",
    "TextFormat",
    "append_step_summary",
    "builtin_formats",
    "output_format",
    "report_lines",
    "require_matplotlib",
    "step_summary",
    "table",
    "terminal_lines",
    "to_csv",
    "to_json",
    "to_markdown",
    "ttft_series",
    "ttft_stats",
    "write_inventory",
]
