"""How a TTFT round is sent, per server dialect (the probe in ``ttft_probe`` is the same).

Ollama: *cold* unloads the model before each round (load + prefill), *warm* keeps it loaded;
every round's prompt differs ("Round N."), so no prompt cache hides the prefill. llama.cpp's
server keeps its one model loaded: *cold* sends ``cache_prompt: false`` (a full prefill),
*warm* repeats one prompt so every measured round is a prompt-cache hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pytest_ollama_regress.suite.model_facts import ModelFacts

__all__ = ["KEEP_ALIVE", "PROBE_OPTIONS", "ThinkPlan", "TtftRequests", "requests_for"]

PROBE_OPTIONS: dict[str, Any] = {"temperature": 0, "seed": 7, "num_predict": 8}
KEEP_ALIVE = "10m"


@dataclass(frozen=True)
class ThinkPlan:
    """What to send as ``think`` and whether the model thinks anyway (gpt-oss)."""

    think: bool | None
    always_thinks: bool


class TtftRequests(Protocol):
    """One dialect's way to send TTFT rounds."""

    def plan(self, client: Any, model: str) -> ThinkPlan: ...

    def prime(self, client: Any, model: str, kind: str) -> None:
        """Before warm rounds of ``kind`` prompts: what leaves the server ready (not measured)."""

    def before_round(self, client: Any, model: str, *, cold: bool) -> None: ...

    def prompt(self, kind: str, round_no: int, *, cold: bool) -> str: ...

    def send(self, client: Any, model: str, prompt: str, plan: ThinkPlan, *, cold: bool,
             options: dict[str, Any]) -> Any: ...


class OllamaRequests:
    """``/api/generate`` rounds; cold = unloaded before each round."""

    def plan(self, client: Any, model: str) -> ThinkPlan:
        """``think: false`` for a model with the ``thinking`` capability (TTFT is the first
        answer token); a model that ignores it (gpt-oss) is timed to its first token of
        either kind."""
        facts = ModelFacts.from_show(model, client.show(model))
        return ThinkPlan(False if "thinking" in facts.capabilities else None, facts.always_thinks)

    def prime(self, client: Any, model: str, kind: str) -> None:
        client.generate(model, "", options=PROBE_OPTIONS, keep_alive=KEEP_ALIVE)

    def before_round(self, client: Any, model: str, *, cold: bool) -> None:
        if cold:
            client.unload(model)

    def prompt(self, kind: str, round_no: int, *, cold: bool) -> str:
        from pytest_ollama_regress.suite.ttft_probe import probe_prompt

        return probe_prompt(kind, round_no)

    def send(self, client: Any, model: str, prompt: str, plan: ThinkPlan, *, cold: bool,
             options: dict[str, Any]) -> Any:
        return client.generate(model, prompt, options=options, keep_alive=KEEP_ALIVE,
                               think=plan.think)


class LlamaServerRequests:
    """``/v1/chat/completions`` rounds; cold = ``cache_prompt: false``, warm = the server's
    own prompt caching (on by default; an image started with ``--no-cache-prompt`` loses
    it, which is what the gate should see)."""

    def plan(self, client: Any, model: str) -> ThinkPlan:
        return ThinkPlan(None, False)

    def prime(self, client: Any, model: str, kind: str) -> None:
        """Send the warm prompt once, so measured rounds can hit the prompt cache."""
        self.send(client, model, self.prompt(kind, 0, cold=False), self.plan(client, model),
                  cold=False, options=PROBE_OPTIONS)

    def before_round(self, client: Any, model: str, *, cold: bool) -> None:
        """Nothing: a cold round disables the prompt cache instead."""

    def prompt(self, kind: str, round_no: int, *, cold: bool) -> str:
        from pytest_ollama_regress.suite.ttft_probe import probe_prompt

        return probe_prompt(kind, round_no if cold else 0)

    def send(self, client: Any, model: str, prompt: str, plan: ThinkPlan, *, cold: bool,
             options: dict[str, Any]) -> Any:
        sampling = {"temperature": options.get("temperature", 0), "seed": options.get("seed", 7),
                    "max_tokens": options.get("num_predict", 8),
                    **({"cache_prompt": False} if cold else {})}
        return client.chat(model, [{"role": "user", "content": prompt}], options=sampling)


_BY_DIALECT: dict[str, TtftRequests] = {
    "ollama": OllamaRequests(),
    "llama-server": LlamaServerRequests(),
}


def requests_for(dialect: str) -> TtftRequests:
    """The TTFT rounds of ``dialect``."""
    try:
        return _BY_DIALECT[dialect]
    except KeyError:
        raise ValueError(f"no TTFT rounds for the {dialect!r} dialect") from None
