"""Inventory outputs: CSV / JSON / Markdown by suffix, the terminal table, the GitHub step
summary, and PNG / SVG pictures (status matrix, TTFT per image) with the ``plot`` extra."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_ollama_regress.dialects.timing import percentiles
from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, Boundary
from pytest_ollama_regress.inventory.table import (
    ERROR,
    FAIL,
    OK,
    SKIP,
    UNTESTED,
    InventoryError,
    InventoryRow,
    format_created,
)

TABLE_SUFFIXES = {".csv": "csv", ".json": "json", ".md": "md", ".markdown": "md"}
PLOT_SUFFIXES = {".png": "png", ".svg": "svg"}
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

#: (header, row -> cell) of the metadata columns, in table order.
META_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("Target", lambda r: r.target),
    ("Short ID", lambda r: r.short_id),
    ("Image ID", lambda r: r.image_id),
    ("Tags", lambda r: ";".join(r.repo_tags)),
    ("Digests", lambda r: ";".join(r.repo_digests)),
    ("Created (UTC)", lambda r: format_created(r.created)),
    ("Revision", lambda r: r.revision),
    ("Source", lambda r: r.source),
    ("OCI version", lambda r: r.version),
    ("Server version", lambda r: r.server_version),
)
CSV_META = ("target", "ref", "kind", "short_id", "image_id", "repo_tags", "repo_digests",
            "created_utc", "revision", "source", "version", "server_version")


def output_format(path: str | Path) -> str:
    """``csv``, ``json``, ``md``, ``png`` or ``svg`` from the suffix; one-line error otherwise."""
    suffix = Path(path).suffix.lower()
    fmt = TABLE_SUFFIXES.get(suffix) or PLOT_SUFFIXES.get(suffix)
    if fmt is None:
        raise InventoryError(
            f"--ollama-inventory {path}: unknown suffix {suffix or '(none)'!r} "
            "(use .csv, .json, .md, .png or .svg)"
        )
    return fmt


def _cell(row: InventoryRow, marker: str) -> str:
    """Status cell; empty when the target ran no test with that marker."""
    status = row.statuses.get(marker)
    return status.text() if status else ""


def table(rows: Sequence[InventoryRow], markers: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the inventory table (metadata, one column per marker, notes)."""
    headers = [h for h, _ in META_COLUMNS] + list(markers)
    cells = [[get(r) for _, get in META_COLUMNS] + [_cell(r, m) for m in markers]
             for r in rows]
    if any(r.notes for r in rows):
        headers.append("Notes")
        for r, line in zip(rows, cells, strict=True):
            line.append(r.notes)
    return headers, cells


def to_csv(rows: Sequence[InventoryRow], markers: Sequence[str]) -> str:
    """CSV: metadata, ``<marker>_status`` and ``<marker>_first_failure``, notes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*CSV_META, *(f"{m}_{k}" for m in markers for k in ("status", "first_failure")),
                     "notes"])
    for r in rows:
        meta = [r.target, r.ref, r.kind, r.short_id, r.image_id, ";".join(r.repo_tags),
                ";".join(r.repo_digests), format_created(r.created), r.revision, r.source,
                r.version, r.server_version]
        statuses = []
        for m in markers:
            s = r.statuses.get(m)
            statuses += [s.status, s.first_failure or ""] if s else ["", ""]
        writer.writerow([*meta, *statuses, r.notes])
    return buf.getvalue()


def boundary_dict(found: Boundary, paths: Sequence[str] = DEFAULT_DIFF_PATHS) -> dict[str, Any]:
    """The boundary as plain data (for JSON)."""
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


def to_json(
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
) -> str:
    """JSON: ``{"markers", "rows": [...], "boundary": {...} | null}``."""
    data = {
        "markers": list(markers),
        "rows": [
            {
                "target": r.target, "ref": r.ref, "kind": r.kind, "short_id": r.short_id,
                "image_id": r.image_id, "repo_tags": r.repo_tags, "repo_digests": r.repo_digests,
                "created_utc": format_created(r.created) or None, "revision": r.revision,
                "source": r.source, "version": r.version, "server_version": r.server_version,
                "statuses": {m: {"status": s.status, "first_failure": s.first_failure}
                             for m in markers if (s := r.statuses.get(m))},
                "notes": r.notes,
            }
            for r in rows
        ],
        "boundary": boundary_dict(found, paths) if found else None,
    }
    return json.dumps(data, indent=2) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
    *,
    title: str = "Ollama image inventory",
) -> str:
    """A Markdown section: heading, pipe table, boundary lines, git diff in a code block."""
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


def write_inventory(
    path: str | Path,
    rows: Sequence[InventoryRow],
    markers: Sequence[str],
    found: Boundary | None = None,
    paths: Sequence[str] = DEFAULT_DIFF_PATHS,
    ttft: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
) -> list[Path]:
    """Write the inventory in the format the suffix names; returns the files written.

    ``.png`` / ``.svg`` write the status matrix to ``path`` and, with TTFT samples (seconds by
    image, then by case), the TTFT chart beside it as ``<stem>-ttft<suffix>``.
    """
    path = Path(path)
    fmt = output_format(path)
    if path.parent != Path(""):
        path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        path.write_text(to_csv(rows, markers), encoding="utf-8", newline="")
    elif fmt == "json":
        path.write_text(to_json(rows, markers, found, paths), encoding="utf-8")
    elif fmt == "md":
        path.write_text(to_markdown(rows, markers, found, paths), encoding="utf-8")
    else:
        written = [plot_status_matrix(rows, markers, path)]
        samples = {t: cases for t, cases in (ttft or {}).items() if any(cases.values())}
        if samples:
            written.append(plot_ttft(samples, path.with_name(f"{path.stem}-ttft{path.suffix}")))
        return written
    return [path]


def append_step_summary(markdown: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append to the file named by ``GITHUB_STEP_SUMMARY`` when it is set; returns it."""
    target = (os.environ if environ is None else environ).get(STEP_SUMMARY_ENV)
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return path


# --------------------------------------------------------------------------- pictures

_COLOURS = {OK: "#2e9e44", FAIL: "#d62728", ERROR: "#ff7f0e", SKIP: "#bdbdbd",
            UNTESTED: "#ffffff"}


def require_matplotlib(option: str = "--ollama-inventory") -> None:
    """One-line error when the ``plot`` extra is missing (found, not imported: that waits
    until a picture is drawn)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise InventoryError(
            f"{option} .png/.svg needs matplotlib: pip install 'pytest-ollama-regress[plot]'"
        )


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
