"""Model catalogue: Strategy A names, quant tokens and capability discovery.

Strategy A (see ``docs/catalogue.md``): for an Ollama name ``[host/][namespace/]base[:tag]``
the tag is split at its last ``-``; when that last token is a quant token the family is the
base plus the rest of the tag and the quant is the token, otherwise the family is
``base-tag`` and there is no quant.  The variant name is ``<family>-ollama-gguf[-<quant>]``.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_ollama_regress.catalogue.selector import (  # noqa: F401 - re-exported
    ModelSelector,
    parse_model_selector,
)

#: The seed's quant regex, kept as the floor: everything it accepts is still a quant token.
SEED_QUANT_RE = re.compile(r"^(q\d(?:_k(?:_m)?)?|int4|int8|fp16|f16)$", re.IGNORECASE)

#: Quant tokens as Ollama's library and Hugging Face GGUF repos name them (case-insensitive).
QUANT_RE = re.compile(
    r"""^(?:
        q\d(?:_k(?:_(?:s|m|l|xl))?)?     # seed: q4, q4_k, q4_k_m; added: q4_k_s, q3_k_l, q3_k_xl
        | q\d_[01]                       # legacy block quants: q4_0 q4_1 q5_0 q5_1 q8_0
        | iq1_[sm] | iq[23]_(?:xxs|xs|s|m) | iq4_(?:xs|nl)   # llama.cpp i-quants
        | tq[12]_0                       # ternary quants (unsloth's TQ1_0)
        | int4 | int8                    # seed
        | fp16 | f16 | bf16 | fp32 | f32 # float weights
        | mxfp4 | nvfp4                  # 4-bit float formats (gpt-oss, nvfp4 tags)
    )$""",
    re.IGNORECASE | re.VERBOSE,
)

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
BACKEND_SUFFIX = "ollama-gguf"


def is_quant_token(token: str) -> bool:
    """True when ``token`` names a quantisation (Strategy A's extended quant regex)."""
    return bool(QUANT_RE.match(token))


@dataclass(frozen=True)
class ModelName:
    """An Ollama model name split into its parts (defaults filled in)."""

    host: str
    namespace: str
    model: str
    tag: str
    tag_given: bool

    @property
    def path(self) -> tuple[str, ...]:
        """Path parts below the manifests folder: host, namespace, model, tag."""
        return (self.host, self.namespace, self.model, self.tag)

    @property
    def display(self) -> str:
        """The shortest name Ollama would print (``llama3.2:3b``, ``user/model:tag``)."""
        prefix = ""
        if self.host != DEFAULT_HOST:
            prefix = f"{self.host}/{self.namespace}/"
        elif self.namespace != DEFAULT_NAMESPACE:
            prefix = f"{self.namespace}/"
        return f"{prefix}{self.model}:{self.tag}"


# Part syntax of Ollama's ``types/model`` names (host may carry a port).
_HOST_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$")
_PART_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$")


def parse_model_name(name: str) -> ModelName:
    """Split ``[host/][namespace/]model[:tag][@digest]`` as Ollama's ``model.Name`` does.

    Raises ``ValueError`` (one line) for an empty name or empty parts.
    """
    raw = name.strip()
    if "@" in raw:
        raw = raw.split("@", 1)[0]
    if not raw:
        raise ValueError(f"empty model name {name!r}: expected model[:tag]")
    slash = raw.rfind("/")
    colon = raw.rfind(":")
    tag = ""
    if colon > slash:
        raw, tag = raw[:colon], raw[colon + 1 :]
        if not tag:
            raise ValueError(f"model name {name!r} has an empty tag after ':'")
    parts = raw.split("/")
    if any(not p for p in parts):
        raise ValueError(f"model name {name!r} has an empty path part")
    if len(parts) > 3:
        raise ValueError(f"model name {name!r} has more than host/namespace/model parts")
    if len(parts) == 1:
        host, namespace, model = DEFAULT_HOST, DEFAULT_NAMESPACE, parts[0]
    elif len(parts) == 2:
        host, namespace, model = DEFAULT_HOST, parts[0], parts[1]
    else:
        host, namespace, model = parts
    for kind, part, pattern in (
        ("host", host, _HOST_RE),
        ("namespace", namespace, _NAMESPACE_RE),
        ("model", model, _PART_RE),
        ("tag", tag or DEFAULT_TAG, _PART_RE),
    ):
        if not pattern.match(part):
            raise ValueError(
                f"model name {name!r}: invalid {kind} {part!r} (letters, digits, '_', '-'"
                + ("" if kind == "namespace" else ", '.'")
                + (", ':'" if kind == "host" else "")
                + "; starting with a letter, digit or '_')"
            )
    return ModelName(host, namespace, model, tag or DEFAULT_TAG, tag_given=bool(tag))


def canonical_name(name: str) -> str:
    """The name Ollama lists for ``name`` (``llama3`` -> ``llama3:latest``), lower-cased."""
    return parse_model_name(name).display.lower()


_SLUG_BAD = re.compile(r"[^a-z0-9._-]+")
_SLUG_DASHES = re.compile(r"-{2,}")


def _slug(text: str) -> str:
    text = _SLUG_BAD.sub("-", text.lower())
    return _SLUG_DASHES.sub("-", text).strip("-.")


@dataclass(frozen=True)
class StrategyA:
    """Strategy A result for one served model id."""

    served_model_id: str
    family: str
    quant: str | None

    @property
    def variant(self) -> str:
        """``<family>-ollama-gguf[-<quant>]``."""
        name = f"{self.family}-{BACKEND_SUFFIX}"
        return f"{name}-{self.quant}" if self.quant else name


def strategy_a(name: str) -> StrategyA:
    """Strategy A family / quant / variant name for an Ollama model name."""
    parsed = parse_model_name(name)
    stem_parts: list[str] = []
    if parsed.host != DEFAULT_HOST:
        stem_parts += [parsed.host, parsed.namespace]
    elif parsed.namespace != DEFAULT_NAMESPACE:
        stem_parts.append(parsed.namespace)
    stem_parts.append(parsed.model)
    base = _slug("-".join(stem_parts))
    quant: str | None = None
    rest = parsed.tag
    head, _, last = parsed.tag.rpartition("-")
    if is_quant_token(last):
        quant, rest = last.lower(), head
    if quant is None and rest.lower() == DEFAULT_TAG:
        rest = ""
    family = f"{base}-{_slug(rest)}" if rest else base
    return StrategyA(served_model_id=name.strip(), family=family, quant=quant)


def variant_name(name: str) -> str:
    """Strategy A variant name, e.g. ``llava:7b`` -> ``llava-7b-ollama-gguf``."""
    return strategy_a(name).variant


def assign_variant_names(names: Iterable[str]) -> dict[str, str]:
    """Variant names for several served ids, unique even when Strategy A collides.

    Names that are the same model for Ollama (``llama3`` and ``llama3:latest``) share a
    variant name.  Different models whose Strategy A names collide (``a-b:c`` / ``a:b-c``)
    each get ``-h<8 hex of sha256(canonical name)>`` appended, so the result is stable.
    """
    ordered = list(dict.fromkeys(names))
    by_variant: dict[str, set[str]] = {}
    for n in ordered:
        by_variant.setdefault(variant_name(n), set()).add(canonical_name(n))
    out: dict[str, str] = {}
    for n in ordered:
        v = variant_name(n)
        if len(by_variant[v]) > 1:
            digest = hashlib.sha256(canonical_name(n).encode()).hexdigest()[:8]
            v = f"{v}-h{digest}"
        out[n] = v
    return out


# --- capabilities -------------------------------------------------------------------------

_VISION_WORDS = ("llava", "vision", "moondream", "minicpm-v", "bakllava")
_EMBED_WORDS = ("embed", "minilm", "bge-", "e5-")


def heuristic_capabilities(name: str) -> tuple[str, ...]:
    """Guess capabilities from a name (the seed's heuristic, extended; may over-match).

    Vision: the name contains ``llava`` or ``vl`` (the seed's rule, ``vl`` as a word or at a
    word's end: ``qwen2.5vl``, ``qwen2-vl``) or one of ``vision``, ``moondream``,
    ``minicpm-v``.  Embedding: ``embed``, ``minilm``, ``bge-``, ``e5-``.  Otherwise completion.
    """
    low = name.lower()
    words = re.split(r"[^a-z0-9]+", low)
    if any(w in low for w in _EMBED_WORDS):
        return ("embedding",)
    vision = any(w in low for w in _VISION_WORDS) or any(w.endswith("vl") for w in words)
    return ("completion", "vision") if vision else ("completion",)


def capabilities_from_model_info(show: Mapping[str, Any]) -> tuple[str, ...]:
    """Capabilities derived from ``model_info`` and the template, as servers < 0.6.4 lack them."""
    info = show.get("model_info") or {}
    arch = str(info.get("general.architecture", ""))
    caps: list[str] = []
    caps.append("embedding" if f"{arch}.pooling_type" in info else "completion")
    if f"{arch}.vision.block_count" in info or show.get("projector_info"):
        caps.append("vision")
    template = str(show.get("template") or "")
    if ".Tools" in template:
        caps.append("tools")
    if ".Suffix" in template:
        caps.append("insert")
    if "<think>" in template or ".Thinking" in template or ".IsThinkSet" in template:
        caps.append("thinking")
    return tuple(caps)


def context_length_from_show(show: Mapping[str, Any]) -> int | None:
    """``<arch>.context_length`` from ``model_info``, or None."""
    info = show.get("model_info") or {}
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.context_length") if arch else None
    return int(value) if isinstance(value, (int, float)) else None


@dataclass(frozen=True)
class ModelEntry:
    """One model a server holds, with its Strategy A name and capabilities."""

    name: str
    variant: str
    family: str
    quant: str | None
    capabilities: tuple[str, ...]
    capabilities_source: str  # "show", "show-model-info", "tags" or "name-heuristic"
    details: Mapping[str, Any] = field(default_factory=dict)
    size: int | None = None
    digest: str | None = None
    modified_at: str | None = None
    context_length: int | None = None

    def has(self, capability: str) -> bool:
        """True when the model reports ``capability``."""
        return capability in self.capabilities

    @property
    def is_vision(self) -> bool:
        return self.has("vision")

    @property
    def is_completion(self) -> bool:
        return self.has("completion")

    @property
    def heuristic(self) -> bool:
        """True when capabilities were guessed from the name (``/api/show`` unavailable)."""
        return self.capabilities_source == "name-heuristic"


class CatalogueWarning(UserWarning):
    """Discovery had to guess (``/api/show`` unavailable): capabilities may be wrong."""


class _Client(Protocol):
    def tags(self) -> list[dict]: ...

    def show(self, model: str, verbose: bool = False) -> dict: ...


def entry_from(
    tag: Mapping[str, Any], show: Mapping[str, Any] | None, variant: str | None = None
) -> ModelEntry:
    """Build a ModelEntry from one ``/api/tags`` item and its ``/api/show`` answer (or None)."""
    name = str(tag.get("name") or tag.get("model") or "")
    naming = strategy_a(name)
    if show is not None and show.get("capabilities"):
        caps, source = tuple(show["capabilities"]), "show"
    elif show is not None and show.get("model_info"):
        caps, source = capabilities_from_model_info(show), "show-model-info"
    elif tag.get("capabilities"):
        caps, source = tuple(tag["capabilities"]), "tags"
    else:
        caps, source = heuristic_capabilities(name), "name-heuristic"
    details = dict((show or {}).get("details") or tag.get("details") or {})
    ctx = context_length_from_show(show) if show else None
    if ctx is None and isinstance(tag.get("context_length"), int):
        ctx = int(tag["context_length"])
    size = tag.get("size")
    return ModelEntry(
        name=name,
        variant=variant or naming.variant,
        family=naming.family,
        quant=naming.quant,
        capabilities=caps,
        capabilities_source=source,
        details=details,
        size=int(size) if isinstance(size, (int, float)) else None,
        digest=tag.get("digest"),
        modified_at=tag.get("modified_at"),
        context_length=ctx,
    )


def discover(client: _Client, *, warn: bool = True) -> list[ModelEntry]:
    """The server's models in ``/api/tags`` order, capabilities from ``/api/show``.

    When ``/api/show`` fails for a model (or reports nothing usable) the capabilities come
    from ``/api/tags`` (v0.30+) or, last, from the name heuristic; each entry says which in
    ``capabilities_source`` and a ``CatalogueWarning`` names the guessed models.
    """
    from pytest_ollama_regress.dialects.ollama_client import OllamaError

    tags = client.tags()
    names = [str(t.get("name") or t.get("model") or "") for t in tags]
    variants = assign_variant_names(names)
    entries: list[ModelEntry] = []
    for tag, name in zip(tags, names, strict=True):
        try:
            show: Mapping[str, Any] | None = client.show(name)
        except OllamaError as exc:
            if exc.status == 0:  # the server went away: not a missing /api/show
                raise
            show = None
        entries.append(entry_from(tag, show, variants[name]))
    guessed = [e.name for e in entries if e.heuristic]
    if guessed and warn:
        warnings.warn(
            "capabilities guessed from model names because /api/show was unavailable: "
            + ", ".join(guessed),
            CatalogueWarning,
            stacklevel=2,
        )
    return entries


def find_model(entries: Sequence[ModelEntry], wanted: str) -> ModelEntry | None:
    """The entry named ``wanted``: served name, ``name`` = ``name:latest``, or variant name."""
    low = wanted.strip().lower()
    for e in entries:
        if e.name.lower() == low or e.variant.lower() == low:
            return e
    try:
        canon = canonical_name(wanted)
    except ValueError:
        return None
    for e in entries:
        try:
            if canonical_name(e.name) == canon:
                return e
        except ValueError:
            continue
    return None


def first_with(entries: Sequence[ModelEntry], capability: str) -> ModelEntry | None:
    """The first entry (discovery order) that has ``capability``."""
    return next((e for e in entries if e.has(capability)), None)
