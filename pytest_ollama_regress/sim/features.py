"""Which behaviour the simulated Ollama version has (reference sections 1-7, 13, 16).

Every version gate of the simulator lives here, so "what changed when" reads as one table.
Gates compare the release number (``0.12.6-rc0`` already carries the 0.12.6 changes), except
where a change landed in a later release candidate: the debug render (``0.11.5-rc3``), the
low-VRAM exemption from gpt-oss's context floor (``0.11.4``, not in ``0.11.4-rc0``) and
renderer-placed image tags (``0.17.1-rc1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_ollama_regress.versions import Version, parse_version

DEFAULT_VERSION = "0.12.6"
LOW_VRAM_GIB = 20.0  # ``lowVRAMThreshold`` (routes.go, v0.11.4-v0.15.4)
CTX_FLOOR = 8192
_FLOOR_FAMILIES: dict[str, str] = {  # family -> first release with the 8192 floor
    "gptoss": "0.11.0", "gpt-oss": "0.11.0", "qwen3vl": "0.12.7", "qwen3vlmoe": "0.12.7",
}
_SINGLE_SLOT_FAMILIES: dict[str, str] = {  # family -> first release forcing parallel 1
    "mllama": "0.10.0", "qwen3vl": "0.12.7", "qwen3vlmoe": "0.12.7",
}
#: text-only models of these architectures fail on images (``model.ErrNoVisionModel``)
IMAGE_REJECTING_ARCHS = frozenset({"gemma3", "mistral3", "llama4", "qwen25vl"})
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

    def _since_exact(self, version: Version) -> bool:
        """True from ``version`` exactly (release candidates ordered before their release)."""
        parsed = parse_version(self.version)
        return parsed.is_source_build or parsed >= version

    @property
    def debug_render(self) -> bool:
        return self._since_exact(Version(0, 11, 5, 3))

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

    # -- model-specific behaviour (section 16) ------------------------------------------
    @property
    def renderers(self) -> bool:
        """v0.12.0+: built-in renderers/parsers (``RENDERER``/``PARSER`` in the Modelfile)."""
        return self.at_least("0.12.0")

    @property
    def renderer_image_tags(self) -> str:
        """How a built-in renderer's model gets its image tags.

        ``go``: no renderers yet, the model renders with its Go template; ``doubled``
        (v0.12.0-v0.17.1-rc0): the server tags the content as for Go templates, then the
        renderer puts a literal ``[img]`` per image in front; ``prefix`` (v0.17.1-rc1-v0.23.3):
        only the renderer tags, ``[img-N]`` in front, a literal ``[img]`` is not replaced;
        ``spaced`` (v0.23.4+, ``image_tags.go``): ``[img]`` replaced in order, the other tags in
        front followed by a space when the content starts with a non-space.
        """
        if not self.renderers:
            return "go"
        if not self._since_exact(Version(0, 17, 1, 1)):
            return "doubled"
        if not self.at_least("0.23.4"):
            return "prefix"
        return "spaced"

    @property
    def native_chat(self) -> bool:
        """v0.30.0+: models without a Go template (or with ``OLLAMA_GO_TEMPLATE=0``) chat
        through llama-server's Jinja template (``handleNativeChat``)."""
        return self.at_least("0.30.0")

    @property
    def text_models_reject_images(self) -> bool:
        """Before v0.30.0 text-only models of ``IMAGE_REJECTING_ARCHS`` fail on images."""
        return not self.at_least("0.30.0")

    @property
    def mllama_runs(self) -> bool:
        """From v0.30.0 (llama-server only) mllama models cannot be loaded."""
        return not self.at_least("0.30.0")

    def ctx_floor(self, families: tuple[str, ...], low_vram: bool) -> int:
        """The model-family context floor of ``scheduleRunner`` (0 = none): 8192 for gpt-oss
        from v0.11.0 and qwen3vl from v0.12.7, through v0.15.4, unless the server is in
        low-VRAM mode (from v0.11.4)."""
        if self.at_least("0.15.5"):
            return 0
        if low_vram and self._since_exact(Version(0, 11, 4)):
            return 0
        floored = any(self.at_least(_FLOOR_FAMILIES[f]) for f in families
                      if f in _FLOOR_FAMILIES)
        return CTX_FLOOR if floored else 0

    @property
    def low_vram_mode(self) -> bool:
        """v0.11.4-v0.15.4: the server logs and uses a low-VRAM mode below 20 GiB."""
        return self._since_exact(Version(0, 11, 4)) and not self.at_least("0.15.5")

    def single_slot(self, family: str) -> bool:
        """Families whose runner is forced to one parallel slot (encoder cache)."""
        first = _SINGLE_SLOT_FAMILIES.get(family)
        return first is not None and self.at_least(first)

    def default_num_ctx(self, vram_gib: float) -> int:
        """Base default context: 4096 up to 0.15.4, then the VRAM tier."""
        if not self.vram_default_ctx:
            return 4096
        if vram_gib >= 47:
            return 262144
        if vram_gib >= 23:
            return 32768
        return 4096
