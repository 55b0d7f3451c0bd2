"""``ollama-regress sim``: run the simulator in the foreground, as ``ollama serve`` would.

Flags win over the environment: ``--port`` over ``OLLAMA_HOST``, ``--profile`` over
``OLLAMA_SIM_PROFILE``, ``--version`` over ``OLLAMA_SIM_VERSION``. The rest of the
environment (``OLLAMA_NUM_PARALLEL``, ``OLLAMA_DEBUG``, ...) configures the server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_ollama_regress.sim.features import DEFAULT_VERSION, check_version
from pytest_ollama_regress.sim.profiles import PROFILES, get_profile

DEFAULT_PORT = 11434


def parse_ollama_host(value: str) -> tuple[str, int]:
    """``OLLAMA_HOST`` as the server reads it: ``host``, ``host:port`` or
    ``scheme://host:port/path`` (default 127.0.0.1:11434; http 80, https 443 by scheme)."""
    text = value.strip().strip("\"'").strip()
    if not text:
        return "127.0.0.1", DEFAULT_PORT
    scheme = "http"
    default_port = DEFAULT_PORT
    if "://" in text:
        scheme, _, text = text.partition("://")
        default_port = {"http": 80, "https": 443}.get(scheme.lower(), DEFAULT_PORT)
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"OLLAMA_HOST={value!r}: invalid port; use host:port, "
                         "e.g. 127.0.0.1:11434") from None
    host = parts.hostname or "127.0.0.1"
    return host, port if port is not None else default_port


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sim`` subcommand to ``ollama-regress``."""
    parser = subparsers.add_parser(
        "sim", help="run the Ollama simulator",
        description="Serve a simulated Ollama API (profiles: " + ", ".join(PROFILES) + ").")
    parser.add_argument("--port", type=int, default=None,
                        help="TCP port (default: from OLLAMA_HOST, else 11434)")
    parser.add_argument("--host", default=None,
                        help="address to bind (default: from OLLAMA_HOST, else 127.0.0.1)")
    parser.add_argument("--profile", default=None,
                        help="regression profile (default: OLLAMA_SIM_PROFILE or good)")
    parser.add_argument("--version", dest="sim_version", default=None,
                        help=f"Ollama version to simulate (default: OLLAMA_SIM_VERSION or "
                             f"{DEFAULT_VERSION})")
    parser.set_defaults(handler=run)
    return parser


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """Host, port, profile and version from flags and environment (ValueError if bad)."""
    host, port = parse_ollama_host(env.get("OLLAMA_HOST", ""))
    if args.port is not None:
        port = args.port
    if args.host:
        host = args.host
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range: use 0-65535")
    profile = args.profile or env.get("OLLAMA_SIM_PROFILE", "").strip() or "good"
    get_profile(profile)
    version = args.sim_version or env.get("OLLAMA_SIM_VERSION", "").strip() or DEFAULT_VERSION
    return {"host": host, "port": port, "profile": profile, "version": check_version(version)}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; 2 on bad input, ``OLLAMA_SIM_FAIL_AT_START`` if set."""
    from pytest_ollama_regress.sim.server import SimServer

    env = dict(os.environ)
    fail = env.get("OLLAMA_SIM_FAIL_AT_START", "").strip()
    if fail:
        try:
            code = int(fail)
        except ValueError:
            code = 1
        print(f"Error: simulated start failure (OLLAMA_SIM_FAIL_AT_START={fail})",
              file=sys.stderr, flush=True)
        return code
    try:
        settings = resolve(args, env)
        server = SimServer(profile=settings["profile"], version=settings["version"], env=env,
                           host=settings["host"], port=settings["port"], log_stream="stderr")
    except ValueError as exc:
        print(f"ollama-regress sim: error: {exc}", file=sys.stderr, flush=True)
        return 2
    with contextlib.suppress(ValueError):  # ValueError: not in the main thread
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except OSError as exc:
        print(f"Error: listen tcp {settings['host']}:{settings['port']}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m pytest_ollama_regress.sim``)."""
    parser = argparse.ArgumentParser(prog="ollama-regress")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    args = parser.parse_args(["sim", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args))
