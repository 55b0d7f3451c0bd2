"""Environment values that look secret are not printed (headers, messages; CI logs keep them).

A key is secret-looking when one of its ``_``-separated words is, or contains, a word such as
TOKEN, SECRET, PASSWORD, KEY, AUTH or CREDENTIAL (``HF_TOKEN``, ``OPENAI_API_KEY``,
``AWS_SECRET_ACCESS_KEY``; not ``OLLAMA_KEEP_ALIVE``). Containers still get the real values.
"""

from __future__ import annotations

from collections.abc import Mapping

MASK = "***"
_CONTAINS = ("TOKEN", "SECRET", "PASSW", "APIKEY", "CREDENTIAL", "PRIVATE", "COOKIE")
_WORDS = {"KEY", "AUTH", "AUTHORIZATION", "PASS", "PASSPHRASE", "PAT", "SIGNATURE"}


def secret_key(key: str) -> bool:
    """True for keys whose values should not be printed."""
    words = key.upper().split("_")
    return any(w in _WORDS or any(part in w for part in _CONTAINS) for w in words)


def masked(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with secret-looking values replaced by ``***``."""
    return {k: MASK if secret_key(k) and v else v for k, v in env.items()}


def env_text(env: Mapping[str, str]) -> str:
    """``K=V K=V`` for messages, secrets masked; ``{}`` when empty."""
    return " ".join(f"{k}={v}" for k, v in masked(env).items()) or "{}"
