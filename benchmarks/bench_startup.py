"""What loading a pytest plugin costs: ``pytest --collect-only`` with it against without it.

Run from the repository root::

    python benchmarks/bench_startup.py               # 30 rounds, about 1 minute on 2 cores
    python benchmarks/bench_startup.py --rounds 10   # quicker, noisier

A trivial test file in a fresh folder (its own ``pytest.ini``, so no project conftest is
read) is collected with ``python -m pytest --collect-only -q -p no:cacheprovider`` with every
installed plugin ("all"), and with one plugin disabled: this one (``-p no:ollama_regress``),
syrupy (``-p no:syrupy``) and pytest-benchmark (``-p no:benchmark``). Each round runs the four
commands once, in an order rotated per round (interleaved, so drifting load touches all
alike); a warm-up round first writes the bytecode caches. A plugin's cost is, per round, the
run with every plugin minus the run without it: wall time (``perf_counter`` around the child)
and CPU time (user + system of the child, from ``os.wait4``). The table gives the median and
p90 of those per-round differences, and the medians of the runs themselves.

On a shared machine the times move with the other jobs' load; ``--instructions`` adds what
does not: each command once under ``valgrind --tool=callgrind`` (about a minute each), and a
plugin's cost in instructions executed (user space, this process and its children).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: variant name -> extra pytest arguments
VARIANTS: dict[str, list[str]] = {
    "all": [],
    "ollama_regress": ["-p", "no:ollama_regress"],
    "syrupy": ["-p", "no:syrupy"],
    "benchmark": ["-p", "no:benchmark"],
}
#: a child taking longer than this is a broken run, not a measurement
RUN_LIMIT_S = 60.0


def run_once(folder: Path, extra: list[str]) -> tuple[float, float]:
    """One ``pytest --collect-only`` in ``folder``: (wall ms, CPU ms of the child)."""
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
               *extra, "test_trivial.py"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "OLLAMA_")) and k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    deadline = start + RUN_LIMIT_S
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            child.kill()
            raise RuntimeError(f"{' '.join(command)} ran over {RUN_LIMIT_S:g} s")
        time.sleep(0.0005)
    wall = time.perf_counter() - start
    output = child.stdout.read().decode(errors="replace") if child.stdout else ""
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0 or "1 test collected" not in output:
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{output}")
    return wall * 1e3, (usage.ru_utime + usage.ru_stime) * 1e3


def instructions(folder: Path, extra: list[str]) -> int:
    """Instructions one ``pytest --collect-only`` executes (callgrind's total, every process)."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-cg-") as out:
        command = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                   f"--callgrind-out-file={out}/cg.%p", sys.executable, "-m", "pytest",
                   "--collect-only", "-q", "-p", "no:cacheprovider", *extra, "test_trivial.py"]
        subprocess.run(command, cwd=folder, capture_output=True, check=True,
                       timeout=RUN_LIMIT_S * 20)
        total = 0
        for dump in Path(out).glob("cg.*"):
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("totals:") or line.startswith("summary:"):
                    total += int(line.split()[1])
                    break
        return total


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def trivial_project(tmp: str) -> Path:
    folder = Path(tmp)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_trivial.py").write_text("def test_trivial():\n    pass\n")
    return folder


def measure(rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per variant, (wall ms, CPU ms) of each round, rounds interleaved."""
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = trivial_project(tmp)
        for name in names:  # warm-up: bytecode caches written, files in the page cache
            run_once(folder, VARIANTS[name])
        for index in range(rounds):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                results[name].append(run_once(folder, VARIANTS[name]))
    return results


def instruction_table() -> list[str]:
    """Each plugin's cost in instructions (every plugin minus the run without it)."""
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        folder = trivial_project(tmp)
        for name in VARIANTS:  # bytecode caches
            run_once(folder, VARIANTS[name])
        counts = {name: instructions(folder, args) for name, args in VARIANTS.items()}
    lines = ["| plugin | cost (M instructions) | run without it (M) |", "|---|---|---|"]
    for name, count in counts.items():
        if name != "all":
            lines.append(f"| {name} | {(counts['all'] - count) / 1e6:+.0f} | {count / 1e6:.0f} |")
    lines.append(f"| (every plugin loaded) | | {counts['all'] / 1e6:.0f} |")
    return lines


def table(results: dict[str, list[tuple[float, float]]]) -> list[str]:
    base = results["all"]
    lines = [
        "| plugin | cost wall p50 (ms) | wall p90 | cost CPU p50 (ms) | CPU p90 | "
        "run without it, wall p50 | CPU p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        if name == "all":
            continue
        wall = [b[0] - r[0] for b, r in zip(base, runs, strict=True)]
        cpu = [b[1] - r[1] for b, r in zip(base, runs, strict=True)]
        lines.append(
            f"| {name} | {statistics.median(wall):+.0f} | {p90(wall):+.0f} | "
            f"{statistics.median(cpu):+.0f} | {p90(cpu):+.0f} | "
            f"{statistics.median(r[0] for r in runs):.0f} | "
            f"{statistics.median(r[1] for r in runs):.0f} |"
        )
    lines.append(f"| (every plugin loaded) | | | | | {statistics.median(b[0] for b in base):.0f} | "
                 f"{statistics.median(b[1] for b in base):.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions under valgrind (load-independent)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    before = os.getloadavg()
    results = measure(args.rounds)
    after = os.getloadavg()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {args.rounds} rounds; "
          f"load average {before[0]:.1f} before, {after[0]:.1f} after")
    print("\n".join(table(results)))
    if args.instructions:
        print()
        print("\n".join(instruction_table()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
