"""Start-up stays light: loading the plugin starts no server and imports no client, simulator,
image or container code until a test needs a target (issue 15; timed in
``benchmarks/bench_startup.py``, guarded here without timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: modules the plugin must not load before a test uses a target
HEAVY = (
    "httpx",
    "httpcore",
    "h11",
    "PIL",
    "yaml",
    "pytest_ollama_regress.sim.server",
    "pytest_ollama_regress.dialects.deadlines",
    "pytest_ollama_regress.dialects.ollama_client",
    "pytest_ollama_regress.dialects.llama_server_client",
    "pytest_ollama_regress.containers.engine",
    "pytest_ollama_regress.containers.compose_file",
    "pytest_ollama_regress.containers.provider",
    "pytest_ollama_regress.catalogue.model_registry",
    "pytest_ollama_regress.inventory.formats",
    "pytest_ollama_regress.suite.pictures",
    "pytest_ollama_regress.suite.snapshots",
    "pytest_ollama_regress.suite.ttft_probe",
    "pytest_ollama_regress.suite.numerics_probe",
    "pytest_ollama_regress.suite.divergence",
    "pytest_ollama_regress.suite.golden",
)

#: runs pytest in this child and prints what was loaded and running when the session ended
SPY = """
import json, sys, threading
import pytest

class Spy:
    def pytest_sessionfinish(self, session):
        self.seen = {"modules": sorted(sys.modules),
                     "threads": sorted(t.name for t in threading.enumerate())}

spy = Spy()
code = pytest.main(sys.argv[1:], plugins=[spy])
print("SPY " + json.dumps({"code": int(code), **spy.seen}))
"""


def _spy(folder: Path, *args: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OLLAMA_"))}
    done = subprocess.run([sys.executable, "-c", SPY, "-p", "no:cacheprovider", *args],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in done.stdout.splitlines() if line.startswith("SPY ")]
    assert lines, done.stdout + done.stderr
    return json.loads(lines[-1][4:])


def _heavy(modules: list[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    pass\n")
    (tmp_path / "test_target.py").write_text(
        "def test_target(ollama_target):\n    assert ollama_target.url\n")
    return tmp_path


@pytest.mark.parametrize("args", [("--collect-only", "-q", "test_plain.py"),
                                  ("--collect-only", "-q", "test_target.py"),
                                  ("-q", "test_plain.py")],
                         ids=["collect-only", "collect-only-target-test", "run-without-target"])
def test_plugin_loads_and_starts_nothing_a_run_does_not_use(folder: Path,
                                                            args: tuple[str, ...]) -> None:
    without = _spy(folder, "-p", "no:ollama_regress", *args)
    with_plugin = _spy(folder, *args)
    assert with_plugin["code"] == without["code"] == 0
    assert _heavy(with_plugin["modules"]) <= _heavy(without["modules"])
    assert "pytest_ollama_regress.plugin" in with_plugin["modules"]
    assert with_plugin["threads"] == without["threads"]


def test_a_test_using_a_target_starts_the_simulator(folder: Path) -> None:
    """The control: the spy sees what a target's first use loads and starts."""
    seen = _spy(folder, "-q", "test_target.py")
    assert seen["code"] == 0
    assert {"httpx", "pytest_ollama_regress.sim.server",
            "pytest_ollama_regress.dialects.deadlines"} <= _heavy(seen["modules"])
    assert any(name.startswith("ollama-sim-") for name in seen["threads"])
