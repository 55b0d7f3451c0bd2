"""numctx: the context a request gets, whether it reloads the model, and truncation.

``/api/ps`` ``context_length`` must equal what the selected policy (``--ollama-numctx-policy``,
see ``pytest_ollama_regress.suite.context_policy``) predicts for several requests, with the default
environment and with ``OLLAMA_NUM_PARALLEL=4`` (it is per slot, never scaled), on
``ollama_model`` and, for the vision floor, on ``ollama_vision_model``. Reloads are read from
``load_duration``: an identical request or a sampling-only change must not reload, a
different context must. Over-long history must lose whole oldest messages (system and last
kept, as the debug render shows), fit the effective context (``num_ctx`` 256 after the
floors: 2048 on a vision model), and from v0.12.6 ``truncate:false`` must be a 400. The
truncation check reports how many tokens were lost. Every check that reads a runner's context
unloads the model first, so no check depends on what an earlier one left loaded.

The model's own facts count (§16.4): the 8192 floor of gpt-oss/qwen3vl (or none in low-VRAM
mode), a Modelfile ``PARAMETER num_ctx``, legacy templates that never render assistant turns.
A server whose release is unknown (``0.0.0``, ``git describe``) passes where its value is
healthy for every release it may be, fails where for none, and skips naming
``--ollama-behaves-as`` where only the release would tell; a server without ``context_length``
in ``/api/ps`` skips.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from pytest_ollama_regress.dialects.ollama_client import OllamaError
from pytest_ollama_regress.suite.checks import marks
from pytest_ollama_regress.suite.context_policy import (
    DYNAMIC,
    ContextRequest,
    ModelLimits,
    Policy,
    message_length,
)
from pytest_ollama_regress.suite.expectations import Expectations, is_context_limit_error, rule
from pytest_ollama_regress.suite.support import (
    check,
    fail,
    filler,
    model_facts,
    model_limits,
    ps_entry,
    settle,
)

pytestmark = marks("numctx")

CASES = ["floor", "small", "medium", "beyond-model", "default"]
VISION_FLOOR = "vision-floor"
STOCK_NUM_CTX = {"floor": 2, "small": 1000, "medium": 8192, "default": None,
                 VISION_FLOOR: 1000}
DYNAMIC_LENGTH = {"floor": 100, "small": 3000, "medium": 20000, "default": 20,
                  VISION_FLOOR: 100}
HEAVY_CONTEXT = 32768
"""Above this, a check loads a real model at its full context: only simulators run it."""
QUICK: dict[str, Any] = {"temperature": 0, "num_predict": 1}
TRUNCATION_NUM_CTX = 256
FULL_NUM_CTX = 16384
"""The context the truncation check measures the whole history at (tokens lost)."""
TOKENS_PER_TURN = 40
"""About what one turn of ``_history`` costs (markers, 32 filler words, template)."""


def _request(policy: Policy, case: str, limits: ModelLimits,
             target: Any) -> tuple[ContextRequest, list[dict[str, Any]], dict[str, Any]]:
    """The request a case sends under ``policy``: (what decides its context, messages, options)."""
    maximum = limits.context_length or 1 << 20
    if case == "beyond-model" and maximum > HEAVY_CONTEXT and not target.simulated:
        pytest.skip(f"{limits.name} would load at its full {maximum}-token context; this case "
                    "runs against simulators or models with at most 32768")
    if policy.name == DYNAMIC:
        length = maximum if case == "beyond-model" else DYNAMIC_LENGTH[case]
        messages = [{"role": "user", "content": filler(length)}]
        return ContextRequest(length=length), messages, {}
    num_ctx = 2 * maximum if case == "beyond-model" else STOCK_NUM_CTX[case]
    messages = [{"role": "user", "content": "Reply with one word."}]
    options = {} if num_ctx is None else {"num_ctx": num_ctx}
    return ContextRequest(num_ctx, message_length(messages)), messages, options


def _check_ps(client: Any, model: str, target: Any, expect: Expectations, policy: Policy,
              case: str) -> None:
    """One request of ``case`` on an unloaded ``model``, then its ``/api/ps`` entry.

    The model is unloaded first, so what earlier checks loaded cannot decide the outcome (a
    runner kept across a num_ctx change is ``test_num_ctx_change_reloads``'s business).
    """
    limits = model_limits(client, model)
    context, messages, options = _request(policy, case, limits, target)
    client.unload(model)
    client.chat(model, messages, options={**QUICK, **options})
    entry = ps_entry(client, model)
    check(entry is not None, f"{model} is not in /api/ps right after a request")
    assert entry is not None
    actual = entry.get("context_length")
    if actual is None:
        pytest.skip(f"/api/ps of {target.id} ({expect.server_version}) has no context_length: "
                    f"nothing to check (rule: {rule('ps context_length').name}, "
                    f"{rule('ps context_length').span})")

    def healthy(release: Any) -> tuple[int, ...]:
        return policy.ps_context_length(context, limits, release, env=target.env)

    verdict = expect.judge(actual, healthy)
    applied = rule(policy.describe(context, expect.views[-1]))
    if verdict == "ambiguous":
        settle(verdict, expect, applied, "")
    if verdict == "pass":
        return
    expected = expect.expected_union(healthy)
    parallel = int(target.env.get("OLLAMA_NUM_PARALLEL") or 1)
    wanted = " or ".join(str(v) for v in expected)
    divisor = _divisor(actual, expected, parallel, known_env=target.env_known)
    if divisor:
        applied = rule("ps context_length per slot")
        setting = (f"OLLAMA_NUM_PARALLEL={parallel}" if parallel > 1 else
                   f"{divisor} (the server's OLLAMA_NUM_PARALLEL?)")
        why = f"/api/ps divides the per-slot context by {setting} (scaled by numParallel)"
    elif actual is None:
        why = "/api/ps has no context_length"
    elif actual == context.num_ctx:
        steps = "the floors" if actual < min(expected) else "the clamp"
        applied = expect.views[-1].ps_context_rule
        why = f"/api/ps shows the num_ctx as requested, not the runner's context after {steps}"
    else:
        why = f"the {policy.name} policy predicts {wanted} for {context}"
    fail(applied.fail(f"context_length {actual} != {wanted} ({case}, {model}): {why}"))


def _divisor(actual: object, expected: list[int], parallel: int, *, known_env: bool) -> int:
    """The parallelism ``actual`` looks divided by: the target's own ``OLLAMA_NUM_PARALLEL``, or
    on a server whose environment is unknown (``--ollama-url``) a small whole factor."""
    if not isinstance(actual, int) or actual <= 0:
        return 0
    factors = (parallel,) if known_env or parallel > 1 else (2, 3, 4, 6, 8)
    return next((k for k in factors if k > 1 and actual * k in expected), 0)


@pytest.mark.parametrize("case", CASES)
def test_ps_context_length(ollama: Any, ollama_model: str, ollama_target: Any,
                           ollama_expect: Expectations, ollama_numctx_policy: Policy,
                           case: str) -> None:
    _check_ps(ollama, ollama_model, ollama_target, ollama_expect, ollama_numctx_policy, case)


def test_ps_context_length_vision_floor(ollama: Any, ollama_vision_model: str,
                                        ollama_target: Any, ollama_expect: Expectations,
                                        ollama_numctx_policy: Policy) -> None:
    _check_ps(ollama, ollama_vision_model, ollama_target, ollama_expect, ollama_numctx_policy,
              VISION_FLOOR)


@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="4")
@pytest.mark.parametrize("case", CASES)
def test_ps_context_length_num_parallel_4(ollama: Any, ollama_model: str, ollama_target: Any,
                                          ollama_expect: Expectations,
                                          ollama_numctx_policy: Policy, case: str) -> None:
    _check_ps(ollama, ollama_model, ollama_target, ollama_expect, ollama_numctx_policy, case)


@pytest.mark.ollama_env(OLLAMA_NUM_PARALLEL="4")
def test_ps_context_length_vision_floor_num_parallel_4(
        ollama: Any, ollama_vision_model: str, ollama_target: Any, ollama_expect: Expectations,
        ollama_numctx_policy: Policy) -> None:
    _check_ps(ollama, ollama_vision_model, ollama_target, ollama_expect, ollama_numctx_policy,
              VISION_FLOOR)


# -- reloads -----------------------------------------------------------------------------------


def _context_pair(policy: Policy, limits: ModelLimits, expect: Expectations
                  ) -> tuple[tuple[list[dict[str, Any]], dict[str, Any]], ...]:
    """Two requests whose contexts differ after every floor and the clamp under ``policy``:
    2048 and 8192, above the model's own floor (gpt-oss: 8192 and 16384), below its
    trained context (a 4096-token model: 1024 and 4096)."""
    if policy.name == DYNAMIC:
        return tuple(([{"role": "user", "content": filler(n)}], {}) for n in (100, 20000))
    floor = max(f for view in expect.views for f in limits.floors(view))
    high = max(8192, 2 * floor)
    if limits.context_length:
        high = min(high, limits.context_length)
    low = max(floor, high // 4)
    short = [{"role": "user", "content": "Reply with one word."}]
    return (short, {"num_ctx": low}), (short, {"num_ctx": high})


def _load_ns(client: Any, model: str, messages: list[dict[str, Any]],
             options: dict[str, Any]) -> int:
    return client.chat(model, messages, options={**QUICK, **options}).metrics.load_duration


def _cold_then(client: Any, model: str, first: tuple[list[dict[str, Any]], dict[str, Any]],
               second: tuple[list[dict[str, Any]], dict[str, Any]]) -> tuple[int, int]:
    """load_duration of ``first`` right after an unload, then of ``second``."""
    client.unload(model)
    cold = _load_ns(client, model, *first)
    check(cold >= 1_000_000, f"a request right after unloading {model} reported "
          f"load_duration {cold / 1e6:.2f} ms: cannot tell reloads apart")
    return cold, _load_ns(client, model, *second)


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.1f} ms"


def _pair(client: Any, model: str, policy: Policy, expect: Expectations
          ) -> tuple[tuple[list[dict[str, Any]], dict[str, Any]], ...]:
    return _context_pair(policy, model_limits(client, model), expect)


def test_same_request_does_not_reload(ollama: Any, ollama_model: str, ollama_expect: Expectations,
                                      ollama_numctx_policy: Policy) -> None:
    first = _pair(ollama, ollama_model, ollama_numctx_policy, ollama_expect)[0]
    cold, again = _cold_then(ollama, ollama_model, first, first)
    check(again < cold / 2, rule("no reload same request").fail(
        f"load_duration {_ms(again)} on the repeated request (cold load {_ms(cold)}): the "
        "model was reloaded for an identical request"))


def test_sampling_change_does_not_reload(ollama: Any, ollama_model: str,
                                         ollama_expect: Expectations,
                                         ollama_numctx_policy: Policy) -> None:
    messages, options = _pair(ollama, ollama_model, ollama_numctx_policy, ollama_expect)[0]
    resampled = {**options, "temperature": 0.9, "top_k": 10, "top_p": 0.5, "seed": 3,
                 "num_predict": 2}
    cold, again = _cold_then(ollama, ollama_model, (messages, options), (messages, resampled))
    check(again < cold / 2, rule("no reload sampling change").fail(
        f"load_duration {_ms(again)} after changing only sampling options (cold load "
        f"{_ms(cold)}): the model was reloaded for a sampling change"))


def test_num_ctx_change_reloads(ollama: Any, ollama_model: str, ollama_expect: Expectations,
                                ollama_numctx_policy: Policy) -> None:
    first, second = _pair(ollama, ollama_model, ollama_numctx_policy, ollama_expect)
    cold, changed = _cold_then(ollama, ollama_model, first, second)
    if changed >= cold / 2:
        return
    change = (f"num_ctx {first[1]['num_ctx']} -> {second[1]['num_ctx']}" if second[1] else
              f"message length {message_length(first[0])} -> {message_length(second[0])} bytes")
    entry = ps_entry(ollama, ollama_model)
    shown = f"; /api/ps still reports context_length {entry.get('context_length')}" \
        if entry else ""
    fail(rule("reload on num_ctx change").fail(
        f"load_duration {_ms(changed)} after changing the context ({change}; cold load "
        f"{_ms(cold)}): the runner kept its old context instead of reloading{shown}"))


# -- truncation --------------------------------------------------------------------------------

SYSTEM = "SYSTEM-BEGIN You are the truncation probe; answer briefly. SYSTEM-END"


def _history(pairs: int = 10) -> list[dict[str, str]]:
    """A system message, ``pairs`` user/assistant turns with markers, and a last question."""
    messages = [{"role": "system", "content": SYSTEM}]
    for i in range(2 * pairs):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append({"role": role,
                         "content": f"M{i:03d}-BEGIN {filler(160).strip()} M{i:03d}-END"})
    messages.append({"role": "user", "content": "LAST-BEGIN Which markers do you see? LAST-END"})
    return messages


def _truncation_setup(client: Any, model: str, target: Any, expect: Expectations,
                      policy: Policy) -> tuple[list[dict[str, str]], dict[str, Any], int]:
    """(history, options, effective context) for the truncation checks, from a cold model.

    ``num_ctx`` 256 is what is asked; the context the runner really gets comes from the
    policy (a vision model's floor raises it to 2048), and the history is made about 2.5
    times that long, so it must be truncated whatever the floor. The model is unloaded first
    so that a runner left by an earlier check cannot decide the outcome.
    """
    client.unload(model)
    if policy.name == DYNAMIC:
        return _history(), {}, 0
    limits = model_limits(client, model)
    effective = max(v for view in expect.views for v in policy.effective(
        ContextRequest(TRUNCATION_NUM_CTX), limits, view, env=target.env))
    pairs = max(10, math.ceil(2.5 * effective / (2 * TOKENS_PER_TURN)))
    return _history(pairs), {"num_ctx": TRUNCATION_NUM_CTX}, effective


def _context_text(effective: int) -> str:
    if effective == TRUNCATION_NUM_CTX:
        return f"num_ctx {effective}"
    return f"num_ctx {effective} (requested {TRUNCATION_NUM_CTX}, raised by the floors)"


def _markers(message: dict[str, str]) -> tuple[str, str]:
    words = message["content"].split()
    return words[0], words[-1]


def _survivors(messages: list[dict[str, str]], text: str) -> list[str]:
    """Per message: ``kept`` (whole), ``cut`` (part of it) or ``dropped``."""
    states = []
    for message in messages:
        begin, end = _markers(message)
        if message["content"] in text:
            states.append("kept")
        elif begin in text or end in text:
            states.append("cut")
        else:
            states.append("dropped")
    return states


def _check_survivors(states: list[str], applied: str,
                     skipped: frozenset[int] = frozenset()) -> None:
    """Whole oldest messages dropped, system and last kept; ``skipped`` messages (ones the
    model's template never renders) are left out of the judgement."""
    problems = []
    if 0 not in skipped and states[0] != "kept":
        problems.append(f"the system message was {states[0]}")
    if states[-1] != "kept":
        problems.append(f"the last message was {states[-1]}")
    problems += [f"message {i} was cut in the middle" for i, s in enumerate(states)
                 if s == "cut" and i not in skipped]
    turns = [(i, s) for i, s in enumerate(states) if i and i not in skipped]
    first_kept = next((n for n, (_, s) in enumerate(turns) if s == "kept"), len(turns))
    problems += [f"message {i} was dropped while an older one was kept"
                 for n, (i, s) in enumerate(turns) if n > first_kept and s != "kept"]
    if problems:
        fail(rule(applied).fail("; ".join(problems) + f" (messages: {_runs(states)})"))


def _runs(states: list[str]) -> str:
    """``dropped x17, cut, kept x4``: the message states, oldest first, run-length encoded."""
    runs: list[list[Any]] = []
    for state in states:
        if runs and runs[-1][0] == state:
            runs[-1][1] += 1
        else:
            runs.append([state, 1])
    return ", ".join(s if n == 1 else f"{s} x{n}" for s, n in runs)


def _unrendered(client: Any, model: str, messages: list[dict[str, str]]) -> frozenset[int]:
    """The messages a legacy template never renders (replies without ``.Response``, system
    messages without ``.System``): they are not lost to truncation."""
    facts = model_facts(client, model)
    roles = {"assistant"} if not facts.renders_assistant_turns else set()
    roles |= {"system"} if not facts.renders_system else set()
    return frozenset(i for i, m in enumerate(messages) if m["role"] in roles)


def test_truncation_keeps_system_and_last(ollama: Any, ollama_model: str,
                                          ollama_target: Any, ollama_expect: Expectations,
                                          ollama_numctx_policy: Policy,
                                          record_property: Any) -> None:
    dynamic = ollama_numctx_policy.name == DYNAMIC
    messages, options, effective = _truncation_setup(
        ollama, ollama_model, ollama_target, ollama_expect, ollama_numctx_policy)
    states: list[str] = []
    if ollama_expect.debug_render:  # which messages survived (v0.11.5+)
        render = ollama.render_chat(ollama_model, messages, options=options)
        states = _survivors(messages, render.rendered_template)
        if dynamic:
            check(set(states) == {"kept"}, rule("dynamic num_ctx keeps history").fail(
                f"messages were lost although the context grows with the history: "
                f"{_runs(states)}"))
        else:
            _check_survivors(states, "truncation drops oldest messages",
                             _unrendered(ollama, ollama_model, messages))
            check("dropped" in states, rule("truncation drops oldest messages").fail(
                f"nothing was dropped from a {len(messages)}-message history at "
                f"{_context_text(effective)}: the server did not truncate"))
    full_ctx = max(FULL_NUM_CTX, 4 * effective)
    short = ollama.chat(ollama_model, messages, options={**QUICK, **options}).metrics
    full = ollama.chat(ollama_model, messages, options={**QUICK, "num_ctx": full_ctx}).metrics
    lost = max(full.prompt_eval_count - short.prompt_eval_count, 0)
    dropped = f"{states.count('dropped')} of {len(messages)} messages dropped, " if states else ""
    record_property("ollama_tokens_lost", lost)
    record_property("ollama_note", (
        f"numctx truncation on {ollama_target.id} ({ollama_model}): {dropped}{lost} of "
        f"{full.prompt_eval_count} prompt tokens lost "
        f"({'dynamic policy' if dynamic else _context_text(effective)})"))
    if not dynamic:
        check(short.prompt_eval_count <= effective, rule(
            "prompt_eval_count <= num_ctx").fail(
            f"prompt_eval_count {short.prompt_eval_count} > {_context_text(effective)}: "
            f"the prompt does not fit the context ({lost} tokens were lost)"))
        check(full.prompt_eval_count > effective, rule("reload on num_ctx change").fail(
            f"at num_ctx {full_ctx} the {len(messages)}-message history was evaluated as only "
            f"{full.prompt_eval_count} prompt tokens, no more than at {_context_text(effective)}"
            ": the runner kept its old context instead of reloading, so the tokens lost "
            "cannot be counted"))
    elif not states:
        check(lost == 0, rule("dynamic num_ctx keeps history").fail(
            f"{lost} prompt tokens were lost although the context grows with the history"))


def _truncate_false(client: Any, model: str, target: Any, expect: Expectations,
                    policy: Policy) -> tuple[str, str]:
    """(``rejected`` | ``ignored`` | ``wrong error``, what happened) for an over-long
    history sent with ``truncate:false``."""
    messages, options, effective = _truncation_setup(client, model, target, expect, policy)
    try:
        result = client.chat(model, messages, options={**QUICK, **options}, truncate=False)
    except OllamaError as exc:
        if exc.status == 400 and is_context_limit_error(exc.message):
            return "rejected", f"400 {exc.message!r}"
        return "wrong error", (f"expected a 400 context-length error, got status {exc.status}: "
                               f"{exc.message!r}")
    return "ignored", (f"truncate:false was ignored: the over-long {len(messages)}-message "
                       f"history was truncated silently to prompt_eval_count "
                       f"{result.metrics.prompt_eval_count} at {_context_text(effective)}")


def test_truncate_false_rejected(ollama: Any, ollama_model: str, ollama_target: Any,
                                 ollama_expect: Expectations, ollama_numctx_policy: Policy,
                                 ollama_baseline: Any) -> None:
    """A 400 from v0.12.6; for a build of unknown release, a baseline that rejects decides."""
    promised = ollama_expect.promises("truncate:false rejected")
    if promised is False:
        pytest.skip(ollama_expect.skip_reason("truncate:false rejected"))
    if ollama_numctx_policy.name == DYNAMIC:
        pytest.skip("the dynamic policy sizes the context from the messages: nothing exceeds it")
    applied = rule("truncate:false rejected")
    outcome, seen = _truncate_false(ollama, ollama_model, ollama_target, ollama_expect,
                                    ollama_numctx_policy)
    if outcome == "rejected":
        return
    if promised:
        fail(applied.fail(seen))
    if ollama_baseline is None or ollama_baseline.is_current:
        pytest.skip(f"{ollama_expect.ambiguous_reason(applied)} (it {outcome}: {seen}); or "
                    "compare with a --ollama-baseline that rejects it")
    base_outcome, _ = _truncate_false(ollama_baseline.client, ollama_model,
                                      ollama_baseline.info, ollama_baseline.expect,
                                      ollama_numctx_policy)
    if base_outcome != "rejected":
        pytest.skip(f"{ollama_expect.ambiguous_reason(applied)}; baseline "
                    f"{ollama_baseline.id} does not reject it either")
    fail(applied.fail(f"{seen}: present in baseline {ollama_baseline.id}, absent in the "
                      "candidate"))
