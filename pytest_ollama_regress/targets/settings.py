"""The targets' options (one row each) and their typed settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ollama_regress.dialects import Timeouts
from pytest_ollama_regress.options import Option, OptionError, read_all
from pytest_ollama_regress.targets.registry import DEFAULT_SIM_PROFILE

DEFAULT_TIMEOUT = 120.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_REQUEST_TIMEOUT = 600.0


def seconds(raw: str | float) -> float:
    """A positive number of seconds."""
    try:
        value = float(raw)
    except ValueError:
        raise OptionError("is not a number of seconds; write e.g. 30 or 2.5") from None
    if not value > 0:
        raise OptionError("give a positive number of seconds")
    return value


def sim_version(raw: str) -> str:
    """A version the simulator can report."""
    from pytest_ollama_regress.sim import check_version

    check_version(raw)
    return raw


OPTIONS = (
    Option("ollama_url", "a server to test, e.g. http://127.0.0.1:11434; DIALECT+URL states "
           "its family (llama-server+http://127.0.0.1:8080), else it is probed (repeatable)",
           kind="list", metavar="URL", env="OLLAMA_REGRESS_URL",
           ini_help="servers to test (one per line)"),
    Option("ollama_sim", "test the embedded simulator with this profile (default good; "
           "repeatable)", kind="list", metavar="PROFILE[@VERSION]", const=DEFAULT_SIM_PROFILE,
           ini_help="simulator profiles to test (one per line)"),
    Option("ollama_sim_version", "Ollama version the simulator reports (default: the "
           "simulator's DEFAULT_VERSION)", metavar="VERSION", parse=sim_version),
    Option("ollama_timeout", f"stall timeout: the longest wait for the next streamed chunk, and "
           f"the whole of a non-streaming request (default {DEFAULT_TIMEOUT:g})",
           metavar="SECONDS", default=DEFAULT_TIMEOUT, parse=seconds),
    Option("ollama_request_timeout", f"the whole of one streamed request, however steadily it "
           f"sends (default {DEFAULT_REQUEST_TIMEOUT:g})", metavar="SECONDS",
           default=DEFAULT_REQUEST_TIMEOUT, parse=seconds),
    Option("ollama_connect_timeout", f"connect timeout, and the whole of the /api/version probe "
           f"(default {DEFAULT_CONNECT_TIMEOUT:g})", metavar="SECONDS",
           default=DEFAULT_CONNECT_TIMEOUT, parse=seconds),
    Option("ollama_strict", "fail instead of skip when a target lacks what a test needs",
           kind="flag"),
)


@dataclass(frozen=True)
class TargetSettings:
    """The targets' options, validated (command line over env over ini)."""

    urls: list[tuple[str, str]]
    sims: list[tuple[str, str]]
    sim_version: str | None
    timeout: float
    connect_timeout: float
    strict: bool
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(self.connect_timeout, self.timeout, self.request_timeout)


def read_settings(config: pytest.Config) -> TargetSettings:
    """The targets' settings; bad values raise a one-line ``pytest.UsageError``."""
    v = read_all(config, OPTIONS)
    return TargetSettings(
        urls=[(text, v["ollama_url"].source) for text in v["ollama_url"].value or []],
        sims=[(text, v["ollama_sim"].source) for text in v["ollama_sim"].value or []],
        sim_version=v["ollama_sim_version"].value,
        timeout=v["ollama_timeout"].value,
        connect_timeout=v["ollama_connect_timeout"].value,
        request_timeout=v["ollama_request_timeout"].value,
        strict=bool(v["ollama_strict"].value),
    )
