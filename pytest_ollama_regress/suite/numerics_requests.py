"""How the numerics check decodes a prompt greedily and scores a baseline's tokens, per dialect.

Ollama: ``/api/chat`` streamed at temperature 0 with a fixed seed, ``logprobs`` and
``top_logprobs`` (v0.12.11+; older servers ignore them and only the greedy tokens are
compared); Ollama cannot be fed tokens, so distributions are compared over the shared prefix.
llama.cpp's server: the chat template applied by ``/apply-template``, tokenized, decoded by the
native ``/completion`` from token ids with ``n_probs``; a baseline's tokens can be forced on the
candidate one position at a time (the prompt cache makes each request one token of work), so
distributions are compared at every position of the baseline's output. Image cases go through
``/v1/chat/completions`` with ``logprobs`` (shared prefix only).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pytest_ollama_regress.suite.golden import GreedyRun, PromptCase
from pytest_ollama_regress.suite.model_facts import ModelFacts
from pytest_ollama_regress.suite.pictures import make_picture

__all__ = ["GREEDY", "TOP_K", "NumericsRequests", "numerics_requests_for", "top_map"]

TOP_K = 10
SEED = 42
GREEDY: dict[str, Any] = {"temperature": 0, "seed": SEED}
KEEP_ALIVE = "10m"


def top_map(entries: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """``top_logprobs`` entries as token text -> logprob (the likelier one of equal texts)."""
    out: dict[str, float] = {}
    for entry in entries:
        token, logprob = str(entry.get("token", "")), entry.get("logprob")
        if isinstance(logprob, int | float) and logprob > out.get(token, float("-inf")):
            out[token] = float(logprob)
    return out


def _messages(case: PromptCase) -> list[dict[str, Any]]:
    messages = [dict(m) for m in case.messages]
    if case.picture:
        messages[-1]["images"] = [make_picture(**dict(case.picture)).png]
    return messages


def _run(case: PromptCase, logprobs: Sequence[Mapping[str, Any]], pieces: Sequence[str],
         done_reason: str | None, prompt_ids: Sequence[int] = ()) -> GreedyRun:
    if not logprobs:
        return GreedyRun(case.id, tuple(pieces), done_reason=done_reason)
    ids = tuple(int(e["id"]) for e in logprobs if isinstance(e.get("id"), int))
    return GreedyRun(case.id, tuple(str(e.get("token", "")) for e in logprobs),
                     ids if len(ids) == len(logprobs) else (),
                     tuple(top_map(e.get("top_logprobs") or ()) for e in logprobs),
                     done_reason, tuple(prompt_ids))


class NumericsRequests(Protocol):
    """One dialect's greedy decode and teacher-forced scoring."""

    def greedy(self, client: Any, model: str, case: PromptCase, *, tokens: int) -> GreedyRun:
        """Decode ``case`` greedily for at most ``tokens`` tokens."""
        ...

    def score(self, client: Any, model: str, baseline: GreedyRun,
              positions: Sequence[int]) -> dict[int, dict[str, float]]:
        """The server's top-k at ``positions`` of ``baseline``'s output with the baseline's
        tokens before each forced as input; ``{}`` where the server cannot be fed tokens."""
        ...


class OllamaNumerics:
    """``/api/chat`` with ``logprobs``; no teacher forcing."""

    def greedy(self, client: Any, model: str, case: PromptCase, *, tokens: int) -> GreedyRun:
        facts = ModelFacts.from_show(model, client.show(model))
        think = False if "thinking" in facts.capabilities else None
        completion = client.chat(model, _messages(case), options={**GREEDY,
                                 "num_predict": tokens}, keep_alive=KEEP_ALIVE, think=think,
                                 logprobs=True, top_logprobs=TOP_K)
        pieces = [str((c.get("message") or {}).get("content") or "") for c in completion.chunks]
        return _run(case, completion.logprobs, [p for p in pieces if p],
                    completion.done_reason)

    def score(self, client: Any, model: str, baseline: GreedyRun,
              positions: Sequence[int]) -> dict[int, dict[str, float]]:
        return {}


class LlamaServerNumerics:
    """``/completion`` from token ids with ``n_probs``; teacher forcing by token ids."""

    def greedy(self, client: Any, model: str, case: PromptCase, *, tokens: int) -> GreedyRun:
        if case.picture:
            completion = client.chat(model, _chat_messages(case), stream=False, options={
                **GREEDY, "max_tokens": tokens, "logprobs": True, "top_logprobs": TOP_K,
                "cache_prompt": False})
            return _run(case, completion.logprobs, [completion.text], completion.done_reason)
        prompt = client.tokenize(client.apply_template(list(case.messages)), add_special=True)
        # a full prefill every time: what the prompt cache kept from another request cannot
        # change the numbers (reuse is kept for the one-token scoring requests)
        completion = client.complete(prompt, n_predict=tokens, n_probs=TOP_K,
                                     options={**GREEDY, "cache_prompt": False})
        return _run(case, completion.logprobs, [completion.text], completion.done_reason,
                    prompt)

    def score(self, client: Any, model: str, baseline: GreedyRun,
              positions: Sequence[int]) -> dict[int, dict[str, float]]:
        if not baseline.prompt_ids or len(baseline.ids) != len(baseline.tokens):
            return {}
        scored = {}
        for index in positions:
            forced = [*baseline.prompt_ids, *baseline.ids[:index]]
            completion = client.complete(forced, n_predict=1, n_probs=TOP_K, options=GREEDY)
            if completion.logprobs:
                scored[index] = top_map(completion.logprobs[0].get("top_logprobs") or ())
        return scored


def _chat_messages(case: PromptCase) -> list[dict[str, Any]]:
    """OpenAI-style messages: a picture becomes an ``image_url`` part (a data URI)."""
    out = []
    for message in _messages(case):
        images = message.pop("images", None)
        if images:
            uri = "data:image/png;base64," + base64.b64encode(images[0]).decode("ascii")
            message["content"] = [{"type": "text", "text": message["content"]},
                                  {"type": "image_url", "image_url": {"url": uri}}]
        out.append(message)
    return out


_BY_DIALECT: dict[str, NumericsRequests] = {
    "ollama": OllamaNumerics(),
    "llama-server": LlamaServerNumerics(),
}


def numerics_requests_for(dialect: str) -> NumericsRequests:
    """The numerics requests of ``dialect``."""
    try:
        return _BY_DIALECT[dialect]
    except KeyError:
        raise ValueError(f"no numerics requests for the {dialect!r} dialect") from None
