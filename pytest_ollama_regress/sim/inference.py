"""Chat and generate: validation, scheduling, prompt, planned output and timed token emission.

``prepare_chat``/``prepare_generate`` do everything that happens before the first byte (and
may raise ``ApiError``); they return a ``Plan`` whose ``run`` emits the tokens at their
scheduled times through a callback and returns the final metrics.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_ollama_regress.sim import (
    answers,
    errors,
    imagetags,
    logprobs,
    modelrules,
    tokens,
    vision,
)
from pytest_ollama_regress.sim.catalogue import ModelSpec, normalize_name
from pytest_ollama_regress.sim.engine import Assignment, RunnerPlan, parse_options, plan_runner
from pytest_ollama_regress.sim.errors import ApiError, RunnerError
from pytest_ollama_regress.sim.formats import execute
from pytest_ollama_regress.sim.render import Msg, Prompt, chat_prompt

if TYPE_CHECKING:
    from pytest_ollama_regress.sim.app import App

HARMONY_THINKING_SENTENCES = 4  # gpt-oss reasons at length before it answers


@dataclass
class Special:
    """A load/unload answer (empty messages or prompt)."""

    done_reason: str  # "load" | "unload"
    name: str


@dataclass
class DebugRender:
    name: str
    rendered: str
    image_count: int


@dataclass
class Step:
    kind: str  # "thinking" | "content" | "tool_call"
    text: str = ""
    tool_call: dict[str, Any] | None = None
    logprob: dict[str, Any] | None = None  # the token's ``logprobs`` entry, when asked


@dataclass
class Plan:
    """A generation ready to run on an assigned runner."""

    app: App
    spec: ModelSpec
    name: str
    assignment: Assignment
    keep_alive: float | None
    started_ns: int
    prompt_eval_count: int
    steps: list[Step]
    done_reason: str
    error_before: RunnerError | None = None
    error_after: int | None = None
    context: list[int] | None = None
    scheduled_first_ns: int = 0
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.app.scheduler.release(self.assignment.runner, self.keep_alive)

    def run(self, emit: Callable[[Step], None],
            on_schedule: Callable[[int], None] | None = None) -> dict[str, int]:
        """Emit every step at its scheduled time; return the final metrics (ns).

        Raises ``RunnerError`` for a runner failure; ``emit`` may raise ``OSError`` when the
        client went away, which stops the generation.
        """
        latency = self.app.latency
        runner = self.assignment.runner
        try:
            deadline = time.monotonic() + 600.0
            while not runner.slots.acquire(timeout=1.0):
                if time.monotonic() > deadline:
                    raise RunnerError("timed out waiting for a parallel slot")
            try:
                slot_ns = time.perf_counter_ns()
                prefill_end = slot_ns + latency.prefill_ns(self.prompt_eval_count)
                first_due = (prefill_end + latency.decode_ns +
                             self.app.profile.first_token_delay_ns(self.app.env))
                self.scheduled_first_ns = first_due
                if on_schedule:
                    on_schedule(first_due)
                _sleep_until(prefill_end)
                prompt_done = time.perf_counter_ns()
                if self.error_before is not None:
                    raise self.error_before
                emitted = 0
                for index, step in enumerate(self.steps):
                    if self.error_after is not None and emitted >= self.error_after:
                        raise RunnerError(errors.RUNNER_FAILURE)
                    _sleep_until(first_due + index * latency.decode_ns)
                    emit(step)
                    emitted += 1
                if self.error_after is not None and emitted >= self.error_after and \
                        self.error_after <= len(self.steps):
                    raise RunnerError(errors.RUNNER_FAILURE)
                end = time.perf_counter_ns()
            finally:
                runner.slots.release()
        finally:
            self.release()
        metrics = {
            "total_duration": max(end - self.started_ns, 1),
            "load_duration": max(self.assignment.load_duration_ns, 1),
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_duration": max(prompt_done - slot_ns, 1),
            "eval_count": len(self.steps),
            "eval_duration": max(end - prompt_done, 1),
        }
        return metrics


def _sleep_until(due_ns: int) -> None:
    for _ in range(10_000):
        left = due_ns - time.perf_counter_ns()
        if left <= 0:
            return
        time.sleep(left / 1e9)


# -- shared checks -----------------------------------------------------------------------

def _lookup(app: App, route: str, name: str | None) -> ModelSpec:
    name = name or ""
    if not name:
        if route == "chat":
            raise errors.model_required()
        raise errors.not_found(route, name, app.features)
    normal = normalize_name(name)
    spec = app.store.get(normal) if normal else None
    if spec is None:
        raise errors.not_found(route, name, app.features)
    if spec.is_embedding and route in ("chat", "generate"):
        raise errors.unsupported(route, spec, name)
    return spec


def _check_logprobs(app: App, req: dict[str, Any]) -> int | None:
    """The ``top_logprobs`` count when the request asks for ``logprobs`` (else ``None``)."""
    top = req.get("top_logprobs")
    if app.features.logprobs and top is not None and not 0 <= top <= 20:
        raise ApiError(400, "top_logprobs must be between 0 and 20")
    return int(top or 0) if app.features.logprobs and req.get("logprobs") else None


def _resolve_think(app: App, spec: ModelSpec, name: str, think: bool | str | None
                   ) -> tuple[bool, bool]:
    """(thinking on, thinking inline in content as <think> tags)."""
    capable = "thinking" in spec.capabilities
    if spec.harmony:  # gpt-oss ignores think:false; levels are its own (every version)
        return True, False
    wants = think is True or isinstance(think, str)
    if wants and not capable:
        raise errors.no_thinking(spec, name, app.features)
    if isinstance(think, str) and not app.features.think_levels_any_model:
        raise errors.think_level_unsupported(think)
    if think is None and capable:
        if app.features.think_default_on:
            return True, False
        return False, True
    return bool(wants), False


class _ContextMemory:
    """Texts handed out as ``context`` arrays, so a later request can send them back
    (the real server detokenizes them; this tokenizer is not reversible, so it remembers)."""

    def __init__(self, keep: int = 2_000) -> None:
        self._lock = threading.Lock()
        self._texts: OrderedDict[tuple[int, ...], str] = OrderedDict()
        self._keep = keep

    def ids(self, text: str) -> list[int]:
        ids = [tokens.token_id(tok) for tok in tokens.tokens(text)]
        with self._lock:
            self._texts[tuple(ids)] = text
            self._texts.move_to_end(tuple(ids))
            while len(self._texts) > self._keep:
                self._texts.popitem(last=False)
        return ids

    def text(self, ids: list[int]) -> str:
        with self._lock:
            return self._texts.get(tuple(ids), "")


CONTEXT_MEMORY = _ContextMemory()


def _output(app: App, spec: ModelSpec, prompt: Prompt, options: dict[str, Any],
            think_on: bool, think_inline: bool, fmt: Any, tools: list[Any] | None,
            last_user: str, ctx: int, top_logprobs: int | None = None
            ) -> tuple[list[Step], str, RunnerError | None]:
    seed = options.get("seed")
    key = prompt.text
    content: str
    call = answers.tool_call(tools, last_user) if tools else None
    pictures = app.profile.runner_images(prompt.images)
    error = modelrules.runner_image_error(spec, app.features, len(pictures))
    if spec.is_vision and pictures:
        try:
            content = vision.describe(pictures)
        except vision.VisionError as exc:
            error = RunnerError(f"Failed to create new sequence: failed to process inputs: {exc}")
            content = ""
    elif fmt not in (None, ""):
        content = answers.json_answer(seed, key, fmt)
    else:
        content = answers.text(seed, key)
    steps: list[Step] = []
    sentences = HARMONY_THINKING_SENTENCES if spec.harmony else 1
    if think_on:
        steps += [Step("thinking", p)
                  for p in tokens.pieces(answers.thinking(seed, key, sentences))]
    elif think_inline:
        content = f"<think>\n{answers.thinking(seed, key)}\n</think>\n\n{content}"
    done_reason = "stop"
    if call is not None:
        steps.append(Step("tool_call", tool_call=call))
    else:
        stops = [s for s in options.get("stop", []) if s]
        cut = min((content.find(s) for s in stops if s in content), default=-1)
        if cut >= 0:
            content = content[:cut]
        steps += _content_steps(app, f"{seed}|{key}", content, top_logprobs)
    limit = options.get("num_predict", -1)
    cap = 10 * ctx
    if limit is None or limit <= 0 or limit > cap:
        limit = cap
    if len(steps) > limit:
        steps = steps[:limit]
        done_reason = "length"
    return steps, done_reason, error


def _content_steps(app: App, key: str, content: str, top_logprobs: int | None) -> list[Step]:
    """The answer's tokens as greedy decoding under the profile's logit drift emits them,
    each with its ``logprobs`` entry when the request asked for them."""
    drift = app.profile.logit_drift
    pieces = logprobs.greedy_pieces(key, tokens.pieces(content), drift,
                                    lambda: tokens.pieces(" " + answers.text(None, key)))
    return [Step("content", piece, logprob=None if top_logprobs is None else
                 logprobs.entry(key, index, piece, top_logprobs, drift))
            for index, piece in enumerate(pieces)]


def _prompt_eval(app: App, spec: ModelSpec, prompt: Prompt) -> int:
    """Prompt tokens: the text without image placeholders, plus the image tokens of every
    image the runner embeds (a vision model; others ignore images)."""
    if spec.is_vision and prompt.images:
        embedded = app.profile.runner_images(prompt.images)
        return (tokens.count(imagetags.strip_placeholders(prompt.text)) +
                spec.image_tokens * len(embedded))
    return tokens.count(prompt.text)


def _finish_prompt(app: App, spec: ModelSpec, prompt: Prompt, ctx: int, truncate: bool) -> int:
    count = _prompt_eval(app, spec, prompt)
    if count > ctx:
        if not truncate and app.features.truncate_field and app.profile.honours_truncate_false:
            raise errors.context_exceeded(app.features)
        app.log("WARN", "runner.go", "truncating input prompt", limit=ctx, prompt=count,
                keep=4, new=ctx)
        count = ctx
    return count


def _load_or_unload(app: App, spec: ModelSpec, name: str, options: dict[str, Any],
                    keep_alive: Any, started_ns: int) -> Special:
    """A request with nothing to run: unload on ``keep_alive: 0``, else load the model."""
    if keep_alive is not None and keep_alive == 0:
        app.scheduler.unload(spec.name)
        return Special("unload", name)
    assignment = _acquire(app, spec, plan_runner(spec, options, app.config), keep_alive,
                          started_ns)
    app.scheduler.release(assignment.runner, keep_alive)
    return Special("load", name)


def _acquire(app: App, spec: ModelSpec, plan: RunnerPlan, keep_alive: Any,
             started_ns: int) -> Assignment:
    """A runner for ``spec``: loads it unless this server cannot run the model."""
    modelrules.check_runnable(spec, app.features)
    return app.scheduler.acquire(spec, plan, keep_alive, started_ns)


# -- chat --------------------------------------------------------------------------------

def prepare_chat(app: App, req: dict[str, Any], started_ns: int
                 ) -> Plan | Special | DebugRender:
    name = req.get("model") or ""
    spec = _lookup(app, "chat", name)
    tools = req.get("tools") or []
    if tools and "tools" not in spec.capabilities:
        raise errors.no_tools(spec)
    top_logprobs = _check_logprobs(app, req)
    think_on, think_inline = _resolve_think(app, spec, name, req.get("think"))
    options = parse_options(req.get("options"), app.warn_option)
    keep_alive = req.get("keep_alive")
    messages = req.get("messages") or []
    if not messages:
        return _load_or_unload(app, spec, name, options, keep_alive, started_ns)
    msgs = [Msg(role=m.get("role") or "", content=m.get("content") or "",
                images=list(m.get("images") or []), thinking=m.get("thinking") or "",
                tool_calls=list(m.get("tool_calls") or []), tool_name=m.get("tool_name") or "")
            for m in messages]
    msgs = _filter_images(app, msgs)
    if spec.system and msgs[0].role != "system":
        msgs.insert(0, Msg("system", spec.system))
    wanted = plan_runner(spec, options, app.config)
    path = modelrules.chat_mode(spec, app.features, app.env, app.media_marker)
    assignment = _acquire(app, spec, wanted, keep_alive, started_ns)
    try:
        # the server drops history for the request's context; the runner has its own (the
        # same unless a profile kept an old runner)
        ctx = assignment.runner.plan.ctx
        truncate = req.get("truncate") is not False
        think = req.get("think")
        prompt = chat_prompt(
            spec, msgs, num_ctx=wanted.ctx,
            truncate=truncate or not app.profile.honours_truncate_false,
            mode=app.profile.truncation, think=think if think_on or think is False else None,
            tools=bool(tools), debug=app.debug_kv, path=path)
        modelrules.check_chat_images(spec, prompt.messages)
        app.debug_kv("chat request", {"images": len(prompt.images), "prompt": prompt.text})
        if req.get("_debug_render_only"):
            app.scheduler.release(assignment.runner, keep_alive)
            return DebugRender(name, prompt.text, prompt.image_count)
        count = _finish_prompt(app, spec, prompt, ctx, truncate)
        last_user = next((m.content for m in reversed(msgs) if m.role == "user"), "")
        steps, done_reason, error = _output(app, spec, prompt, options, think_on, think_inline,
                                            req.get("format"), tools, last_user, ctx,
                                            top_logprobs)
    except BaseException:
        app.scheduler.release(assignment.runner, keep_alive)
        raise
    return Plan(app=app, spec=spec, name=name, assignment=assignment, keep_alive=keep_alive,
                started_ns=started_ns, prompt_eval_count=count, steps=steps,
                done_reason=done_reason, error_before=error,
                error_after=options.get("sim_error_after"))


def _filter_images(app: App, msgs: list[Msg]) -> list[Msg]:
    """Apply the profile's image filter to the request's images as one ordered list."""
    flat = [(i, j) for i, m in enumerate(msgs) for j in range(len(m.images))]
    kept = set(app.profile.filter_images(flat))
    out = []
    for i, msg in enumerate(msgs):
        images = [img for j, img in enumerate(msg.images) if (i, j) in kept]
        out.append(Msg(msg.role, msg.content, images, msg.thinking, msg.tool_calls,
                       msg.tool_name))
    return out


# -- generate ----------------------------------------------------------------------------

def prepare_generate(app: App, req: dict[str, Any], started_ns: int
                     ) -> Plan | Special | DebugRender:
    name = req.get("model") or ""
    spec = _lookup(app, "generate", name)
    raw = bool(req.get("raw"))
    if raw and (req.get("template") or req.get("system") or req.get("context")):
        raise errors.raw_conflict()
    if req.get("suffix") and "insert" not in spec.capabilities:
        raise errors.no_insert(spec)
    top_logprobs = _check_logprobs(app, req)
    think_on, think_inline = _resolve_think(app, spec, name, req.get("think"))
    options = parse_options(req.get("options"), app.warn_option)
    keep_alive = req.get("keep_alive")
    prompt_text = req.get("prompt") or ""
    images = app.profile.filter_images(list(req.get("images") or []))
    if not prompt_text and not req.get("images"):
        return _load_or_unload(app, spec, name, options, keep_alive, started_ns)
    wanted = plan_runner(spec, options, app.config)
    path = modelrules.generate_mode(spec, app.features, app.env)
    assignment = _acquire(app, spec, wanted, keep_alive, started_ns)
    try:
        modelrules.check_generate_images(spec, len(images))
        ctx = assignment.runner.plan.ctx
        truncate = req.get("truncate") is not False
        system = req.get("system") or spec.system
        history = CONTEXT_MEMORY.text(req.get("context") or []) if req.get("context") else ""
        if raw:
            prompt = Prompt(prompt_text, images, [Msg("user", prompt_text)])
        elif req.get("template"):
            tags = "".join(f"[img-{i}]\n\n" for i in range(len(images)))
            prompt = Prompt(execute(req["template"], tags + prompt_text, system), images,
                            [Msg("user", prompt_text)])
        else:
            msgs = [Msg("system", system)] if system else []
            inline = app.features.generate_image_inline
            if inline:
                msgs.append(Msg("user", prompt_text, images))
            else:
                msgs += [Msg("user", f"[img-{i}]") for i in range(len(images))]
                msgs.append(Msg("user", prompt_text))
            prompt = chat_prompt(spec, msgs, num_ctx=wanted.ctx, truncate=truncate,
                                 mode=app.profile.truncation, think=req.get("think"),
                                 debug=app.debug_kv, path=path)
            if not inline:
                prompt.images = list(images)
        if history:
            prompt.text = history + prompt.text
        app.debug_kv("generate request", {"images": len(prompt.images), "prompt": prompt.text})
        if req.get("_debug_render_only"):
            app.scheduler.release(assignment.runner, keep_alive)
            return DebugRender(name, prompt.text, prompt.image_count)
        count = _finish_prompt(app, spec, prompt, ctx, truncate)
        steps, done_reason, error = _output(app, spec, prompt, options, think_on, think_inline,
                                            req.get("format"), None, prompt_text, ctx,
                                            top_logprobs)
        context = None
        if not raw:
            answer = "".join(s.text for s in steps if s.kind == "content")
            context = CONTEXT_MEMORY.ids(prompt.text + answer)
    except BaseException:
        app.scheduler.release(assignment.runner, keep_alive)
        raise
    return Plan(app=app, spec=spec, name=name, assignment=assignment, keep_alive=keep_alive,
                started_ns=started_ns, prompt_eval_count=count, steps=steps,
                done_reason=done_reason, error_before=error,
                error_after=options.get("sim_error_after"), context=context)


def lookup_for(app: App, route: str, name: str | None) -> ModelSpec:
    """Model lookup with the route's error wording (embed, show, ...)."""
    return _lookup(app, route, name)

