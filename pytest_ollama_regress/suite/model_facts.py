"""What a model's ``/api/show`` says that changes what a healthy server does (reference §16).

The suite reads these facts once per target and model and lets them decide the expectation:
built-in renderer models tag images differently, template-less models may be chatted natively
(v0.30+), some text-only architectures reject images instead of ignoring them, mllama takes one
image, gpt-oss and qwen3vl have an 8192 context floor (v0.11.0/v0.12.7 - v0.15.4, not in
low-VRAM mode), a Modelfile ``PARAMETER num_ctx`` is the default context, legacy templates
without ``.Response`` never render assistant turns, and gpt-oss thinks whatever it is told.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_ollama_regress.suite.expectations import ReleaseRules

IMAGE_ERROR_ARCHITECTURES = frozenset({"gemma3", "mistral3", "llama4", "qwen25vl"})
"""Text-only models of these architectures fail a request with images before v0.30 (§16.3)."""
IMAGE_ERROR_TEXT = "missing data required for image input"
SINGLE_IMAGE_ARCHITECTURES = frozenset({"mllama"})
CONTEXT_FLOOR_8192 = 8192
_FLOOR_RULES = {"gptoss": "gpt-oss num_ctx floor", "gpt-oss": "gpt-oss num_ctx floor",
                "qwen3vl": "qwen3vl num_ctx floor", "qwen3vlmoe": "qwen3vl num_ctx floor"}
ALWAYS_THINKING_FAMILIES = frozenset({"gptoss", "gpt-oss"})
_NUM_CTX_PARAM = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)
_MODELFILE_LINE = "^{}[ \t]+(\\S+)"
PROMPT_ONLY_TEMPLATES = frozenset({"", "{{ .Prompt }}"})
"""What ``/api/show`` gives as ``template`` for a model without a Go TEMPLATE of its own."""


def _modelfile_value(show: Mapping[str, Any], keyword: str) -> str:
    """``RENDERER qwen3-vl-thinking`` -> ``qwen3-vl-thinking``: ``/api/show`` never fills its
    ``renderer``/``parser`` fields; they appear only as ``modelfile`` lines (checked in
    Ollama's source, v0.12.0 - v0.33.0-rc2)."""
    direct = show.get(keyword.lower())
    if direct:
        return str(direct)
    modelfile = show.get("modelfile")
    if not isinstance(modelfile, str):
        return ""
    match = re.search(_MODELFILE_LINE.format(keyword), modelfile, re.MULTILINE)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class ModelFacts:
    """The parts of ``/api/show`` that decide what a healthy server does with a model."""

    name: str
    architecture: str = ""
    families: tuple[str, ...] = ()
    renderer: str = ""
    parser: str = ""
    template: str = ""
    capabilities: tuple[str, ...] = ()
    context_length: int | None = None
    num_ctx_parameter: int | None = None
    parameter_count: int | None = None

    @classmethod
    def from_show(cls, name: str, show: Mapping[str, Any]) -> ModelFacts:
        """Read the facts from a ``/api/show`` response (missing fields are empty)."""
        info = show.get("model_info") or {}
        details = show.get("details") or {}
        arch = str(info.get("general.architecture") or details.get("family") or "")
        ctx = info.get(f"{arch}.context_length")
        params = show.get("parameters") or ""
        num_ctx = _NUM_CTX_PARAM.search(params) if isinstance(params, str) else None
        count = info.get("general.parameter_count")
        families = details.get("families") or ([details["family"]] if details.get("family")
                                                else [])
        return cls(
            name=name, architecture=arch, families=tuple(str(f) for f in families),
            renderer=_modelfile_value(show, "RENDERER"), parser=_modelfile_value(show, "PARSER"),
            template=str(show.get("template") or ""),
            capabilities=tuple(str(c) for c in show.get("capabilities") or ()),
            context_length=int(ctx) if ctx else None,
            num_ctx_parameter=int(num_ctx.group(1)) if num_ctx else None,
            parameter_count=int(count) if isinstance(count, int | float) else None,
        )

    @property
    def kinds(self) -> frozenset[str]:
        """Architecture and families, lower-case: what the family rules match."""
        return frozenset(k.lower() for k in (self.architecture, *self.families) if k)

    @property
    def vision(self) -> bool:
        """The model declares the vision capability."""
        return "vision" in self.capabilities

    @property
    def has_renderer(self) -> bool:
        """A built-in Go renderer formats its prompts (``renderer`` in ``/api/show``)."""
        return bool(self.renderer)

    @property
    def may_chat_natively(self) -> bool:
        """No Go TEMPLATE of its own (``/api/show`` then says ``{{ .Prompt }}``): from v0.30
        its chat may go through the native Jinja path (``OLLAMA_GO_TEMPLATE=0`` sends Go
        template models there too, which a test cannot see: the render shows it)."""
        return self.template.strip() in PROMPT_ONLY_TEMPLATES

    @property
    def renders_assistant_turns(self) -> bool:
        """A legacy template without ``.Response`` or ``.Messages`` (llava's, or the bare
        ``{{ .Prompt }}``) never renders replies; a renderer model does."""
        if self.has_renderer:
            return True
        return ".Messages" in self.template or ".Response" in self.template

    @property
    def renders_system(self) -> bool:
        """A legacy template without ``.System`` or ``.Messages`` (the bare ``{{ .Prompt }}``)
        never renders system messages."""
        if self.has_renderer:
            return True
        return ".Messages" in self.template or ".System" in self.template

    @property
    def single_image(self) -> bool:
        """mllama takes at most one image per request (§16.3)."""
        return bool(self.kinds & SINGLE_IMAGE_ARCHITECTURES)

    @property
    def always_thinks(self) -> bool:
        """gpt-oss ignores ``think`` (§16.5)."""
        return bool(self.kinds & ALWAYS_THINKING_FAMILIES)

    def runs_on(self, release: ReleaseRules) -> bool:
        """Whether ``release`` can load the model at all (mllama: not from v0.30)."""
        return not self.single_image or release.promises("mllama runs")

    def rejects_images(self, release: ReleaseRules) -> bool:
        """A text-only gemma3/mistral3/llama4/qwen25vl model errors on images before v0.30."""
        return (not self.vision and bool(self.kinds & IMAGE_ERROR_ARCHITECTURES)
                and release.promises("text-model image error"))

    def context_floors(self, release: ReleaseRules) -> tuple[int, ...]:
        """The 8192 floor of this model at ``release``: ``(8192, 0)`` when it applies (0:
        low-VRAM mode, where it does not), ``(0,)`` otherwise."""
        rules = {_FLOOR_RULES[k] for k in self.kinds if k in _FLOOR_RULES}
        if any(release.promises(name) for name in rules):
            return (CONTEXT_FLOOR_8192, 0)
        return (0,)

    def image_tag_space(self, release: ReleaseRules) -> bool:
        """Renderer models put a space after the tags from v0.23.4."""
        return self.has_renderer and release.promises("renderer image tag space")
