"""Which behaviour the simulated Ollama version has (reference sections 1-7, 13).

Every version gate of the simulator lives here, so "what changed when" reads as one table.
Gates compare the release number (``0.12.6-rc0`` already carries the 0.12.6 changes), except
the debug render, which first appeared in ``0.11.5-rc3``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_ollama_regress.versions import Version, parse_version

DEFAULT_VERSION = "0.12.6"
OLDEST = Version(0, 10, 0)
NEWEST_MINOR = (0, 33)


def check_version(text: str) -> str:
    """Return the version string if the simulator supports it; else raise a one-line ValueError."""
    try:
        version = parse_version(text)
    except ValueError:
        raise ValueError(
            f"unknown simulator version {text!r}: use X.Y.Z or X.Y.Z-rcN between 0.10.0 and "
            "0.33.x, or 0.0.0 for a source build"
        ) from None
    if version.is_source_build:
        return str(version)
    base = (version.major, version.minor, version.patch)
    if base < (0, 10, 0) or (version.major, version.minor) > NEWEST_MINOR:
        raise ValueError(
            f"unsupported simulator version {text!r}: the simulator covers 0.10.0 to 0.33.x "
            "(or 0.0.0 for a source build)"
        )
    return str(version)


@dataclass(frozen=True)
class Features:
    """Version-gated behaviour of one simulated server."""

    version: str

    @property
    def _v(self) -> tuple[int, int, int]:
        parsed = parse_version(self.version)
        if parsed.is_source_build:
            return (0, 33, 999)
        return (parsed.major, parsed.minor, parsed.patch)

    def at_least(self, text: str) -> bool:
        """True when the simulated release is ``text`` or newer (release candidates included)."""
        want = parse_version(text)
        return self._v >= (want.major, want.minor, want.patch)

    @property
    def debug_render(self) -> bool:
        parsed = parse_version(self.version)
        if parsed.is_source_build:
            return True
        return parsed >= Version(0, 11, 5, 3)

    @property
    def debug_render_full_shape(self) -> bool:
        """v0.12.0+: the normal response with ``done:false``; before: a minimal object."""
        return self.at_least("0.12.0")

    @property
    def truncate_field(self) -> bool:
        """v0.12.6+: ``truncate``/``shift`` request fields, runner status passthrough."""
        return self.at_least("0.12.6")

    @property
    def generate_image_inline(self) -> bool:
        """v0.12.6+: generate renders ``[img-0]<prompt>`` instead of ``[img-0]\\n\\n<prompt>``."""
        return self.at_least("0.12.6")

    @property
    def vision_ctx_floor(self) -> bool:
        return self.at_least("0.11.5")

    @property
    def ps_context_length(self) -> bool:
        return self.at_least("0.10.0")

    @property
    def ps_reports_clamped(self) -> bool:
        return self.at_least("0.15.5")

    @property
    def ps_divides_by_parallel(self) -> bool:
        """v0.10.0-v0.11.4: the scheduler multiplied NumCtx by parallel and ps divides back."""
        return not self.at_least("0.11.5")

    @property
    def vram_default_ctx(self) -> bool:
        return self.at_least("0.15.5")

    @property
    def chat_not_found_quoted(self) -> bool:
        """v0.12.0+: chat's unknown model is ``model 'x' not found``."""
        return self.at_least("0.12.0")

    @property
    def think_default_on(self) -> bool:
        return self.at_least("0.12.4")

    @property
    def think_quoted_error(self) -> bool:
        """v0.12.4+: ``"x" does not support thinking`` (else the full name)."""
        return self.at_least("0.12.4")

    @property
    def think_levels_any_model(self) -> bool:
        """v0.11.x accepts "low"/"medium"/"high" only for harmony models."""
        return self.at_least("0.12.0")

    @property
    def embed_dimensions(self) -> bool:
        return self.at_least("0.11.11")

    @property
    def tags_capabilities(self) -> bool:
        return self.at_least("0.30.0")

    @property
    def openai_debug_render(self) -> bool:
        return self.at_least("0.12.0")

    @property
    def openai_head_stream(self) -> bool:
        """HEAD-style OpenAI streaming (role only first, separate finish chunk)."""
        return self.at_least("0.30.0")

    @property
    def logprobs(self) -> bool:
        """v0.12.11+: ``logprobs``/``top_logprobs`` request fields (validated)."""
        return self.at_least("0.12.11")

    @property
    def think_max_level(self) -> bool:
        return self.at_least("0.30.0")

    @property
    def delete_model_required(self) -> bool:
        return self.at_least("0.30.0")

    @property
    def context_error(self) -> str:
        return "the input length exceeds the context length"

    @property
    def embed_context_error(self) -> str:
        if self.at_least("0.12.6"):
            return "the input length exceeds the context length"
        return "input length exceeds maximum context length"

    def default_num_ctx(self, vram_gib: float) -> int:
        """Base default context: 4096 up to 0.15.4, then the VRAM tier."""
        if not self.vram_default_ctx:
            return 4096
        if vram_gib >= 47:
            return 262144
        if vram_gib >= 23:
            return 32768
        return 4096
