"""How far apart two llama-server launches are numerically: the figures behind the numerics
thresholds (``--ollama-numerics-*``, docs/benchmarks.md "Numerics").

Run from the repository root (needs ``.ci/build-llama-server.sh``'s binary and model, or
``LLAMA_SERVER_BIN`` / ``LLAMA_SERVER_MODEL``)::

    python benchmarks/bench_numerics.py                 # every pair, 3 repeats
    python benchmarks/bench_numerics.py --repeats 5 --pairs same threads

Each repeat starts a fresh baseline server (``-c 2048 -np 1 -t 1``) and a fresh candidate
that differs by the pair's launch arguments, decodes the numerics prompt set greedily on both
(the suite's own requests: ``/completion`` from token ids with ``n_probs``), forces the
baseline's tokens on the candidate past the first divergence, and prints the suite's verdict
with the default thresholds. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from pytest_ollama_regress.dialects.llama_server_client import LlamaServerClient
from pytest_ollama_regress.suite.divergence import summarise
from pytest_ollama_regress.suite.golden import compare, first_divergence, prompt_set
from pytest_ollama_regress.suite.numerics_gate import Thresholds, judge
from pytest_ollama_regress.suite.numerics_probe import aligned_positions
from pytest_ollama_regress.suite.numerics_requests import LlamaServerNumerics
from pytest_ollama_regress.suite.settings import (
    DEFAULT_MAX_KL,
    DEFAULT_MIN_EXACT,
    DEFAULT_MIN_SAME_TOP,
    DEFAULT_NUMERICS_TOKENS,
)

CACHE = Path(os.environ.get("OLLAMA_REGRESS_CACHE", Path.home() / ".cache/pytest-ollama-regress"))
BASE = ("-c", "2048", "-np", "1", "-t", "1")
PAIRS: dict[str, tuple[str, ...]] = {
    "same": BASE,
    "threads": ("-c", "2048", "-np", "1", "-t", "2"),
    "batch": (*BASE, "-b", "64", "-ub", "64"),
    "kv-q8_0": (*BASE, "--cache-type-k", "q8_0", "--cache-type-v", "q8_0"),
    "kv-q4_0": (*BASE, "--cache-type-k", "q4_0", "--cache-type-v", "q4_0"),
}
START_TIMEOUT = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(binary: Path, model: Path, args: Sequence[str]) -> Iterator[str]:
    """A llama-server on 127.0.0.1 with ``args``; its URL once ``/health`` answers 200."""
    port = _free_port()
    process = subprocess.Popen([str(binary), "-m", str(model), "--host", "127.0.0.1",
                                "--port", str(port), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise SystemExit(f"llama-server {' '.join(args)} exited {process.returncode}: "
                                 f"{(process.stderr.read() if process.stderr else '')[-1500:]}")
            try:
                if httpx.get(url + "/health", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"llama-server {' '.join(args)} not healthy in {START_TIMEOUT:g} s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def measure(binary: Path, model: Path, candidate_args: Sequence[str], tokens: int,
            limits: Thresholds) -> dict[str, object]:
    """One repeat: fresh baseline and candidate servers, the suite's comparison."""
    requests = LlamaServerNumerics()
    cases = [c for c in prompt_set().cases if not c.vision]
    started = time.monotonic()
    with (server(binary, model, BASE) as base_url, server(binary, model, candidate_args) as url,
          LlamaServerClient(base_url, stall_timeout=300) as base,
          LlamaServerClient(url, stall_timeout=300) as cand):
        name = "model"
        theirs = [requests.greedy(base, name, c, tokens=tokens) for c in cases]
        mine = [requests.greedy(cand, name, c, tokens=tokens) for c in cases]
        positions = []
        for b, c in zip(theirs, mine, strict=True):
            diverged = first_divergence(b, c)
            later = [] if diverged is None else list(range(diverged + 1, len(b.tokens)))
            positions += aligned_positions(b, c, requests.score(cand, name, b, later))
    mismatches = compare(theirs, mine)
    divergence = summarise(positions)
    verdict = judge("base", len(cases), mismatches, divergence, limits)
    return {"exact": f"{len(cases) - len(mismatches)}/{len(cases)}",
            "first": ", ".join(f"{m.case}@{m.position}" for m in mismatches) or "-",
            "mean": divergence.mean_kl if divergence else float("nan"),
            "p99": divergence.p99_kl if divergence else float("nan"),
            "max": divergence.max_kl if divergence else float("nan"),
            "same_top": divergence.same_top_rate if divergence else float("nan"),
            "positions": divergence.positions if divergence else 0,
            "verdict": "regression" if verdict.regression else (
                "identical" if verdict.identical else "healthy change"),
            "seconds": time.monotonic() - started}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=Path(os.environ.get(
        "LLAMA_SERVER_BIN") or CACHE / "llama-server-11434.0.0" / "llama-server"))
    parser.add_argument("--model", type=Path, default=Path(os.environ.get(
        "LLAMA_SERVER_MODEL") or CACHE / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=DEFAULT_NUMERICS_TOKENS)
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    args = parser.parse_args(argv)
    for path in (args.bin, args.model):
        if not path.is_file():
            print(f"{path} is missing: run .ci/build-llama-server.sh or set LLAMA_SERVER_BIN / "
                  "LLAMA_SERVER_MODEL", file=sys.stderr)
            return 2
    limits = Thresholds(DEFAULT_MAX_KL, DEFAULT_MIN_SAME_TOP, DEFAULT_MIN_EXACT)
    print(f"baseline: {' '.join(BASE)}; {args.tokens} tokens per prompt, prompt set "
          f"v{prompt_set().version}; thresholds mean KL <= {limits.max_kl}, same top >= "
          f"{limits.min_same_top:.0%}")
    for pair in args.pairs:
        print(f"\n### {pair}: candidate {' '.join(PAIRS[pair])}\n")
        print("| run | exact | first divergence | mean KL | p99 KL | max KL | same top | "
              "positions | verdict | s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for run in range(1, args.repeats + 1):
            r = measure(args.bin, args.model, PAIRS[pair], args.tokens, limits)
            print(f"| {run} | {r['exact']} | {r['first']} | {r['mean']:.2e} | {r['p99']:.2e} | "
                  f"{r['max']:.2e} | {r['same_top']:.1%} | {r['positions']} | {r['verdict']} | "
                  f"{r['seconds']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
