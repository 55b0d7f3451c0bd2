"""``python -m pytest_ollama_regress.sim``: the same as ``ollama-regress sim``."""

from __future__ import annotations

import sys

from pytest_ollama_regress.sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
