"""numctx on llama.cpp's server: the context each slot gets, and what happens at its edge.

``-c N -np P`` gives every slot ``N / P`` tokens unless the KV cache is unified (``-kvu``);
the same question the seeds ask of ``OLLAMA_NUM_PARALLEL``. ``/slots`` and ``/props`` must
agree on it; with ``--ollama-baseline`` a candidate whose slots hold less than the
baseline's fails naming the division. A prompt longer than a slot's context must get HTTP
400 ``exceed_context_size_error`` (with ``n_prompt_tokens`` and ``n_ctx``), never a silent
truncation, and one that fits must be evaluated whole.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaError
from pytest_ollama_regress.suite.checks import marks

pytestmark = marks("numctx", "llama-server")

FILLER = "The quick brown fox jumps over the lazy dog. "
REPLY = {"max_tokens": 1, "temperature": 0}


def slot_context(client: Any) -> tuple[int, int]:
    """(context per slot, number of slots) as ``/props`` reports them."""
    props = client.props()
    n_ctx = int((props.get("default_generation_settings") or {}).get("n_ctx") or 0)
    return n_ctx, int(props.get("total_slots") or 1)


def _prompt_of(client: Any, tokens: int) -> str:
    """A user message of at least ``tokens`` tokens (counted with the server's tokenizer)."""
    repeats = max(1, tokens // 8)
    while True:
        text = FILLER * repeats
        count = len(client.tokenize(text))
        if count >= tokens:
            return text
        repeats = repeats * tokens // max(1, count) + 1


def test_slots_agree_with_props(ollama: Any, ollama_target: Any) -> None:
    n_ctx, total = slot_context(ollama)
    try:
        slots = ollama.slots()
    except OllamaError as exc:
        pytest.skip(f"{ollama_target.id}: /slots is disabled ({exc.status}); start it without "
                    "--no-slots to compare")
    assert len(slots) == total, f"/slots lists {len(slots)} slots, /props total_slots {total}"
    sizes = sorted({int(s.get("n_ctx") or 0) for s in slots})
    assert sizes == [n_ctx], (
        f"/slots gives n_ctx {sizes}, /props default_generation_settings.n_ctx {n_ctx}")


def test_slot_context_not_below_baseline(ollama: Any, ollama_target: Any,
                                         ollama_baseline: Any) -> None:
    if ollama_baseline is None:
        pytest.skip("no --ollama-baseline: the healthy per-slot context is not known")
    if ollama_baseline.is_current:
        pytest.skip(f"{ollama_baseline.id} is the baseline")
    mine, slots = slot_context(ollama)
    theirs, their_slots = slot_context(ollama_baseline.client)
    if mine >= theirs:
        return
    why = ""
    if slots > their_slots and theirs * their_slots == mine * slots:
        why = (f": the context is divided across {slots} slots (-np {slots} without -kvu; "
               f"baseline {their_slots} slot(s))")
    elif theirs % mine == 0:
        why = f": 1/{theirs // mine} of the baseline's"
    pytest.fail(f"{ollama_target.id} gives each slot {mine} tokens of context, baseline "
                f"{ollama_baseline.id} {theirs}{why}", pytrace=False)


def test_prompt_over_the_slot_context_is_refused(ollama: Any, ollama_model: str) -> None:
    n_ctx, _ = slot_context(ollama)
    prompt = _prompt_of(ollama, n_ctx + 64)
    try:
        completion = ollama.chat(ollama_model, [{"role": "user", "content": prompt}],
                                 options=REPLY)
    except OllamaError as exc:
        body = getattr(exc, "error_body", {})
        assert exc.status == 400 and body.get("type") == "exceed_context_size_error", (
            f"a prompt over the slot's {n_ctx}-token context got {exc}, not HTTP 400 "
            "exceed_context_size_error")
        assert int(body.get("n_ctx") or 0) == n_ctx, (
            f"the error names n_ctx {body.get('n_ctx')}, the slot has {n_ctx}")
        assert int(body.get("n_prompt_tokens") or 0) > n_ctx
        return
    pytest.fail(f"a prompt of about {n_ctx + 64} tokens was accepted by a slot of {n_ctx} "
                f"(prompt_n {completion.metrics.prompt_eval_count}): silently truncated",
                pytrace=False)


def test_prompt_within_the_slot_context_is_evaluated_whole(ollama: Any,
                                                           ollama_model: str) -> None:
    n_ctx, _ = slot_context(ollama)
    messages = [{"role": "user", "content": _prompt_of(ollama, n_ctx // 2)}]
    expected = len(ollama.tokenize(ollama.apply_template(messages)))
    completion = ollama.chat(ollama_model, messages, options={**REPLY, "cache_prompt": False})
    evaluated = completion.metrics.prompt_eval_count
    cached = int((completion.final.get("timings") or {}).get("cache_n") or 0)
    assert abs(evaluated + cached - expected) <= 2, (
        f"{evaluated} prompt tokens evaluated (+{cached} cached) of the {expected} the template "
        f"renders, in a {n_ctx}-token slot: the prompt was cut")
