"""PNG / SVG (the ``plot`` extra): the status matrix, and the TTFT chart beside it as
``<stem>-ttft<suffix>`` when the run measured TTFT."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ollama_regress.dialects.timing import percentiles
from pytest_ollama_regress.inventory.formats.base import InventoryReport, ReportFormat
from pytest_ollama_regress.inventory.table import (
    ERROR,
    FAIL,
    OK,
    SKIP,
    UNTESTED,
    InventoryError,
    InventoryRow,
)

_COLOURS = {OK: "#2e9e44", FAIL: "#d62728", ERROR: "#ff7f0e", SKIP: "#bdbdbd",
            UNTESTED: "#ffffff"}


def require_matplotlib(option: str = "--ollama-inventory") -> None:
    """One-line error when the ``plot`` extra is missing (found, not imported: that waits
    until a picture is drawn)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InventoryError(
            f"{option} .png/.svg needs matplotlib: pip install 'pytest-ollama-regress[plot]'"
        )


class PictureFormat(ReportFormat):
    """One picture format (``png`` or ``svg``, as matplotlib names them)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.suffixes = (f".{name}",)

    def requires(self) -> None:
        require_matplotlib()

    def write(self, report: InventoryReport, path: Path) -> list[Path]:
        written = [plot_status_matrix(report.rows, report.markers, path)]
        samples = {t: cases for t, cases in report.ttft.items() if any(cases.values())}
        if samples:
            written.append(plot_ttft(samples, path.with_name(f"{path.stem}-ttft{path.suffix}")))
        return written


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), layout="constrained")


def plot_status_matrix(rows: Sequence[InventoryRow], markers: Sequence[str], path: Path) -> Path:
    """Images (rows, oldest first) by markers (columns), coloured by status."""
    fig = _figure(1.8 + 1.4 * max(1, len(markers)), 1.0 + 0.45 * max(1, len(rows)))
    ax = fig.add_subplot()
    for y, row in enumerate(rows):
        for x, marker in enumerate(markers):
            s = row.statuses.get(marker)
            status = s.status if s else ""
            ax.add_patch(_rect(x, y, _COLOURS.get(status, "#ffffff")))
            ax.text(x + 0.5, y + 0.5, "not tested" if status == UNTESTED else status,
                    ha="center", va="center", fontsize=8)
    ax.set_xlim(0, max(1, len(markers)))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks([x + 0.5 for x in range(len(markers))], list(markers))
    ax.set_yticks([y + 0.5 for y in range(len(rows))], [r.target for r in rows])
    ax.tick_params(length=0)
    ax.set_title("status per image and marker")
    fig.savefig(path)
    return path


def _rect(x: float, y: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), 1, 1, facecolor=colour, edgecolor="#444444")


def ttft_stats(samples: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
    """Per target: (median, p95) of its TTFT samples (seconds)."""
    out = {}
    for target, values in samples.items():
        if values:
            p = percentiles(values, (50, 95))
            out[target] = (p[50], p[95])
    return out


def ttft_series(
    samples: Mapping[str, Mapping[str, Sequence[float]]],
) -> tuple[list[str], dict[str, list[tuple[float, float] | None]]]:
    """Images (in the given order) and, per case (``short-warm``, ...), the (median, p95) of
    each image, ``None`` where that image has no sample of the case."""
    targets = [t for t, cases in samples.items() if any(cases.values())]
    cases: list[str] = []
    for by_case in samples.values():
        cases += [c for c, values in by_case.items() if values and c not in cases]
    stats = {t: ttft_stats(samples[t]) for t in targets}
    return targets, {c: [stats[t].get(c) for t in targets] for c in cases}


def plot_ttft(samples: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """TTFT median (bar) and p95 (whisker) in ms: one series per case, grouped per image.

    Cases are never pooled: a regression in one of them (say long prompts, cold) shows.
    """
    targets, series = ttft_series(samples)
    fig = _figure(2.0 + 0.35 * len(targets) * max(1, len(series)), 3.8)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, (case, values) in enumerate(series.items()):
        xs = [i - 0.4 + width * (k + 0.5) for i, v in enumerate(values) if v is not None]
        med = [v[0] * 1e3 for v in values if v is not None]
        p95 = [max(0.0, v[1] - v[0]) * 1e3 for v in values if v is not None]
        ax.bar(xs, med, width, yerr=[[0.0] * len(p95), p95], capsize=2, label=case)
    ax.set_xticks(list(range(len(targets))), targets)
    ax.set_ylabel("TTFT (ms): median, p95 whisker")
    ax.set_title("time to first token per image and case")
    ax.legend(fontsize="small")
    from matplotlib import rc_context

    with rc_context({"svg.fonttype": "none"}):  # SVG text stays text
        fig.savefig(path)
    return path
