"""The ``ollama-regress`` console command: one subcommand per capability."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pytest_ollama_regress.catalogue import cli as catalogue_cli
from pytest_ollama_regress.inventory import cli as inventory_cli
from pytest_ollama_regress.sim import cli as sim_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ollama-regress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim_cli.register(sub)
    inventory_cli.register(sub)
    catalogue_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; each subcommand stores its handler as ``args.handler``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
