"""What a given Ollama version promises, as named rules.

Every check of the built-in suite asks an :class:`Expectations` object what the target's
version does (``/api/version``) and never asserts a behaviour that version does not promise.
Each behaviour is a :class:`Rule` with a short name; failure messages end with the rule that
was applied, e.g. ``image_count 0 != 2: images were dropped before rendering (rule:
debug-render image_count, >= 0.11.5)``.

Facts come from the Ollama source history (reference notes, sections 3-7 and 13). A source
build (``0.0.0``) is treated as the newest version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .versions import Version, parse_version

NEWEST = Version(10**6, 0, 0)
"""What a source build (``0.0.0``) is compared as: newer than every release."""


@dataclass(frozen=True)
class Rule:
    """One version-gated promise of the server; ``since``/``until`` bound it (until exclusive)."""

    name: str
    text: str
    since: str | None = None
    until: str | None = None

    @property
    def span(self) -> str:
        """The versions the rule covers, as printed in failure messages."""
        if self.since and self.until:
            return f"{self.since} - {self.until} excluded"
        if self.since:
            return f">= {self.since}"
        if self.until:
            return f"< {self.until}"
        return "all versions"

    def applies(self, version: Version | str) -> bool:
        """Whether ``version`` is covered by this rule."""
        v = effective_version(version)
        if self.since and v < parse_version(self.since):
            return False
        return not (self.until and v >= parse_version(self.until))

    def fail(self, detail: str) -> str:
        """A failure message: the regression, then the rule that was applied."""
        return f"{detail} (rule: {self.name}, {self.span})"

    def skip_reason(self, version: Version | str) -> str:
        """Why a check relying on this rule does not run against ``version``."""
        return f"server {version} does not promise it (rule: {self.name}, {self.span})"


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.name: rule for rule in rules}


RULES: dict[str, Rule] = _rules(
    Rule("debug-render", "`_debug_render_only` returns `_debug_info` without inference",
         since="0.11.5-rc3"),
    Rule("debug-render shape minimal", "debug response is {model, created_at, _debug_info}",
         since="0.11.5-rc3", until="0.12.0"),
    Rule("debug-render shape full", "debug response is a normal response with done:false",
         since="0.12.0"),
    Rule("debug-render image_count", "`image_count` equals the images kept after truncation",
         since="0.11.5"),
    Rule("chat image tags", "each image adds `[img-N]` before its message content, N running "
         "over all kept messages", since="0.11.5"),
    Rule("literal [img] placeholder", "each literal `[img]` is replaced in order by `[img-N]`",
         since="0.11.5"),
    Rule("generate image tags separate", "each generate image is its own message: "
         "`[img-0]\\n\\n<prompt>`", since="0.11.5", until="0.12.6"),
    Rule("generate image tags attached", "generate images are attached to the prompt: "
         "`[img-0]<prompt>`", since="0.12.6"),
    Rule("image base64", "images must be standard base64: anything else is a 400"),
    Rule("image data-uri", "a `data:` URI prefix is not base64: 400"),
    Rule("vision answer", "a vision model's answer describes the picture it was given"),
    Rule("non-vision images ignored", "images sent to a model without vision are accepted, "
         "tagged, and not seen", until="0.30.0"),
    Rule("non-vision images", "images sent to a model without vision are not seen",
         since="0.30.0"),
    Rule("num_ctx floor", "a requested num_ctx below 4 becomes 4"),
    Rule("vision num_ctx floor", "vision models run with num_ctx >= 2048", since="0.11.5"),
    Rule("default num_ctx 4096", "without num_ctx the context is 4096 (or "
         "OLLAMA_CONTEXT_LENGTH)", since="0.6.7", until="0.15.5"),
    Rule("default num_ctx vram tier", "without num_ctx the context is a VRAM tier (4096, "
         "32768, 262144) unless OLLAMA_CONTEXT_LENGTH is set", since="0.15.5"),
    Rule("ps context_length per slot", "/api/ps context_length is the per-request num_ctx, "
         "never scaled by OLLAMA_NUM_PARALLEL", since="0.10.0"),
    Rule("ps context_length requested", "/api/ps shows num_ctx after the floors, before the "
         "clamp to the model's trained context", since="0.10.0", until="0.15.5"),
    Rule("ps context_length clamped", "/api/ps shows the actual context, clamped to the "
         "model's trained context", since="0.15.5"),
    Rule("dynamic num_ctx", "num_ctx = max(4096, ceil(length*2/1024)*1024) capped at the "
         "model maximum (the seeds' fork)"),
    Rule("no reload same request", "the same request twice reuses the loaded runner"),
    Rule("no reload sampling change", "sampling options (temperature, top_k, seed...) do "
         "not reload the runner"),
    Rule("reload on num_ctx change", "a different effective num_ctx reloads the runner"),
    Rule("truncation drops oldest messages", "over-long chat history loses whole oldest "
         "messages; every system message and the last message are kept"),
    Rule("prompt_eval_count <= num_ctx", "the prompt given to the model fits the context"),
    Rule("dynamic num_ctx keeps history", "under the dynamic policy the context grows with "
         "the messages, so nothing is dropped below the model maximum"),
    Rule("truncate:false rejected", "`truncate:false` with an over-long prompt is a 400 "
         "context error", since="0.12.6"),
    Rule("chat unknown model quoted", 'chat with an unknown model: 404 `model "x" not found, '
         'try pulling it first`', until="0.12.0"),
    Rule("chat unknown model", "chat with an unknown model: 404 `model 'x' not found`",
         since="0.12.0"),
    Rule("first-line error status", "a runner error before the first token is a real HTTP "
         "error, not a 200 NDJSON line", since="0.12.6"),
    Rule("ttft first-token overhead", "the first token arrives right after the server's "
         "load and prefill (load_duration + prompt_eval_duration)"),
    Rule("ttft gate", "the candidate's median TTFT is at most the allowed regression above "
         "the baseline's median"),
    Rule("debug-render snapshot", "an image renders the recorded conversations as it did "
         "when its snapshot was recorded"),
    Rule("debug-render baseline", "a candidate renders the recorded conversations as the "
         "baseline image does (documented version differences aside)"),
)

TTFT_OVERHEAD_SLACK_NS = 100_000_000
"""Client-observed first-token time allowed beyond load + prefill + two decode steps."""

_CONTEXT_ERROR_WORDS = ("exceed", "too large", "longer", "too long")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "ten", "eleven", "twelve")


_VERSION_PREFIX = re.compile(r"v?\d+\.\d+\.\d+(?:-rc\d+)?")


def effective_version(version: Version | str) -> Version:
    """Parse ``version``; a source build (``0.0.0``) counts as newer than any release.

    A fork's decorated version (``0.9.3-dynamic``) is read by its leading ``X.Y.Z``; a
    string without one is taken as the newest (a build from source).
    """
    if isinstance(version, str):
        match = _VERSION_PREFIX.match(version.strip())
        if match is None:
            return NEWEST
        version = parse_version(match.group(0))
    return NEWEST if version.is_source_build else version


def rule(name: str) -> Rule:
    """The rule called ``name`` (``KeyError`` lists the known names)."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown rule {name!r}; known: {', '.join(sorted(RULES))}") from None


def number_word(n: int) -> str:
    """English word for 0-12 (the counts the suite's pictures use), else the digits."""
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def is_context_limit_error(message: str) -> bool:
    """Ollama's own integration-test test for a context-limit error message."""
    text = message.lower()
    return "context" in text and any(word in text for word in _CONTEXT_ERROR_WORDS)


def explain_image_count(actual: int, expected: int) -> str:
    """Name the regression behind a wrong image count."""
    if actual == 0 and expected > 0:
        return "images were dropped before rendering"
    if actual < expected:
        lost = expected - actual
        return f"{lost} of {expected} images were lost (the last image is missing)"
    return f"{actual - expected} images counted that were not sent"


def image_tags(count: int, start: int = 0) -> list[str]:
    """The tags ``[img-N]`` for ``count`` images numbered from ``start``."""
    return [f"[img-{n}]" for n in range(start, start + count)]


_TAG_RE = re.compile(r"\[img-(\d+)\]")


def found_image_tags(text: str) -> list[str]:
    """The ``[img-N]`` tags in ``text``, in order."""
    return [m.group(0) for m in _TAG_RE.finditer(text)]


@dataclass(frozen=True)
class Expectations:
    """What the server version under test promises; see :data:`RULES`."""

    version: Version
    server_version: str

    @classmethod
    def for_version(cls, server_version: str) -> Expectations:
        """Expectations for a version string as ``/api/version`` reports it."""
        return cls(effective_version(server_version), server_version)

    def promises(self, name: str) -> bool:
        """Whether the rule ``name`` covers this version."""
        return rule(name).applies(self.version)

    def skip_reason(self, name: str) -> str:
        """Skip reason for a check relying on rule ``name``."""
        return rule(name).skip_reason(self.server_version)

    def _either(self, promised: str, otherwise: str) -> Rule:
        """The rule ``promised`` when this version promises it, else ``otherwise``."""
        return rule(promised if self.promises(promised) else otherwise)

    # -- debug render -------------------------------------------------------------------
    @property
    def debug_render(self) -> bool:
        """``_debug_render_only`` exists (v0.11.5-rc3 and later)."""
        return self.promises("debug-render")

    @property
    def debug_shape(self) -> Literal["minimal", "full"] | None:
        """Shape of the debug response, ``None`` before the debug render existed."""
        if self.promises("debug-render shape full"):
            return "full"
        if self.promises("debug-render shape minimal"):
            return "minimal"
        return None

    @property
    def debug_shape_rule(self) -> Rule:
        """The shape rule that applies to this version."""
        return self._either("debug-render shape full", "debug-render shape minimal")

    # -- images -------------------------------------------------------------------------
    @property
    def generate_image_rule(self) -> Rule:
        """How ``/api/generate`` places image tags for this version."""
        return self._either("generate image tags attached", "generate image tags separate")

    @property
    def generate_image_separator(self) -> str:
        """What follows each ``[img-N]`` of a generate render: ``\\n\\n`` before 0.12.6."""
        return "" if self.promises("generate image tags attached") else "\n\n"

    def generate_render_prefix(self, images: int) -> str:
        """The image part of a generate render for ``images`` images, before the prompt."""
        sep = self.generate_image_separator
        return "".join(f"{tag}{sep}" for tag in image_tags(images))

    def chat_content_render(self, content: str, images: int, start: int = 0) -> str:
        """How a chat message's content appears once its images are tagged."""
        tags = image_tags(images, start)
        if "[img]" in content:
            for tag in tags:
                content = content.replace("[img]", tag, 1)
            return content
        return "".join(tags) + content

    @property
    def non_vision_images_rule(self) -> Rule:
        """What this version does with images sent to a model without vision."""
        return self._either("non-vision images ignored", "non-vision images")

    @property
    def non_vision_images_accepted(self) -> bool:
        """Go-runner servers (< 0.30.0) accept such images and tag them; later is undecided."""
        return self.promises("non-vision images ignored")

    def canonical_render(self, text: str, endpoint: Literal["chat", "generate"]) -> str:
        """A render with the documented version differences removed, for cross-version diffs.

        Generate renders before 0.12.6 separate each image tag from the prompt by a blank
        line; the canonical form is the attached one (``[img-0]<prompt>``).
        """
        if endpoint == "generate" and self.generate_image_separator:
            text = re.sub(r"(\[img-\d+\])\n\n", r"\1", text)
        return text

    # -- context length -----------------------------------------------------------------
    @property
    def truncate_field(self) -> bool:
        """``truncate``/``shift`` request fields exist (v0.12.6+)."""
        return self.promises("truncate:false rejected")

    @property
    def ps_context_rule(self) -> Rule:
        """What ``/api/ps`` ``context_length`` reports for this version."""
        return self._either("ps context_length clamped", "ps context_length requested")

    @property
    def ps_context_clamped(self) -> bool:
        """``/api/ps`` reports the clamped (actual) context (v0.15.5+)."""
        return self.promises("ps context_length clamped")

    @property
    def vision_floor(self) -> int:
        """Smallest num_ctx a vision model runs with (2048 from v0.11.5, else 4)."""
        return 2048 if self.promises("vision num_ctx floor") else 4

    @property
    def vram_tier_default(self) -> bool:
        """The default num_ctx is a VRAM tier (v0.15.5+) instead of 4096."""
        return self.promises("default num_ctx vram tier")

    # -- errors -------------------------------------------------------------------------
    def chat_unknown_model_message(self, model: str) -> str:
        """The 404 message of ``/api/chat`` for a model that is not installed."""
        if self.promises("chat unknown model"):
            return f"model '{model}' not found"
        return f'model "{model}" not found, try pulling it first'

    @property
    def first_line_error_is_http_error(self) -> bool:
        """A runner error before the first token is a real HTTP status (v0.12.6+)."""
        return self.promises("first-line error status")
