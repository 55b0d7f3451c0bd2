"""``ollama-regress inventory`` (image metadata, no tests) and ``ollama-regress boundary``
(LKG / FKB from a hand-filled or generated inventory)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS, ORDERS, find_boundary
from pytest_ollama_regress.inventory.formats import (
    InventoryReport,
    TextFormat,
    builtin_formats,
    step_summary,
    terminal_lines,
)
from pytest_ollama_regress.inventory.table import (
    DEFAULT_MARKERS,
    OTHER,
    InventoryError,
    InventoryRow,
    load_inventory,
    row_from_target,
    split_names,
)

#: The text formats by name (``--format``); pictures need a file, not stdout.
TEXT_FORMATS: dict[str, TextFormat] = {
    f.name: f for f in builtin_formats().formats if isinstance(f, TextFormat)
}
FORMATS = ("table", *TEXT_FORMATS)


def register(subparsers: Any) -> None:
    """Add the ``inventory`` and ``boundary`` subcommands."""
    inv = subparsers.add_parser(
        "inventory",
        help="image metadata through the Docker engine (no tests run)",
        description="Inspect images through the Docker engine: short and full ID, RepoTags, "
        "RepoDigests, created (UTC), OCI revision / source / version labels, and an empty "
        "status column per marker to fill by hand (then run `ollama-regress boundary`).",
    )
    inv.add_argument("refs", nargs="+", metavar="REF",
                     help="sha256:<64 hex>, a short ID, repo:tag or repo@sha256:<64 hex>")
    inv.add_argument("--format", choices=FORMATS,
                     help="output format (default: from the -o suffix, else table)")
    inv.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    inv.add_argument("--markers", action="append", metavar="NAME",
                     help="status columns to leave for filling (default: vision)")
    inv.set_defaults(handler=run_inventory)

    bnd = subparsers.add_parser(
        "boundary",
        help="last-known-good / first-known-bad from a filled inventory (.md, .csv, .json)",
        description="Read an inventory filled by hand (the Markdown table form with "
        "VisionStatus OK / FAIL / ?, or CSV) or written by --ollama-inventory, and print "
        "LKG, FKB, whether the history is monotonic, and the git diff command (also appended "
        "as Markdown to $GITHUB_STEP_SUMMARY when it is set).",
    )
    bnd.add_argument("files", nargs="+", metavar="FILE",
                     help="one inventory, or several (e.g. one per image of a CI matrix)")
    bnd.add_argument("--markers", action="append", metavar="NAME",
                     help="status columns that decide (default: every status column)")
    bnd.add_argument("--paths", action="append", metavar="PATH",
                     help=f"paths for git diff (default: {' '.join(DEFAULT_DIFF_PATHS)})")
    bnd.add_argument("--order", choices=ORDERS, default="auto",
                     help="created (needs every Created time), given (file order), or auto: "
                     "created when every row has one (default)")
    bnd.set_defaults(handler=run_boundary)


def _fail(message: str) -> int:
    print(f"ollama-regress: error: {message}", file=sys.stderr)
    return 2


def _inspect(refs: Sequence[str]) -> list[InventoryRow]:
    """Rows for image references, resolved through the Docker engine."""
    from pytest_ollama_regress.containers.engine import (
        DockerEngine,
        DockerError,
        parse_image_ref,
    )
    from pytest_ollama_regress.targets.registry import Target

    def mine(exc: Exception) -> InventoryError:
        """The engine's messages are the plugin's: drop its option names (this command only
        inspects: it has no --ollama-pull)."""
        text = str(exc).removeprefix("--ollama-image ").replace(" or pass --ollama-pull", "")
        return InventoryError(text)

    try:
        parsed = [parse_image_ref(r) for r in refs]
    except ValueError as exc:
        raise mine(exc) from None
    engine = DockerEngine()
    rows = []
    for ref in parsed:
        try:
            info = engine.resolve(ref)
        except DockerError as exc:
            raise mine(exc) from None
        rows.append(row_from_target(Target(ref.label or info.short_id, "image", ref.given, info)))
    return rows


def _output_format(path: str) -> TextFormat | None:
    """The text format ``-o``'s suffix names, or None."""
    suffix = Path(path).suffix.lower()
    return next((f for f in TEXT_FORMATS.values() if suffix in f.suffixes), None)


def run_inventory(args: argparse.Namespace) -> int:
    fmt = TEXT_FORMATS.get(args.format or "")
    if args.format is None and args.output:
        fmt = _output_format(args.output)
        if fmt is None:
            suffixes = [f.suffixes[0] for f in TEXT_FORMATS.values()]
            return _fail(f"-o {args.output}: unknown suffix; use {', '.join(suffixes[:-1])} or "
                         f"{suffixes[-1]}, or --format")
    markers = split_names(args.markers) or ["vision"]
    try:
        report = InventoryReport(_inspect(args.refs), markers)
    except InventoryError as exc:
        return _fail(str(exc))
    if fmt is None:
        text = "\n".join(terminal_lines(report.rows, report.markers)) + "\n"
    else:
        text = fmt.render(report)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            return _fail(f"-o {args.output}: cannot write ({exc.strerror or exc})")
    else:
        sys.stdout.write(text)
    return 0


def run_boundary(args: argparse.Namespace) -> int:
    selected = split_names(args.markers)
    paths = split_names(args.paths) or list(DEFAULT_DIFF_PATHS)
    known = (*DEFAULT_MARKERS, OTHER, *selected)
    try:
        rows = [row for file in args.files for row in load_inventory(file, known)]
        columns = list(dict.fromkeys(m for r in rows for m in r.statuses))
        missing = [m for m in selected if m not in columns]
        if missing:
            raise InventoryError(
                f"{' '.join(args.files)}: no status column for {', '.join(missing)} "
                f"(columns: {', '.join(columns)})"
            )
        found = find_boundary(rows, selected or None, args.order, option="--order")
    except InventoryError as exc:
        return _fail(str(exc))
    report = InventoryReport(found.rows, selected or columns, found, paths)
    for line in terminal_lines(report.rows, report.markers):
        print(line)
    print()
    for line in found.lines(paths):
        print(line)
    try:
        step_summary(report)
    except OSError as exc:
        return _fail(f"GITHUB_STEP_SUMMARY: cannot append ({exc.strerror or exc})")
    return 0
