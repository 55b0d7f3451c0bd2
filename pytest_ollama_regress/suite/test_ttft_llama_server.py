"""ttft on llama.cpp's server: time to first token through pytest-benchmark, cold (prompt
cache off: a full prefill) and on a prompt-cache hit, short and long prompts; p50/p95/p99 in
the summary and pytest-benchmark's JSON; ``--ollama-ttft-max-regression`` gates a candidate's
median against the ``--ollama-baseline`` image's (see ``ttft_requests``)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks

pytestmark = marks("ttft", "llama-server")


@pytest.mark.parametrize("cache", ["hit", "cold"])
@pytest.mark.parametrize("prompt", ["short", "long"])
def test_time_to_first_token(ollama_ttft: Any, ollama_model: str, prompt: str, cache: str) -> None:
    result = ollama_ttft.measure(ollama_model, prompt, cold=cache == "cold",
                                 case=f"{prompt}-{'cold' if cache == 'cold' else 'cache-hit'}")
    ollama_ttft.check(result)
