"""What a model does on the simulated server: its prompt path and its image rules (section 16).

The chat path follows ``chatModeForModel`` (v0.30.0+): a model with a built-in renderer or
parser, or gpt-oss (harmony), or a Go ``TEMPLATE`` in use is rendered by Ollama; any other
model chats natively through llama-server's Jinja template. ``OLLAMA_GO_TEMPLATE=0`` turns
Go templates off. Before v0.30.0 every model is rendered by Ollama, a model without a
``TEMPLATE`` with the default ``{{ .Prompt }}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_ollama_regress.sim.catalogue import ModelSpec
from pytest_ollama_regress.sim.errors import ApiError, RunnerError
from pytest_ollama_regress.sim.features import IMAGE_REJECTING_ARCHS, Features
from pytest_ollama_regress.sim.formats import DEFAULT_TEMPLATE

ONE_IMAGE_ONLY = "this model only supports one image while more than one image requested"
NO_VISION_DATA = ("Failed to create new sequence: failed to process inputs: this model is "
                  "missing data required for image input")
_FALSE = ("0", "f", "false", "no", "off")


class _Message(Protocol):
    images: list[bytes]


@dataclass(frozen=True)
class Mode:
    """How a request's prompt is made: the format, the Go template it runs, the image style."""

    kind: str  # a ``formats.FORMATS`` key, or ``legacy`` (a Go template without .Messages)
    template: str = ""  # the Go template of a ``legacy`` format
    style: str = "go"  # an ``imagetags.STYLES`` entry
    marker: str = ""  # native chat: llama-server's media marker

    @property
    def native(self) -> bool:
        return self.style == "native"


def go_templates_enabled(env: Mapping[str, str]) -> bool:
    """``envconfig.GoTemplate(true)``: ``OLLAMA_GO_TEMPLATE`` unset or true."""
    raw = env.get("OLLAMA_GO_TEMPLATE", "").strip().strip("\"'").lower()
    return raw not in _FALSE


def _go_mode(spec: ModelSpec) -> Mode:
    if not spec.template:
        return Mode("legacy", DEFAULT_TEMPLATE)
    return Mode(spec.template_kind, spec.template)


def chat_mode(spec: ModelSpec, features: Features, env: Mapping[str, str],
              marker: str = "") -> Mode:
    """The chat path of ``spec`` on this server."""
    if spec.renderer:
        if not features.renderers:
            return _go_mode(spec)
        return Mode(spec.template_kind, style=features.renderer_image_tags)
    if features.native_chat and not spec.harmony and not spec.is_embedding and (
            not spec.template or not go_templates_enabled(env)):
        return Mode(spec.template_kind, spec.template, "native", marker)
    return _go_mode(spec)


def generate_mode(spec: ModelSpec, features: Features, env: Mapping[str, str]) -> Mode:
    """Generate renders like chat, but a native model keeps its ``[img-N]`` tags visible."""
    mode = chat_mode(spec, features, env)
    return Mode(mode.kind, mode.template, "go") if mode.native else mode


def check_runnable(spec: ModelSpec, features: Features) -> None:
    """Raise the load failure of a model this server cannot run (mllama from v0.30.0)."""
    if spec.arch == "mllama" and not features.mllama_runs:
        raise ApiError(500, "llama runner process has terminated: error loading model: "
                            "unknown model architecture: 'mllama'")


def check_chat_images(spec: ModelSpec, kept: Sequence[_Message]) -> None:
    """mllama takes one image per message: more is a 500 from ``chatPrompt``."""
    if "mllama" in spec.families and any(len(m.images) > 1 for m in kept):
        raise ApiError(500, ONE_IMAGE_ONLY)


def check_generate_images(spec: ModelSpec, count: int) -> None:
    """mllama takes one image: more is a 400 from ``GenerateHandler`` (after the load)."""
    if "mllama" in spec.families and count > 1:
        raise ApiError(400, ONE_IMAGE_ONLY)


def runner_image_error(spec: ModelSpec, features: Features, count: int) -> RunnerError | None:
    """A text-only gemma3/mistral3/llama4/qwen25vl model before v0.30.0 fails on images
    (``EncodeMultimodal``: ``ErrNoVisionModel``); other text models ignore them."""
    if (count and not spec.is_vision and spec.arch in IMAGE_REJECTING_ARCHS
            and features.text_models_reject_images):
        return RunnerError(NO_VISION_DATA)
    return None
