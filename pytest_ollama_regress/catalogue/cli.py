"""``ollama-regress models ...``: the registry lifecycle and Strategy A names from the console.

Operations: ``import``, ``deprecate-placeholders``, ``purge-deprecated``, ``backfill-paths``,
``list``, ``name``.  Every writing operation takes ``--dry-run`` (prints the planned changes,
leaves the file byte-identical).  Errors are one line on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_ollama_regress.catalogue.listing import (
    DOCKER_TIMEOUT_S,
    ListedModel,
    Listing,
    ListingError,
    docker_listing,
    read_listing_file,
    read_listing_stream,
)
from pytest_ollama_regress.catalogue.model_registry import (
    DEFAULT_REGISTRY,
    PLACEHOLDER_REASON,
    Change,
    Registry,
    RegistryError,
    apply_changes,
    load_registry,
    locked,
    models_store,
    plan_backfill,
    plan_deprecate_placeholders,
    plan_import,
    plan_purge,
    visible,
)
from pytest_ollama_regress.catalogue.names import assign_variant_names, discover, strategy_a

EXIT_ERROR = 2


class CliError(Exception):
    """A one-line error for the user."""


def _add_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry",
        type=Path,
        default=Path(DEFAULT_REGISTRY),
        metavar="PATH",
        help=f"registry file (default: ./{DEFAULT_REGISTRY})",
    )


def _add_dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dry-run", action="store_true", help="print the planned changes, write nothing"
    )


def _add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir",
        type=Path,
        metavar="DIR",
        help="Ollama model store for manifest paths (default: $OLLAMA_MODELS or ~/.ollama/models)",
    )


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``models`` and its operations to the ``ollama-regress`` subparsers."""
    models = subparsers.add_parser(
        "models",
        help="model registry: import, deprecate, purge, backfill paths, list, Strategy A names",
        description=__doc__,
    )
    ops = models.add_subparsers(dest="operation", required=True, metavar="OPERATION")

    imp = ops.add_parser("import", help="import the models a server holds into the registry")
    src = imp.add_mutually_exclusive_group(required=True)
    src.add_argument("--url", help="read /api/tags and /api/show of this Ollama server")
    src.add_argument(
        "--file", metavar="PATH", help="read `ollama list` output (text or JSON); '-' is stdin"
    )
    src.add_argument("--docker", metavar="CONTAINER", help="run `ollama list` in this container")
    imp.add_argument(
        "--docker-timeout", type=float, default=DOCKER_TIMEOUT_S, metavar="S",
        help=f"time limit for docker exec (default {DOCKER_TIMEOUT_S:g} s)",
    )
    imp.add_argument(
        "--deprecate-placeholders", action="store_true",
        help="also deprecate legacy model-ollama-gguf* placeholder entries",
    )
    _add_registry(imp)
    _add_store(imp)
    _add_dry_run(imp)
    imp.set_defaults(handler=_run(_import))

    dep = ops.add_parser("deprecate-placeholders", help="deprecate model-ollama-gguf* entries")
    dep.add_argument("--reason", default=PLACEHOLDER_REASON, help="deprecation reason to record")
    _add_registry(dep)
    _add_dry_run(dep)
    dep.set_defaults(handler=_run(_deprecate))

    purge = ops.add_parser("purge-deprecated", help="remove deprecated entries")
    purge.add_argument(
        "--placeholders-only", action="store_true", help="remove only deprecated placeholders"
    )
    _add_registry(purge)
    _add_dry_run(purge)
    purge.set_defaults(handler=_run(_purge))

    back = ops.add_parser(
        "backfill-paths", help="fill missing download_path from the model store or ollama://NAME"
    )
    _add_registry(back)
    _add_store(back)
    _add_dry_run(back)
    back.add_argument("-v", "--verbose", action="store_true", help="also say what is unchanged")
    back.set_defaults(handler=_run(_backfill))

    lst = ops.add_parser("list", help="list registry entries")
    lst.add_argument("--show-deprecated", action="store_true", help="include deprecated entries")
    lst.add_argument("--json", action="store_true", help="print the entries as JSON")
    _add_registry(lst)
    lst.set_defaults(handler=_run(_list))

    name = ops.add_parser("name", help="print Strategy A names for Ollama model names")
    name.add_argument("names", nargs="+", metavar="MODEL", help="e.g. llava:7b")
    name.add_argument("--json", action="store_true", help="print family, quant, variant as JSON")
    name.set_defaults(handler=_run(_name))
    return models


def _run(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (CliError, RegistryError, ListingError) as exc:
            print(f"ollama-regress models {args.operation}: error: {exc}", file=sys.stderr)
            return EXIT_ERROR

    return handler


def _store(args: argparse.Namespace) -> Path:
    return args.models_dir.expanduser() if args.models_dir else models_store()


def _report(changes: Sequence[Change], dry_run: bool) -> None:
    prefix = "would " if dry_run else ""
    for ch in changes:
        print(prefix + ch.describe())
    verb = "planned" if dry_run else "applied"
    print(f"{len(changes)} change(s) {verb}" + (" (dry run: nothing written)" if dry_run else ""))


def _mutate(
    args: argparse.Namespace, plan: Callable[[Registry], list[Change]]
) -> int:
    if args.dry_run:
        changes = plan(load_registry(args.registry))
    else:
        with locked(args.registry) as reg:
            changes = plan(reg)
            apply_changes(reg, changes)
    _report(changes, args.dry_run)
    return 0


def _read_listing(args: argparse.Namespace) -> Listing:
    if args.url:
        from pytest_ollama_regress.dialects.ollama_client import OllamaClient, OllamaError

        try:
            with OllamaClient(args.url) as client:
                entries = discover(client)
        except (OllamaError, ValueError) as exc:
            raise CliError(f"--url {args.url}: {exc}") from None
        models = [
            ListedModel(
                name=e.name,
                digest=e.digest,
                size=e.size,
                modified=e.modified_at,
                details=e.details,
                capabilities=e.capabilities,
                capabilities_source=e.capabilities_source,
            )
            for e in entries
        ]
        return Listing(models, [], "tags")
    if args.docker:
        return docker_listing(args.docker, timeout=args.docker_timeout)
    if args.file == "-":
        return read_listing_stream(sys.stdin)
    return read_listing_file(args.file)


def _import(args: argparse.Namespace) -> int:
    listing = _read_listing(args)
    if listing.errors:
        for err in listing.errors:
            print(f"ollama-regress models import: unparseable {err}", file=sys.stderr)
        raise CliError(
            f"{len(listing.errors)} unparseable listing line(s) above; fix or remove them "
            "(nothing was imported)"
        )
    store = _store(args)

    def plan(reg: Registry) -> list[Change]:
        changes = plan_import(reg, listing.models, store=store)
        if args.deprecate_placeholders:
            changes += plan_deprecate_placeholders(reg)
        return changes

    return _mutate(args, plan)


def _deprecate(args: argparse.Namespace) -> int:
    return _mutate(args, lambda reg: plan_deprecate_placeholders(reg, args.reason))


def _purge(args: argparse.Namespace) -> int:
    return _mutate(args, lambda reg: plan_purge(reg, placeholders_only=args.placeholders_only))


def _backfill(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.verbose:
        print(f"model store: {store}" + ("" if store.is_dir() else " (absent: ollama:// paths)"))
    return _mutate(args, lambda reg: plan_backfill(reg, store))


def _list(args: argparse.Namespace) -> int:
    if not Path(args.registry).exists():
        raise CliError(
            f"{args.registry}: no such registry file; give --registry PATH, or create it with "
            "`ollama-regress models import`"
        )
    entries = visible(load_registry(args.registry), show_deprecated=args.show_deprecated)
    if args.json:
        print(json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    if not entries:
        print("no models" + ("" if args.show_deprecated else " (deprecated hidden)"))
        return 0
    rows = [("NAME", "SERVED AS", "CAPABILITIES", "PATH")]
    for e in entries:
        name = e["name"] + (" (deprecated)" if e.get("deprecated") else "")
        rows.append(
            (
                name,
                e.get("served_model_id") or "",
                ",".join(e.get("capabilities") or []),
                e.get("download_path") or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[3])
    return 0


def _name(args: argparse.Namespace) -> int:
    try:
        variants = assign_variant_names(args.names)
        results = [(n, strategy_a(n), variants[n]) for n in args.names]
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(
            json.dumps(
                [
                    {"served_model_id": n, "family": s.family, "quant": s.quant, "variant": v}
                    for n, s, v in results
                ],
                indent=2,
            )
        )
    else:
        for n, _, v in results:
            print(f"{n}\t{v}")
    return 0
