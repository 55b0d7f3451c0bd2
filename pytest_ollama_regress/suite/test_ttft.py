"""ttft: time to first token through pytest-benchmark.

Short and long prompts, warm (model loaded) and cold (unloaded with ``keep_alive: 0``
before every round); ``--ollama-ttft-rounds`` / ``--ollama-ttft-warmup`` set the rounds.
pytest-benchmark's numbers *are* TTFT (see ``ttft_probe``); ``extra_info`` keeps the server's
``load_duration``, ``prompt_eval_duration`` and eval rate, and the JSON gets p50/p95/p99.
A prompt that fits one prefill batch (512 tokens) must show its first token right after the
server's load and prefill (Ollama's llama engine reports only the last batch's prefill time of
a longer prompt, so the long cases are judged by the gate alone), and with
``--ollama-baseline`` and ``--ollama-ttft-max-regression`` a candidate's median may not exceed
the baseline's by more than the allowed percentage. TTFT is the first answer token: a model
with the ``thinking`` capability is asked with ``think: false``; a model that thinks anyway
(gpt-oss) is timed to its first token of either kind, its first thinking token kept apart
(see ``ttft_probe``).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.suite.checks import marks

pytestmark = marks("ttft")


@pytest.mark.parametrize("cache", ["warm", "cold"])
@pytest.mark.parametrize("prompt", ["short", "long"])
def test_ttft(ollama_ttft: Any, ollama_model: str, prompt: str, cache: str) -> None:
    result = ollama_ttft.measure(ollama_model, prompt, cold=cache == "cold")
    ollama_ttft.check(result)
