"""The inventory's options (one row each) and their typed settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ollama_regress.inventory.boundary import DEFAULT_DIFF_PATHS
from pytest_ollama_regress.inventory.table import DEFAULT_MARKERS, split_names
from pytest_ollama_regress.options import Option, read_all

OPTIONS = (
    Option("ollama_inventory", "write the image inventory (status per image and marker, "
           "LKG/FKB) to PATH: .csv, .json, .md, a picture .png/.svg (needs the plot extra), or "
           "a suffix a pytest_ollama_inventory_formats hook adds; repeatable", kind="args", metavar="PATH",
           ini_help="inventory outputs (see --ollama-inventory)"),
    Option("ollama_order", "order of the images for LKG/FKB and bisection (default auto: "
           "created when every target has a created time, else as given)",
           choices=("auto", "given", "created"), default="auto"),
    Option("ollama_bisect", "binary-search the images: run the middle one first and skip the "
           "images the search does not need (reported as 'not tested (bisect)')", kind="flag"),
    Option("ollama_diff_paths", "paths for the printed git diff command, comma or space "
           "separated (default: " + " ".join(DEFAULT_DIFF_PATHS) + ")", kind="args",
           metavar="PATHS", default=list(DEFAULT_DIFF_PATHS), parse=split_names),
    Option("ollama_inventory_markers", "markers with a status column in the inventory "
           "(default: the built-in checks)", kind="args", metavar="MARKERS",
           default=list(DEFAULT_MARKERS), parse=split_names),
)


@dataclass
class InventorySettings:
    outputs: list[str]
    order: str  # auto | given | created
    bisect: bool
    diff_paths: list[str]
    markers: list[str]


def read_settings(config: pytest.Config) -> InventorySettings:
    """The inventory's settings (the plugin checks each output's format); bad values raise a
    one-line ``UsageError``."""
    v = read_all(config, OPTIONS)
    outputs = list(v["ollama_inventory"].value or [])
    return InventorySettings(
        outputs=outputs,
        order=v["ollama_order"].value or "auto",
        bisect=bool(v["ollama_bisect"].value),
        diff_paths=list(v["ollama_diff_paths"].value),
        markers=list(v["ollama_inventory_markers"].value),
    )
