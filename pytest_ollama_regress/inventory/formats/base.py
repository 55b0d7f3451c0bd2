"""What every report format gets (one :class:`InventoryReport`) and what it is (a
:class:`ReportFormat`: a name, its suffixes and ``write``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, Boundary
from pytest_ollama_regress.inventory.table import InventoryRow


@dataclass(frozen=True)
class BisectSummary:
    """What ``--ollama-bisect`` did: the images (oldest first), those it tested (in probe
    order) and those it skipped."""

    ids: tuple[str, ...]
    probed: tuple[str, ...]
    skipped: tuple[str, ...]

    def line(self) -> str:
        """``bisect: tested 2 of 5 images (c a); not tested: b d e``."""
        return (
            f"bisect: tested {len(self.probed)} of {len(self.ids)} images "
            f"({' '.join(self.probed) or 'none'}); not tested: {' '.join(self.skipped) or 'none'}"
        )


@dataclass(frozen=True)
class InventoryReport:
    """Everything a report shows, as one value.

    ``markers`` are the status columns; ``boundary`` is LKG / FKB when there is one;
    ``diff_paths`` go into its git diff command; ``ttft`` holds TTFT seconds by image, then by
    case (``short-warm``, ...).
    """

    rows: Sequence[InventoryRow]
    markers: Sequence[str]
    boundary: Boundary | None = None
    diff_paths: Sequence[str] = DEFAULT_DIFF_PATHS
    bisect: BisectSummary | None = None
    ttft: Mapping[str, Mapping[str, Sequence[float]]] = field(default_factory=dict)


class ReportFormat(ABC):
    """A report format: subclass it, set ``name`` and ``suffixes``, implement ``write``.

    Register an instance with a ``FormatRegistry`` (users: from the
    ``pytest_ollama_inventory_formats`` hook).
    """

    name: str = ""
    #: lower-case, with the dot; the first is the one named in the unknown-suffix error
    suffixes: tuple[str, ...] = ()

    def requires(self) -> None:
        """Raise :class:`~pytest_ollama_regress.inventory.table.InventoryError` when something
        this format needs is missing (checked before any test runs); by default nothing."""
        return None

    @abstractmethod
    def write(self, report: InventoryReport, path: Path) -> list[Path]:
        """Write ``report`` to ``path`` (its folder exists); return every file written."""


class TextFormat(ReportFormat):
    """A format that is one text file: implement ``render``."""

    #: ``newline`` for :meth:`Path.write_text` (``""``: no translation, as CSV wants)
    newline: ClassVar[str | None] = None

    @abstractmethod
    def render(self, report: InventoryReport) -> str:
        """The file's text."""

    def write(self, report: InventoryReport, path: Path) -> list[Path]:
        path.write_text(self.render(report), encoding="utf-8", newline=self.newline)
        return [path]
