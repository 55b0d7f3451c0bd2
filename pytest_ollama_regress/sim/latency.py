"""Scheduled latencies: model load, prefill per prompt token, decode per generated token.

Every response's timeline is known before it starts: the first token is due at
``runner ready + prefill_us * prompt_tokens + decode_ms`` and token ``i`` one ``decode_ms``
later each, so timing code can be checked against an exact truth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Latency:
    """Load time (ms), prefill time per prompt token (us), decode time per token (ms)."""

    load_ms: float = 40.0
    prefill_us: float = 20.0
    decode_ms: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], base: Latency | None = None) -> Latency:
        """Override ``base`` with ``OLLAMA_SIM_LOAD_MS``/``_PREFILL_US``/``_DECODE_MS``."""
        base = base or cls()
        return cls(
            load_ms=env_number(env, "OLLAMA_SIM_LOAD_MS", base.load_ms),
            prefill_us=env_number(env, "OLLAMA_SIM_PREFILL_US", base.prefill_us),
            decode_ms=env_number(env, "OLLAMA_SIM_DECODE_MS", base.decode_ms),
        )

    @property
    def load_ns(self) -> int:
        return int(self.load_ms * 1_000_000)

    def prefill_ns(self, prompt_tokens: int) -> int:
        return int(self.prefill_us * 1_000 * prompt_tokens)

    @property
    def decode_ns(self) -> int:
        return int(self.decode_ms * 1_000_000)


def env_number(env: Mapping[str, str], key: str, default: float) -> float:
    """``env[key]`` as a number >= 0 (quotes stripped), ``default`` when unset or empty."""
    raw = env.get(key, "").strip().strip("\"'")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a number: set it to e.g. {default:g}") from None
    if value < 0:
        raise ValueError(f"{key}={raw!r} is negative: set it to a value >= 0")
    return value
