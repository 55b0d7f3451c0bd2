"""The simulated server's routes (native API), independent of the HTTP plumbing.

Handlers get an ``Exchange`` (request body plus response writers, see ``server.py``) and
write the bytes the real server would write for the simulated version and profile.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pytest_ollama_regress.sim import errors, tokens
from pytest_ollama_regress.sim.catalogue import ModelSpec, normalize_name
from pytest_ollama_regress.sim.decode import decode
from pytest_ollama_regress.sim.engine import (
    Scheduler,
    ServerConfig,
    parse_options,
    plan_runner,
)
from pytest_ollama_regress.sim.errors import ApiError, RunnerError
from pytest_ollama_regress.sim.features import Features
from pytest_ollama_regress.sim.inference import (
    DebugRender,
    Plan,
    Special,
    Step,
    lookup_for,
    prepare_chat,
    prepare_generate,
)
from pytest_ollama_regress.sim.latency import Latency
from pytest_ollama_regress.sim.logs import ServerLog
from pytest_ollama_regress.sim.profiles import Profile
from pytest_ollama_regress.sim.store import ModelStore
from pytest_ollama_regress.sim.wire import Float32, far_future_local, local_time, now_utc

NDJSON = "application/x-ndjson"


class Exchange(Protocol):
    """One HTTP exchange as the handlers see it (implemented in ``server.py``)."""

    method: str
    path: str
    body: bytes
    request_id: str | None
    started: bool

    def json(self, status: int, obj: Any) -> None: ...
    def text(self, status: int, text: str) -> None: ...
    def empty(self, status: int) -> None: ...
    def chunk(self, data: bytes, content_type: str = NDJSON) -> None: ...
    def line(self, obj: Any, content_type: str = NDJSON) -> None: ...
    def end(self) -> None: ...
    def attach(self, record: Record) -> None: ...


class Record:
    """What the simulator knows about one inference request (for timing tests)."""

    def __init__(self, request_id: str, route: str, started_ns: int) -> None:
        self.request_id = request_id
        self.route = route
        self.started_ns = started_ns
        self.flushes: list[int] = []
        self.scheduled_first_token_ns: int | None = None
        self.loaded = False
        self.finished = threading.Event()  # set when the response is complete

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until the response is complete (all flush times recorded)."""
        return self.finished.wait(timeout)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "started_ns": self.started_ns,
            "scheduled_first_token_ns": self.scheduled_first_token_ns,
            "loaded": self.loaded,
            "done": self.finished.is_set(),
            "flushes": list(self.flushes),
        }


class App:
    """State and routes of one simulated server."""

    def __init__(self, features: Features, profile: Profile, env: Mapping[str, str],
                 latency: Latency, log: ServerLog) -> None:
        self.features = features
        self.profile = profile
        self.env = dict(env)
        self.latency = latency
        self.log = log
        self.config = ServerConfig.from_env(self.env, features, profile, latency)
        self.scheduler = Scheduler(self.config, log)
        self.store = ModelStore(self.env.get("OLLAMA_MODELS") or None,
                                self.env.get("OLLAMA_SIM_MODELS", ""))
        #: llama-server's ``LLAMA_MEDIA_MARKER``: random per process (native chat, v0.30.0+)
        self.media_marker = f"<__ollama_media_{secrets.token_hex(16)}__>"
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._records_lock = threading.Lock()
        self._next_id = 0
        self.profile.first_token_delay_ns(self.env)  # validate OLLAMA_SIM_TTFT_DELAY_MS now

    # -- logging helpers -----------------------------------------------------------------
    def debug_kv(self, msg: str, attrs: dict[str, object]) -> None:
        if self.log.debug_enabled:
            source = "prompt.go" if msg.startswith("truncating") else "routes.go"
            self.log("DEBUG", source, msg, **attrs)

    def warn_option(self, key: str) -> None:
        self.log("WARN", "types.go", "invalid option provided", option=key)

    # -- request records -----------------------------------------------------------------
    def new_record(self, route: str, started_ns: int) -> Record:
        with self._records_lock:
            self._next_id += 1
            record = Record(str(self._next_id), route, started_ns)
            self._records[record.request_id] = record
            while len(self._records) > 20_000:
                self._records.popitem(last=False)
            return record

    def record(self, request_id: str) -> Record | None:
        with self._records_lock:
            return self._records.get(str(request_id))

    # -- simple routes -------------------------------------------------------------------
    def root(self, ex: Exchange) -> None:
        ex.text(200, "Ollama is running")

    @property
    def reported_version(self) -> str:
        """The version string this server shows (the profile's; it behaves as ``features``)."""
        return self.profile.reported_version(self.features.version)

    def version(self, ex: Exchange) -> None:
        ex.json(200, {"version": self.reported_version})

    def tags(self, ex: Exchange) -> None:
        models = []
        for spec, mtime in self.store.installed():
            details = spec.details()
            if self.features.tags_capabilities:
                details["context_length"] = spec.context_length
                details["embedding_length"] = spec.embedding_length
            item: dict[str, Any] = {
                "name": spec.name, "model": spec.name, "modified_at": local_time(mtime),
                "size": spec.size, "digest": spec.digest, "details": details,
            }
            if self.features.tags_capabilities:
                item["capabilities"] = list(spec.capabilities)
            models.append(item)
        ex.json(200, {"models": models})

    def show(self, ex: Exchange) -> None:
        req = decode(ex.body, "show", self.features)
        name = req.get("model") or req.get("name") or ""
        if not name:
            raise errors.model_required()
        spec = self._installed(name)
        if spec is None:
            raise ApiError(404, f"model '{name}' not found")
        body: dict[str, Any] = {}
        if spec.license:
            body["license"] = spec.license
        body["modelfile"] = spec.modelfile(self.features.renderers)
        if spec.parameters:
            body["parameters"] = spec.parameters_text()
        body["template"] = spec.shown_template
        system = req.get("system") or spec.system
        if system:
            body["system"] = system
        body["details"] = spec.details()
        body["model_info"] = spec.model_info(bool(req.get("verbose")))
        if spec.projector_size:
            body["projector_info"] = {
                "clip.has_llava_projector": True, "clip.has_text_encoder": False,
                "clip.has_vision_encoder": True, "clip.projector_type": "mlp",
                "clip.vision.block_count": spec.vision_block_count,
                "clip.vision.embedding_length": 1024, "clip.vision.image_size": 336,
                "clip.vision.patch_size": 14, "general.architecture": "clip",
            }
        body["tensors"] = [
            {"name": "token_embd.weight", "type": spec.quantization,
             "shape": [spec.embedding_length, 32000]},
            {"name": "blk.0.attn_q.weight", "type": spec.quantization,
             "shape": [spec.embedding_length, spec.embedding_length]},
            {"name": "output_norm.weight", "type": "F32", "shape": [spec.embedding_length]},
        ]
        body["capabilities"] = list(spec.capabilities)
        body["modified_at"] = local_time(self.store.modified_ns(spec.name))
        ex.json(200, body)

    def ps(self, ex: Exchange) -> None:
        models = []
        for runner in self.scheduler.loaded():
            spec = runner.spec
            expires = (far_future_local() if math.isinf(runner.expires_at)
                       else local_time(int(runner.expires_at * 1e9)))
            item: dict[str, Any] = {
                "name": spec.name, "model": spec.name, "size": runner.size,
                "digest": spec.digest, "details": spec.details(), "expires_at": expires,
                "size_vram": runner.size_vram,
            }
            if self.features.ps_context_length:
                item["context_length"] = runner.ps_context_length
            models.append(item)
        ex.json(200, {"models": models})

    def _installed(self, name: str) -> ModelSpec | None:
        normal = normalize_name(name)
        return self.store.get(normal) if normal else None

    # -- pull / delete -------------------------------------------------------------------
    def pull(self, ex: Exchange) -> None:
        record = self.new_record("pull", time.perf_counter_ns())
        ex.attach(record)
        req = decode(ex.body, "pull", self.features)
        name = req.get("model") or req.get("name") or ""
        normal = normalize_name(name)
        if normal is None:
            raise errors.invalid_model_name()
        stream = req.get("stream") is not False
        spec = self.store.known(normal)
        steps: list[dict[str, Any]] = [{"status": "pulling manifest"}]
        failure = None
        if spec is None:
            failure = "pull model manifest: file does not exist"
        else:
            for layer in spec.layers():
                label = f"pulling {layer.digest[7:19]}"
                steps.append({"status": label, "digest": layer.digest, "total": layer.size})
                if layer.size > 1:
                    steps.append({"status": label, "digest": layer.digest,
                                  "total": layer.size, "completed": layer.size // 2})
                steps.append({"status": label, "digest": layer.digest, "total": layer.size,
                              "completed": layer.size})
            steps += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"},
                      {"status": "success"}]
        self.log("INFO", "images.go", "pulling model", model=normal)
        if not stream:
            time.sleep(0.001 * len(steps))
            if failure:
                raise ApiError(500, failure)
            self.store.pull(spec)  # type: ignore[arg-type]
            ex.json(200, steps[-1])
            return
        for step in steps:
            if step["status"] == "writing manifest" and spec is not None:
                self.store.pull(spec)
            ex.line(step)
            time.sleep(0.001)
        if failure:
            ex.line({"error": failure})
        ex.end()

    def delete(self, ex: Exchange) -> None:
        req = decode(ex.body, "delete", self.features)
        name = req.get("model") or req.get("name") or ""
        if not name and self.features.delete_model_required:
            raise errors.model_required()
        normal = normalize_name(name)
        if normal is None:
            raise ApiError(400, f'name "{name}" is invalid')
        if self.store.get(normal) is None:
            raise ApiError(404, f"model '{name}' not found")
        self.scheduler.unload(normal)
        self.store.delete(normal)
        ex.empty(200)

    # -- embeddings ----------------------------------------------------------------------
    def _embed_vectors(self, ex: Exchange, route: str, name: str, texts: list[str],
                       options: dict[str, Any], keep_alive: float | None, truncate: bool,
                       started: int) -> tuple[list[list[float]], int, int, ModelSpec]:
        spec = lookup_for(self, route, name)
        assignment = self.scheduler.acquire(spec, plan_runner(spec, options, self.config),
                                            keep_alive, started)
        runner = assignment.runner
        try:
            limit = min(runner.plan.ctx, spec.context_length)
            counts = []
            for text in texts:
                count = tokens.count(text)
                if count > limit:
                    if not truncate:
                        raise ApiError(400, self.features.embed_context_error)
                    count = limit
                counts.append(count)
            if not texts:
                return [], 0, assignment.load_duration_ns, spec
            if not runner.slots.acquire(timeout=600):
                raise RunnerError("timed out waiting for a parallel slot")
            try:
                time.sleep(self.latency.prefill_ns(sum(counts)) / 1e9)
            finally:
                runner.slots.release()
            vectors = [embedding(spec, text) for text in texts]
            return vectors, sum(counts), assignment.load_duration_ns, spec
        finally:
            self.scheduler.release(runner, keep_alive)

    def embed(self, ex: Exchange) -> None:
        started = time.perf_counter_ns()
        record = self.new_record("embed", started)
        ex.attach(record)
        req = decode(ex.body, "embed", self.features)
        raw = req.get("input")
        texts: list[str]
        if raw is None:
            texts = []
        elif isinstance(raw, str):
            texts = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            texts = list(raw)
        else:
            raise ApiError(400, "invalid input type")
        options = parse_options(req.get("options"), self.warn_option)
        vectors, count, load_ns, _ = self._embed_vectors(
            ex, "embed", req.get("model") or "", texts, options, req.get("keep_alive"),
            req.get("truncate") is not False, started)
        dims = req.get("dimensions") or 0
        out = []
        for vec in vectors:
            if 0 < dims < len(vec):
                vec = _normalise(vec[:dims])
            out.append([Float32(x) for x in vec])
        body: dict[str, Any] = {"model": req.get("model"), "embeddings": out}
        if texts:
            body["total_duration"] = time.perf_counter_ns() - started
            body["load_duration"] = max(load_ns, 1)
            body["prompt_eval_count"] = count
        ex.json(200, body)

    def embeddings(self, ex: Exchange) -> None:
        started = time.perf_counter_ns()
        record = self.new_record("embeddings", started)
        ex.attach(record)
        req = decode(ex.body, "embeddings", self.features)
        options = parse_options(req.get("options"), self.warn_option)
        prompt = req.get("prompt") or ""
        vectors, _, _, _ = self._embed_vectors(
            ex, "embeddings", req.get("model") or "", [prompt] if prompt else [], options,
            req.get("keep_alive"), True, started)
        ex.json(200, {"embedding": vectors[0] if vectors else []})

    # -- chat / generate -----------------------------------------------------------------
    def chat(self, ex: Exchange) -> None:
        self._inference(ex, "chat")

    def generate(self, ex: Exchange) -> None:
        self._inference(ex, "generate")

    def _inference(self, ex: Exchange, route: str) -> None:
        started = time.perf_counter_ns()
        record = self.new_record(route, started)
        ex.attach(record)
        req = decode(ex.body, route, self.features, self.profile.decode_image)
        prepare = prepare_chat if route == "chat" else prepare_generate
        result = prepare(self, req, started)
        if isinstance(result, Special):
            ex.json(200, self._special(route, result))
            return
        if isinstance(result, DebugRender):
            ex.json(200, self._debug_body(route, result))
            return
        record.loaded = result.assignment.loaded
        stream = req.get("stream") is not False
        self.run_plan(ex, result, record, stream, route)

    def _special(self, route: str, result: Special) -> dict[str, Any]:
        body: dict[str, Any] = {"model": result.name, "created_at": now_utc()}
        if route == "chat":
            body["message"] = {"role": "assistant", "content": ""}
            return self._final_order(body, result.done_reason, {})
        body["response"] = ""
        body["done"] = True
        body["done_reason"] = result.done_reason
        return body

    def _final_order(self, body: dict[str, Any], done_reason: str,
                     metrics: dict[str, int],
                     extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Chat final: v0.11-era ``done_reason, done``; HEAD era ``done, done_reason``
        (then ``extra``: the ``logprobs`` of a non-streamed answer, and the metrics)."""
        if self.features.openai_head_stream:
            body["done"] = True
            body["done_reason"] = done_reason
        else:
            body["done_reason"] = done_reason
            body["done"] = True
        body.update(extra or {})
        body.update(metrics)
        return body

    def _debug_body(self, route: str, result: DebugRender) -> dict[str, Any]:
        info: dict[str, Any] = {"rendered_template": result.rendered}
        if result.image_count:
            info["image_count"] = result.image_count
        body: dict[str, Any] = {"model": result.name, "created_at": now_utc()}
        if self.features.debug_render_full_shape:
            if route == "chat":
                body["message"] = {"role": "", "content": ""}
            else:
                body["response"] = ""
            body["done"] = False
        body["_debug_info"] = info
        return body

    def chunk_body(self, route: str, plan: Plan, step: Step) -> dict[str, Any]:
        body: dict[str, Any] = {"model": plan.name, "created_at": now_utc()}
        if route == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": ""}
            if step.kind == "content":
                message["content"] = step.text
            elif step.kind == "thinking":
                message["thinking"] = step.text
            elif step.tool_call is not None:
                message["tool_calls"] = [step.tool_call]
            body["message"] = message
        else:
            body["response"] = step.text if step.kind == "content" else ""
            if step.kind == "thinking":
                body["thinking"] = step.text
        body["done"] = False
        if step.logprob is not None:
            body["logprobs"] = [step.logprob]
        return body

    def final_body(self, route: str, plan: Plan, metrics: dict[str, int],
                   steps: list[Step] | None = None) -> dict[str, Any]:
        """The final object; with ``steps`` it is the non-streaming (aggregated) response."""
        body: dict[str, Any] = {"model": plan.name, "created_at": now_utc()}
        content = "".join(s.text for s in steps or [] if s.kind == "content")
        thinking = "".join(s.text for s in steps or [] if s.kind == "thinking")
        calls = [s.tool_call for s in steps or [] if s.tool_call is not None]
        if route == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = calls
            body["message"] = message
            return self._final_order(body, plan.done_reason, metrics, _logprobs(steps))
        body["response"] = content
        if thinking:
            body["thinking"] = thinking
        body["done"] = True
        body["done_reason"] = plan.done_reason
        if plan.context is not None:
            body["context"] = plan.context
        body.update(_logprobs(steps))
        body.update(metrics)
        return body

    def run_plan(self, ex: Exchange, plan: Plan, record: Record, stream: bool,
                 route: str) -> None:
        """Run a generation and write it as NDJSON (stream) or one JSON object."""

        def on_schedule(first_ns: int) -> None:
            record.scheduled_first_token_ns = first_ns

        if not stream:
            try:
                metrics = plan.run(lambda step: None, on_schedule)
            except RunnerError as exc:
                status = exc.status if self.features.truncate_field else 500
                ex.json(status, {"error": exc.message})
                return
            ex.json(200, self.final_body(route, plan, metrics, plan.steps))
            return

        def emit(step: Step) -> None:
            ex.line(self.chunk_body(route, plan, step))

        try:
            metrics = plan.run(emit, on_schedule)
        except RunnerError as exc:
            if not ex.started and self.features.truncate_field:
                ex.json(exc.status, {"error": exc.message})
            else:
                ex.line({"error": exc.message})
                ex.end()
            return
        ex.line(self.final_body(route, plan, metrics))
        ex.end()


def _logprobs(steps: list[Step] | None) -> dict[str, Any]:
    """``{"logprobs": [...]}`` for a non-streamed answer whose request asked for them."""
    entries = [s.logprob for s in steps or [] if s.logprob is not None]
    return {"logprobs": entries} if entries else {}


def embedding(spec: ModelSpec, text: str) -> list[float]:
    """A deterministic, L2-normalised vector for ``text`` (``embedding_length`` floats)."""
    values: list[float] = []
    counter = 0
    while len(values) < spec.embedding_length:
        digest = hashlib.sha256(f"{spec.name}\0{text}\0{counter}".encode()).digest()
        for (raw,) in struct.iter_unpack("<h", digest):
            values.append(raw / 32768.0)
        counter += 1
    return _normalise(values[: spec.embedding_length])


def _normalise(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


Handler = Callable[[Exchange], None]
