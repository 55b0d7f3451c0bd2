"""Report formats by suffix: the built-in ones, plus any a ``pytest_ollama_inventory_formats``
hook adds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, Boundary
from pytest_ollama_regress.inventory.formats.base import InventoryReport, ReportFormat
from pytest_ollama_regress.inventory.formats.csv_format import CsvFormat
from pytest_ollama_regress.inventory.formats.json_format import JsonFormat
from pytest_ollama_regress.inventory.formats.markdown import MarkdownFormat
from pytest_ollama_regress.inventory.formats.pictures import PictureFormat
from pytest_ollama_regress.inventory.table import InventoryError, InventoryRow


def _either(items: Sequence[str]) -> str:
    """``.a, .b or .c``"""
    return " or ".join(filter(None, (", ".join(items[:-1]), items[-1] if items else "")))


class FormatRegistry:
    """The report formats of a run, by suffix (lower-case, with the dot)."""

    def __init__(self, formats: Iterable[ReportFormat] = ()) -> None:
        self._by_suffix: dict[str, ReportFormat] = {}
        for fmt in formats:
            self.register(fmt)

    def register(self, fmt: ReportFormat) -> None:
        """Add ``fmt`` under each of its suffixes; a one-line error when one is taken."""
        if not fmt.suffixes:
            raise InventoryError(f"report format {fmt.name!r} names no suffix")
        for suffix in fmt.suffixes:
            if not suffix.startswith(".") or suffix != suffix.lower() or len(suffix) < 2:
                raise InventoryError(
                    f"report format {fmt.name!r}: suffix {suffix!r} is not a lower-case "
                    "suffix with its dot (like '.html')"
                )
            taken = self._by_suffix.get(suffix)
            if taken is not None:
                raise InventoryError(
                    f"report format {fmt.name!r}: suffix {suffix} is already taken by "
                    f"format {taken.name!r}"
                )
        for suffix in fmt.suffixes:
            self._by_suffix[suffix] = fmt

    @property
    def formats(self) -> list[ReportFormat]:
        """Every format, in the order registered."""
        return list({id(f): f for f in self._by_suffix.values()}.values())

    @property
    def suffixes(self) -> list[str]:
        """The suffix to use for each format (its first; aliases such as ``.markdown`` work
        but are not listed)."""
        return [f.suffixes[0] for f in self.formats]

    def format_for(self, path: str | Path, option: str = "--ollama-inventory") -> ReportFormat:
        """The format ``path``'s suffix names; a one-line error listing the suffixes otherwise."""
        suffix = Path(path).suffix.lower()
        fmt = self._by_suffix.get(suffix)
        if fmt is None:
            raise InventoryError(
                f"{option} {path}: unknown suffix {suffix or '(none)'!r} "
                f"(use {_either(self.suffixes)})"
            )
        return fmt

    def write(self, report: InventoryReport, path: str | Path) -> list[Path]:
        """Write ``report`` in the format ``path``'s suffix names (creating its folder)."""
        path = Path(path)
        fmt = self.format_for(path)
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        return fmt.write(report, path)


def builtin_formats() -> FormatRegistry:
    """A new registry holding the built-in formats: CSV, JSON, Markdown, PNG and SVG."""
    return FormatRegistry([CsvFormat(), JsonFormat(), MarkdownFormat(), PictureFormat("png"),
                           PictureFormat("svg")])


def output_format(path: str | Path) -> str:
    """The name of the built-in format ``path``'s suffix names (``csv``, ``json``, ``md``,
    ``png``, ``svg``); a one-line error otherwise."""
    return builtin_formats().format_for(path).name


def write_inventory(
    path: str | Path,
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
    ttft: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> list[Path]:
    """Write an inventory in the built-in format ``path`` names; returns the files written."""
    report = InventoryReport(rows, markers, found, paths, ttft=ttft or {})
    return builtin_formats().write(report, path)
