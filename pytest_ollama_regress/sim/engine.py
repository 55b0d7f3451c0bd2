"""Scheduler and loaded runners: options, ``num_ctx``, parallel slots, reloads, ``/api/ps``.

Follows ``server/sched.go``: a runner is reused unless a load-time option differs
(``needsReload``), each runner has ``OLLAMA_NUM_PARALLEL`` slots (1 for embedding models and
the encoder-cache families), loads are serialised and take the scheduled load time,
``keep_alive`` sets the expiry and 0 unloads after the request. ``num_ctx`` is the request's,
else the Modelfile's ``PARAMETER num_ctx``, else the server default (section 16.4).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_ollama_regress.sim import errors
from pytest_ollama_regress.sim.catalogue import ModelSpec
from pytest_ollama_regress.sim.errors import ApiError
from pytest_ollama_regress.sim.features import LOW_VRAM_GIB, Features
from pytest_ollama_regress.sim.latency import Latency, env_number
from pytest_ollama_regress.sim.profiles import Profile
from pytest_ollama_regress.sim.wire import go_json_kind

GIB = 1 << 30
#: reported VRAM: the v0.15.5+ 4096 tier, and at or above the 20 GiB low-VRAM threshold
DEFAULT_VRAM_GIB = 20.0

# option name -> Go kind ("int", "float", "bool", "array")
OPTION_TYPES: dict[str, str] = {
    "num_keep": "int", "seed": "int", "num_predict": "int", "top_k": "int",
    "top_p": "float", "min_p": "float", "typical_p": "float", "repeat_last_n": "int",
    "temperature": "float", "repeat_penalty": "float", "presence_penalty": "float",
    "frequency_penalty": "float", "stop": "array", "num_ctx": "int", "num_batch": "int",
    "num_gpu": "int", "main_gpu": "int", "use_mmap": "bool", "num_thread": "int",
}
RUNNER_OPTIONS = ("num_ctx", "num_batch", "num_gpu", "main_gpu", "use_mmap", "num_thread")
SIM_OPTIONS = ("sim_error_after",)
_GO_KIND = {"int": "integer", "float": "float32", "bool": "boolean", "array": "array"}

_DURATION_RE = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float:
    """``keep_alive`` as Go's ``api.Duration`` decodes it: seconds (number) or a duration
    string; negative means forever (``math.inf``)."""
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        kind = {bool: "bool", list: "[]interface {}", dict: "map[string]interface {}"}
        raise ApiError(400, f"Unsupported type: '{kind.get(type(value), 'nil')}'")
    if isinstance(value, (int, float)):
        return math.inf if value < 0 else float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return math.inf if number < 0 else number
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos = 0
    total = 0.0
    for match in _DURATION_RE.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise ApiError(400, f'time: invalid duration "{text}"')
    return math.inf if sign < 0 else total


def parse_options(raw: Any, warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Check request ``options`` types like ``Options.FromMap``; unknown keys are ignored."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "json: cannot unmarshal " + go_json_kind(raw) +
                       " into Go struct field .options of type map[string]interface {}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SIM_OPTIONS:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = int(value)
            continue
        kind = OPTION_TYPES.get(key)
        if kind is None:
            if warn:
                warn(key)
            continue
        if value is None:
            continue
        if kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise errors.option_type(key, _GO_KIND[kind])
            out[key] = int(value) if kind == "int" else float(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise errors.option_type(key, _GO_KIND[kind])
            out[key] = value
        else:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise errors.option_type(key, _GO_KIND[kind])
            out[key] = list(value)
    return out


@dataclass
class ServerConfig:
    """What the environment sets for the scheduler."""

    features: Features
    profile: Profile
    latency: Latency
    num_parallel: int = 1
    context_length: int = 0  # OLLAMA_CONTEXT_LENGTH (0 = version default)
    vram_gib: float = 20.0  # total VRAM minus OLLAMA_GPU_OVERHEAD (20: not low-VRAM mode)
    keep_alive_s: float = 300.0
    max_loaded: int = 3
    max_queue: int = 512

    @classmethod
    def from_env(cls, env: Mapping[str, str], features: Features, profile: Profile,
                 latency: Latency) -> ServerConfig:
        keep_raw = env.get("OLLAMA_KEEP_ALIVE", "").strip().strip("\"'")
        try:
            keep = parse_duration(keep_raw) if keep_raw else 300.0
        except ApiError as exc:
            raise ValueError(f"OLLAMA_KEEP_ALIVE={keep_raw!r}: {exc.message}") from None
        overhead_gib = env_number(env, "OLLAMA_GPU_OVERHEAD", 0) / GIB
        return cls(
            features=features, profile=profile, latency=latency,
            num_parallel=int(env_number(env, "OLLAMA_NUM_PARALLEL", 0)) or 1,
            context_length=int(env_number(env, "OLLAMA_CONTEXT_LENGTH", 0)),
            vram_gib=env_number(env, "OLLAMA_SIM_VRAM_GIB", DEFAULT_VRAM_GIB) - overhead_gib,
            keep_alive_s=keep,
            max_loaded=int(env_number(env, "OLLAMA_MAX_LOADED_MODELS", 0)) or 3,
            max_queue=int(env_number(env, "OLLAMA_MAX_QUEUE", 512)) or 512,
        )

    @property
    def default_num_ctx(self) -> int:
        if self.context_length > 0:
            return self.context_length
        return self.features.default_num_ctx(self.vram_gib)

    @property
    def low_vram(self) -> bool:
        """Total VRAM under 20 GiB (CPU included): no 8192 floor (v0.11.4-v0.15.4)."""
        return self.vram_gib < LOW_VRAM_GIB


@dataclass(frozen=True)
class RunnerPlan:
    """The load-time options a request asks for, after defaults and floors."""

    num_ctx: int  # requested per-slot context after floors, before the trained clamp
    ctx: int  # what the runner really has (clamped to the trained context)
    parallel: int
    num_batch: int = 512
    num_gpu: int = -1
    main_gpu: int = 0
    use_mmap: bool | None = None
    num_thread: int = 0
    auto_ctx: bool = False
    configured: int = 0  # the num_ctx asked for (request or default), before floors and clamp

    def differs(self, other: RunnerPlan, features: Features, *, compare_ctx: bool = True) -> bool:
        """``needsReload`` on the ``api.Runner`` options (``compare_ctx=False``: a profile
        whose scheduler does not see a changed context)."""
        if features.ps_reports_clamped:
            same_ctx = self.ctx == other.ctx or (self.auto_ctx and other.auto_ctx)
        else:
            same_ctx = self.num_ctx == other.num_ctx
        if compare_ctx and not same_ctx:
            return True
        if other.num_gpu != -1 and self.num_gpu != other.num_gpu:
            return True
        return (self.num_batch, self.main_gpu, self.use_mmap, self.num_thread) != (
            other.num_batch, other.main_gpu, other.use_mmap, other.num_thread)


def plan_runner(spec: ModelSpec, options: Mapping[str, Any], config: ServerConfig) -> RunnerPlan:
    """Effective runner options for ``spec`` (sections 6.2, 16.4: default, Modelfile
    ``PARAMETER``s, request, family and scheduler floors, clamp)."""
    features = config.features
    model = {k: v for k, v in spec.runner_defaults().items() if k in RUNNER_OPTIONS}
    options = {**model, **options}
    auto = "num_ctx" not in options and config.context_length <= 0
    configured = int(options.get("num_ctx", config.default_num_ctx))
    num_ctx = max(configured, features.ctx_floor(spec.families, config.low_vram), 4)
    if spec.is_vision and features.vision_ctx_floor:
        num_ctx = max(num_ctx, 2048)
    ctx = min(num_ctx, spec.context_length)
    single = spec.is_embedding or features.single_slot(spec.family)
    parallel = 1 if single else config.num_parallel
    return RunnerPlan(
        num_ctx=num_ctx, ctx=ctx, parallel=parallel,
        num_batch=int(options.get("num_batch", 512)), num_gpu=int(options.get("num_gpu", -1)),
        main_gpu=int(options.get("main_gpu", 0)), use_mmap=options.get("use_mmap"),
        num_thread=int(options.get("num_thread", 0)), auto_ctx=auto, configured=configured,
    )


@dataclass(eq=False)
class Runner:
    """A loaded model."""

    spec: ModelSpec
    plan: RunnerPlan
    config: ServerConfig
    loaded_ns: int
    expires_at: float = math.inf  # wall-clock seconds; inf = never
    refcount: int = 0
    last_used: float = field(default_factory=time.monotonic)
    slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.slots = threading.BoundedSemaphore(self.plan.parallel)

    @property
    def size(self) -> int:
        kv = self.spec.kv_bytes_per_token * self.plan.ctx * self.plan.parallel
        graph = (16 << 20) if self.spec.is_embedding else (256 << 20)
        return self.spec.weights_size + self.spec.projector_size + kv + graph

    @property
    def size_vram(self) -> int:
        vram = int(self.config.vram_gib * GIB)
        if vram <= 0:
            return 0
        return self.size if self.size <= vram else int(vram * 0.9)

    @property
    def ps_context_length(self) -> int:
        features = self.config.features
        per_slot = self.plan.ctx if features.ps_reports_clamped else self.plan.num_ctx
        return self.config.profile.ps_context_length(per_slot, self.plan.parallel,
                                                     self.plan.configured)


@dataclass
class Assignment:
    """A runner given to one request."""

    runner: Runner
    load_duration_ns: int
    loaded: bool  # this request (re)loaded the model


class Scheduler:
    """Loads, reuses, reloads and expires runners."""

    def __init__(self, config: ServerConfig, log: Callable[..., None]) -> None:
        self.config = config
        self.log = log
        self.runners: dict[str, Runner] = {}
        self._lock = threading.Condition()
        self._load_lock = threading.Lock()
        self._pending = 0

    # -- lifecycle -----------------------------------------------------------------------
    def _expire_locked(self) -> None:
        now = time.time()
        for name, runner in list(self.runners.items()):
            if runner.refcount == 0 and runner.expires_at <= now:
                del self.runners[name]
                self.log("DEBUG", "sched.go", "runner expired event received",
                         runner=name)
        self._lock.notify_all()

    def loaded(self) -> list[Runner]:
        with self._lock:
            self._expire_locked()
            return sorted(self.runners.values(), key=lambda r: r.expires_at, reverse=True)

    def unload(self, name: str) -> bool:
        """Expire ``name`` now (after its in-flight requests)."""
        with self._lock:
            runner = self.runners.get(name)
            if runner is None:
                return False
            runner.expires_at = 0.0
            self._expire_locked()
            return True

    def acquire(self, spec: ModelSpec, plan: RunnerPlan, keep_alive: float | None,
                started_ns: int) -> Assignment:
        """A runner for ``spec`` with ``plan``, loading or reloading as the real scheduler."""
        keep = self.config.keep_alive_s if keep_alive is None else keep_alive
        features = self.config.features
        compare_ctx = self.config.profile.num_ctx_change_reloads
        with self._lock:
            self._expire_locked()
            runner = self.runners.get(spec.name)
            if runner is not None and not self.config.profile.needs_reload(
                    runner.plan.differs(plan, features, compare_ctx=compare_ctx)):
                return self._assign_locked(runner, keep, started_ns, loaded=False)
            if self._pending >= self.config.max_queue:
                raise errors.busy()
            self._pending += 1
        try:
            with self._load_lock:
                with self._lock:
                    self._expire_locked()
                    runner = self.runners.get(spec.name)
                    if runner is not None:
                        changed = runner.plan.differs(plan, features, compare_ctx=compare_ctx)
                        if not changed and not self.config.profile.needs_reload(False):
                            return self._assign_locked(runner, keep, started_ns, loaded=False)
                        self.log("DEBUG", "sched.go", "reloading", runner=spec.name,
                                 num_ctx=plan.num_ctx, previous_num_ctx=runner.plan.num_ctx)
                        self._wait_idle_locked(runner)
                        self.runners.pop(spec.name, None)
                    self._evict_locked(spec.name)
                self.log("INFO", "server.go", "starting llama server", model=spec.name,
                         num_ctx=plan.ctx * plan.parallel, parallel=plan.parallel,
                         batch_size=plan.num_batch)
                begin = time.perf_counter_ns()
                time.sleep(self.config.latency.load_ns / 1e9)
                seconds = (time.perf_counter_ns() - begin) / 1e9
                self.log("INFO", "server.go", f"llama runner started in {seconds:.2f} seconds")
                with self._lock:
                    runner = Runner(spec=spec, plan=plan, config=self.config,
                                    loaded_ns=time.perf_counter_ns())
                    self.runners[spec.name] = runner
                    return self._assign_locked(runner, keep, started_ns, loaded=True)
        finally:
            with self._lock:
                self._pending -= 1

    def _assign_locked(self, runner: Runner, keep: float, started_ns: int,
                       loaded: bool) -> Assignment:
        runner.refcount += 1
        runner.last_used = time.monotonic()
        runner.expires_at = math.inf if math.isinf(keep) else time.time() + keep
        return Assignment(runner, time.perf_counter_ns() - started_ns, loaded)

    def _wait_idle_locked(self, runner: Runner, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while runner.refcount > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ApiError(500, "timed out waiting for the runner to become idle")
            self._lock.wait(left)

    def _evict_locked(self, keep_name: str) -> None:
        deadline = time.monotonic() + 120.0
        while len([n for n in self.runners if n != keep_name]) >= self.config.max_loaded:
            idle = [r for n, r in self.runners.items() if n != keep_name and r.refcount == 0]
            if idle:
                victim = min(idle, key=lambda r: r.last_used)
                del self.runners[victim.spec.name]
                self.log("DEBUG", "sched.go", "evicting model to make room",
                         model=victim.spec.name)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise ApiError(500, "timed out waiting for a model to unload")
            self._lock.wait(left)

    def release(self, runner: Runner, keep_alive: float | None) -> None:
        """The request is done with ``runner``; keep_alive 0 unloads it when idle."""
        keep = self.config.keep_alive_s if keep_alive is None else keep_alive
        with self._lock:
            runner.refcount -= 1
            runner.last_used = time.monotonic()
            runner.expires_at = math.inf if math.isinf(keep) else time.time() + keep
            if keep <= 0 and runner.refcount == 0 and self.runners.get(
                    runner.spec.name) is runner:
                del self.runners[runner.spec.name]
                self.log("DEBUG", "sched.go", "runner with zero duration has gone idle, "
                         "expiring to unload", runner=runner.spec.name)
            self._lock.notify_all()
