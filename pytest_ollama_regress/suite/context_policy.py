"""Context-length policies: what ``/api/ps`` ``context_length`` should say for a request.

Two policies, selected with ``--ollama-numctx-policy`` or the ini key
``ollama_numctx_policy``:

``stock``
    Upstream Ollama, by version (reference notes section 6.2): the request's ``num_ctx``, else
    ``OLLAMA_CONTEXT_LENGTH``, else 4096 (v0.6.7-v0.15.4) or a VRAM tier (v0.15.5+: 4096 below
    23 GiB, 32768 from 23 GiB, 262144 from 47 GiB); floors 4 and, for vision models from
    v0.11.5, 2048, and for gpt-oss (v0.11.0-v0.15.4) and qwen3vl (v0.12.7-v0.15.4) 8192
    unless the server is in low-VRAM mode; a Modelfile ``PARAMETER num_ctx`` replaces the
    default; ``/api/ps`` shows the value before the clamp to the model's
    ``<arch>.context_length`` up to v0.15.4 and the clamped value from v0.15.5. Never
    multiplied or divided by ``OLLAMA_NUM_PARALLEL``.

Every function here answers for one release (:class:`~.expectations.ReleaseRules`); a check
asks each release the server may be and lets :meth:`~.expectations.Expectations.judge` decide.

``dynamic``
    The seeds' fork: ``max(4096, ceil(length * 2 / 1024) * 1024)`` capped at the model's
    maximum, where ``length`` is the :func:`message_length` of the request. A ``num_ctx``
    option is not consulted.

**Message length** is the number of UTF-8 bytes of the text the request carries: the
``content`` of every message of a chat request, or ``system`` plus ``prompt`` of a generate
request. Roles, images, tool calls and template text are not counted. This is what Go's
``len()`` returns for the fork's strings, and it is computable by any client without the
model's tokenizer. (For English text it is about four times the token count, so the formula
leaves room for the prompt and an answer of the same size.)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the settings validate a policy name without loading the rules
    from pytest_ollama_regress.suite.expectations import ReleaseRules
    from pytest_ollama_regress.suite.model_facts import ModelFacts

STOCK = "stock"
DYNAMIC = "dynamic"
POLICIES = (STOCK, DYNAMIC)

NUM_CTX_FLOOR = 4
VISION_NUM_CTX_FLOOR = 2048
LEGACY_DEFAULT = 4096
DYNAMIC_MINIMUM = 4096
DYNAMIC_STEP = 1024
VRAM_TIERS: tuple[tuple[float, int], ...] = ((47.0, 262144), (23.0, 32768), (0.0, 4096))
"""(minimum GiB of VRAM, default num_ctx) for v0.15.5+, largest first."""


@dataclass(frozen=True)
class ModelLimits:
    """What a policy needs to know about a model (from ``/api/show``)."""

    name: str
    context_length: int | None = None
    vision: bool = False
    facts: ModelFacts | None = None

    @classmethod
    def from_show(cls, name: str, show: Mapping[str, Any]) -> ModelLimits:
        """Read ``<arch>.context_length``, vision and the model's other facts (§16.4)."""
        from pytest_ollama_regress.suite.model_facts import ModelFacts

        facts = ModelFacts.from_show(name, show)
        info = show.get("model_info") or {}
        vision = facts.vision or f"{facts.architecture}.vision.block_count" in info
        return cls(name=name, context_length=facts.context_length, vision=vision, facts=facts)

    def floors(self, release: ReleaseRules) -> tuple[int, ...]:
        """The model's own context floors at ``release`` (8192 or, in low-VRAM mode, none)."""
        return self.facts.context_floors(release) if self.facts else (0,)

    @property
    def default_num_ctx(self) -> int | None:
        """A Modelfile ``PARAMETER num_ctx``: the model's default context."""
        return self.facts.num_ctx_parameter if self.facts else None


@dataclass(frozen=True)
class ContextRequest:
    """The parts of a request that decide its context: ``num_ctx`` sent (or not), length."""

    num_ctx: int | None = None
    length: int = 0

    def __str__(self) -> str:
        sent = "no num_ctx" if self.num_ctx is None else f"num_ctx {self.num_ctx}"
        return f"{sent}, message length {self.length} bytes"


def message_length(
    messages: Iterable[Mapping[str, Any]] | None = None,
    *,
    prompt: str | None = None,
    system: str | None = None,
) -> int:
    """UTF-8 bytes of the text a request carries (see the module docstring)."""
    texts = [str(m.get("content") or "") for m in messages or ()]
    texts += [t for t in (system, prompt) if t]
    return sum(len(t.encode("utf-8")) for t in texts)


def dynamic_num_ctx(length: int, model_max: int | None = None) -> int:
    """The seeds' formula ``max(4096, ceil(length*2/1024)*1024)``, capped at ``model_max``."""
    if length < 0:
        raise ValueError(f"message length must be >= 0, got {length}")
    value = max(DYNAMIC_MINIMUM, math.ceil(length * 2 / DYNAMIC_STEP) * DYNAMIC_STEP)
    return min(value, model_max) if model_max else value


def vram_tier(vram_gib: float) -> int:
    """Default num_ctx of v0.15.5+ for a GPU with ``vram_gib`` GiB (minus overhead)."""
    return next(ctx for gib, ctx in VRAM_TIERS if vram_gib >= gib)


def stock_defaults(
    release: ReleaseRules,
    *,
    env: Mapping[str, str] | None = None,
    vram_gib: float | None = None,
    model: ModelLimits | None = None,
) -> tuple[int, ...]:
    """The default num_ctx values the server may use when a request sends none.

    One value when it is determined (a Modelfile ``PARAMETER num_ctx``,
    ``OLLAMA_CONTEXT_LENGTH`` set, a version before v0.15.5, or a known VRAM size); the
    possible VRAM tiers otherwise.
    """
    if model is not None and model.default_num_ctx:
        return (model.default_num_ctx,)
    env_value = (env or {}).get("OLLAMA_CONTEXT_LENGTH", "").strip()
    if env_value and env_value != "0":
        return (int(env_value),)
    if not release.vram_tier_default:
        return (LEGACY_DEFAULT,)
    if vram_gib is not None:
        return (vram_tier(vram_gib),)
    return tuple(sorted(ctx for _, ctx in VRAM_TIERS))


def _floored(value: int, model: ModelLimits, release: ReleaseRules) -> tuple[int, ...]:
    value = max(value, NUM_CTX_FLOOR)
    if model.vision:
        value = max(value, release.vision_floor)
    return tuple(max(value, floor) for floor in model.floors(release))


def _clamped(value: int, model: ModelLimits) -> int:
    return min(value, model.context_length) if model.context_length else value


@dataclass(frozen=True)
class StockPolicy:
    """Upstream Ollama's context rules for the version under test."""

    name: str = STOCK

    def effective(self, request: ContextRequest, model: ModelLimits, release: ReleaseRules,
                  *, env: Mapping[str, str] | None = None,
                  vram_gib: float | None = None) -> tuple[int, ...]:
        """The context the runner actually uses (after floors and the clamp)."""
        return tuple(sorted({_clamped(v, model) for v in self._floored(
            request, model, release, env, vram_gib)}))

    def ps_context_length(self, request: ContextRequest, model: ModelLimits,
                          release: ReleaseRules, *, env: Mapping[str, str] | None = None,
                          vram_gib: float | None = None) -> tuple[int, ...]:
        """What ``/api/ps`` may report: clamped from v0.15.5, requested-after-floors before."""
        values = self._floored(request, model, release, env, vram_gib)
        if release.ps_context_clamped:
            values = tuple(_clamped(v, model) for v in values)
        return tuple(sorted(set(values)))

    def describe(self, request: ContextRequest, release: ReleaseRules) -> str:
        """The rule behind the expectation, for failure messages."""
        if request.num_ctx is None:
            return "default num_ctx vram tier" if release.vram_tier_default \
                else "default num_ctx 4096"
        return release.ps_context_rule.name

    def _floored(self, request: ContextRequest, model: ModelLimits, release: ReleaseRules,
                 env: Mapping[str, str] | None, vram_gib: float | None) -> tuple[int, ...]:
        if request.num_ctx is not None:
            base: tuple[int, ...] = (request.num_ctx,)
        else:
            base = stock_defaults(release, env=env, vram_gib=vram_gib, model=model)
        return tuple(sorted({f for v in base for f in _floored(v, model, release)}))


@dataclass(frozen=True)
class DynamicPolicy:
    """The seeds' fork: the context follows the message length."""

    name: str = DYNAMIC

    def effective(self, request: ContextRequest, model: ModelLimits, release: ReleaseRules,
                  *, env: Mapping[str, str] | None = None,
                  vram_gib: float | None = None) -> tuple[int, ...]:
        """``dynamic_num_ctx(length)`` capped at the model maximum; ``num_ctx`` is ignored."""
        return (dynamic_num_ctx(request.length, model.context_length),)

    def ps_context_length(self, request: ContextRequest, model: ModelLimits,
                          release: ReleaseRules, *, env: Mapping[str, str] | None = None,
                          vram_gib: float | None = None) -> tuple[int, ...]:
        """The fork reports the context it loaded with."""
        return self.effective(request, model, release)

    def describe(self, request: ContextRequest, release: ReleaseRules) -> str:
        """The rule behind the expectation, for failure messages."""
        return "dynamic num_ctx"


Policy = StockPolicy | DynamicPolicy


def get_policy(name: str) -> Policy:
    """The policy called ``name``; ``ValueError`` with a one-line fix otherwise."""
    key = (name or "").strip().lower()
    if key == STOCK:
        return StockPolicy()
    if key == DYNAMIC:
        return DynamicPolicy()
    raise ValueError("unknown num_ctx policy: use --ollama-numctx-policy=stock or =dynamic "
                     "(ini: ollama_numctx_policy)")
