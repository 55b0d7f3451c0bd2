"""The simulator's models: installed catalogue and pullable library models.

Sizes, digests and metadata look like what ``/api/tags`` and ``/api/show`` return for the real
models. Digests are derived from the manifest bytes, as the real server does. The models of
section 16 (renderer, harmony, native-Jinja, text-only gemma3, mllama, a Modelfile
``num_ctx``) are not installed by default: ``OLLAMA_SIM_MODELS`` (see ``store.py``) installs
them, or ``/api/pull`` does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

REGISTRY = "registry.ollama.ai"
NAMESPACE = "library"

MEDIA_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_CONFIG = "application/vnd.docker.container.image.v1+json"
MEDIA_MODEL = "application/vnd.ollama.image.model"
MEDIA_PROJECTOR = "application/vnd.ollama.image.projector"
MEDIA_TEMPLATE = "application/vnd.ollama.image.template"
MEDIA_LICENSE = "application/vnd.ollama.image.license"
MEDIA_PARAMS = "application/vnd.ollama.image.params"
MEDIA_SYSTEM = "application/vnd.ollama.image.system"


@dataclass(frozen=True)
class Layer:
    media_type: str
    size: int
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class ModelSpec:
    """One model as the registry and the runner see it."""

    name: str  # "llama3.2:3b"
    arch: str
    families: tuple[str, ...]
    context_length: int
    quantization: str
    parameter_size: str
    parameter_count: int
    weights_size: int
    capabilities: tuple[str, ...]
    embedding_length: int
    block_count: int
    head_count: int
    head_count_kv: int
    template: str  # the Go TEMPLATE layer; "" = none (show gives ``{{ .Prompt }}``)
    template_kind: str  # a ``formats.FORMATS`` key, or "legacy" (runs ``template``)
    stop: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    system: str = ""
    license: str = ""
    projector_size: int = 0
    image_tokens: int = 0  # tokens one image adds to prompt_eval_count
    vision_block_count: int = 0
    installed: bool = True
    modified_unix: int = 0  # default manifest mtime (s)
    extra_info: tuple[tuple[str, object], ...] = field(default=())
    renderer: str = ""  # built-in renderer (Modelfile ``RENDERER``; v0.12.0+)
    parser: str = ""  # built-in parser (Modelfile ``PARSER``; v0.12.0+)

    @property
    def family(self) -> str:
        return self.families[0] if self.families else self.arch

    @property
    def repo(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(":", 1)[1]

    @property
    def full_name(self) -> str:
        return f"{REGISTRY}/{NAMESPACE}/{self.name}"

    @property
    def is_vision(self) -> bool:
        return "vision" in self.capabilities

    @property
    def is_embedding(self) -> bool:
        return "embedding" in self.capabilities

    @property
    def harmony(self) -> bool:
        """gpt-oss: harmony format and parser; thinking cannot be switched off."""
        return self.family in ("gptoss", "gpt-oss")

    def runner_defaults(self) -> dict[str, object]:
        """Modelfile ``PARAMETER``s that are options (over the server's defaults)."""
        out: dict[str, object] = {}
        for key, value in self.parameters:
            if key != "stop":
                out[key] = _param_value(value)
        return out

    @property
    def kv_bytes_per_token(self) -> int:
        """f16 K and V for every layer: what one context token costs in the KV cache."""
        head_dim = max(self.embedding_length // max(self.head_count, 1), 1)
        return 2 * self.block_count * self.head_count_kv * head_dim * 2

    def layers(self) -> list[Layer]:
        """Manifest layers: weights, projector, template, license, params (sizes sum up)."""
        parts: list[tuple[str, bytes | int]] = [(MEDIA_MODEL, self.weights_size)]
        if self.projector_size:
            parts.append((MEDIA_PROJECTOR, self.projector_size))
        if self.template:
            parts.append((MEDIA_TEMPLATE, self.template.encode()))
        if self.system:
            parts.append((MEDIA_SYSTEM, self.system.encode()))
        if self.license:
            parts.append((MEDIA_LICENSE, self.license.encode()))
        if self.parameters:
            params = {key: _param_value(value) for key, value in self.parameters}
            parts.append((MEDIA_PARAMS, json.dumps(params).encode()))
        layers = []
        for media, payload in parts:
            if isinstance(payload, bytes):
                size = len(payload)
                digest = hashlib.sha256(payload).hexdigest()
            else:
                size = payload
                digest = hashlib.sha256(f"{self.name}/{media}/{size}".encode()).hexdigest()
            layers.append(Layer(media, size, f"sha256:{digest}"))
        return layers

    def config_layer(self) -> Layer:
        config = json.dumps(
            {
                "model_format": "gguf",
                "model_family": self.family,
                "model_families": list(self.families),
                "model_type": self.parameter_size,
                "file_type": self.quantization,
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [x.digest for x in self.layers()]},
            },
            separators=(",", ":"),
        ).encode()
        return Layer(MEDIA_CONFIG, len(config), f"sha256:{hashlib.sha256(config).hexdigest()}")

    def manifest_bytes(self) -> bytes:
        """The manifest file as the registry serves it (its sha256 is the model digest)."""
        config = self.config_layer()
        doc = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": config.media_type, "digest": config.digest,
                       "size": config.size},
            "layers": [
                {"mediaType": x.media_type, "digest": x.digest, "size": x.size}
                for x in self.layers()
            ],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.manifest_bytes()).hexdigest()

    @property
    def size(self) -> int:
        return sum(x.size for x in self.layers())

    def details(self) -> dict[str, object]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": list(self.families),
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }

    def model_info(self, verbose: bool = False) -> dict[str, object]:
        """GGUF key/values as ``/api/show`` lists them (sorted keys, arrays > 5 emptied)."""
        a = self.arch
        info: dict[str, object] = {
            "general.architecture": a,
            "general.basename": self.repo.split(".")[0],
            "general.file_type": _FILE_TYPES.get(self.quantization, 15),
            "general.parameter_count": self.parameter_count,
            "general.quantization_version": 2,
            f"{a}.attention.head_count": self.head_count,
            f"{a}.attention.head_count_kv": self.head_count_kv,
            f"{a}.block_count": self.block_count,
            f"{a}.context_length": self.context_length,
            f"{a}.embedding_length": self.embedding_length,
            "tokenizer.ggml.model": "bert" if self.is_embedding else "gpt2",
            "tokenizer.ggml.bos_token_id": 1,
            "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.tokens": _SAMPLE_TOKENS,
            "tokenizer.ggml.token_type": [1] * len(_SAMPLE_TOKENS),
        }
        if self.vision_block_count:
            info[f"{a}.vision.block_count"] = self.vision_block_count
        for key, value in self.extra_info:
            info[key] = value
        out = {}
        for key in sorted(info):
            value = info[key]
            if isinstance(value, list) and len(value) > 5 and not verbose:
                value = []
            out[key] = value
        return out

    def parameters_text(self) -> str:
        """``parameters`` of ``/api/show``: one PARAMETER per line, key padded to 30."""
        lines = []
        for key, value in self.parameters:
            lines.append(f"{key:<30} {value}")
        return "\n".join(lines)

    @property
    def shown_template(self) -> str:
        """``/api/show`` ``template``: the Go template, else ``template.DefaultTemplate``."""
        return self.template or "{{ .Prompt }}"

    def modelfile(self, renderers: bool = True) -> str:
        """``/api/show`` ``modelfile`` (``RENDERER``/``PARSER`` lines when ``renderers``)."""
        lines = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {self.name}",
            "",
            f"FROM /root/.ollama/models/blobs/{self.layers()[0].digest.replace(':', '-')}",
            f'TEMPLATE """{self.shown_template}"""',
        ]
        if self.system:
            lines.append(f'SYSTEM """{self.system}"""')
        if renderers and self.renderer:
            lines.append(f"RENDERER {self.renderer}")
        if renderers and self.parser:
            lines.append(f"PARSER {self.parser}")
        for key, value in self.parameters:
            lines.append(f"PARAMETER {key} {value}")
        if self.license:
            lines.append(f'LICENSE """{self.license}"""')
        return "\n".join(lines) + "\n"


def _param_value(text: str) -> object:
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        return [text[1:-1]]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


_FILE_TYPES = {"F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q4_K_M": 15, "MXFP4": 38}
_SAMPLE_TOKENS = ["<unk>", "<s>", "</s>", "!", '"', "#", "$", "%"]

_LLAMA3_TEMPLATE = (
    "<|start_header_id|>system<|end_header_id|>\n\n{{ if .System }}{{ .System }}{{ end }}"
    "{{- if .Tools }}When you receive a tool call response, use the output to format an "
    "answer to the orginal user question.{{ end }}<|eot_id|>\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>"
    "{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}\n"
    "{{- end }}"
)
_LLAVA_TEMPLATE = "[INST] {{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} [/INST]"
_GEMMA3_TEMPLATE = (
    "{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if or (eq .Role \"user\") (eq .Role \"system\") }}<start_of_turn>user\n"
    "{{ .Content }}<end_of_turn>\n{{ if $last }}<start_of_turn>model\n{{ end }}\n"
    "{{- else if eq .Role \"assistant\" }}<start_of_turn>model\n{{ .Content }}"
    "{{ if not $last }}<end_of_turn>\n{{ end }}\n{{- end }}\n{{- end }}"
)
_QWEN3_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- if .Tools }}<|im_start|>system\n# Tools\n<tools>{{ range .Tools }}{{ . }}{{ end }}"
    "</tools><|im_end|>\n{{ end }}"
    "{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n"
    "{{ if and $.IsThinkSet (not $.Think) }}<think>\n\n</think>\n\n{{ end }}{{ end }}"
    "{{- end }}"
)
_TINYLLAMA_TEMPLATE = (
    "<|system|>\n{{ .System }}</s>\n<|user|>\n{{ .Prompt }}</s>\n<|assistant|>\n"
)
_CHATML_TEMPLATE = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n{{ end }}"
    "{{- end }}"
)
_MLLAMA_TEMPLATE = (
    "{{- range $index, $_ := .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}\n{{- if gt (len (slice $.Messages $index)) 1 }}<|eot_id|>\n"
    "{{- else if ne .Role \"assistant\" }}<|eot_id|><|start_header_id|>assistant"
    "<|end_header_id|>\n\n{{ end }}\n{{- end }}"
)
_HARMONY_TEMPLATE = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: {{ currentDate }}\n\nReasoning: "
    "{{ if $.ThinkLevel }}{{ $.ThinkLevel }}{{ else }}medium{{ end }}\n\n# Valid channels: "
    "analysis, commentary, final. Channel must be included for every message."
    "{{- if .Tools }} Calls to these tools must go to the commentary channel: 'functions'."
    "{{- end }}<|end|>{{- if .System }}<|start|>developer<|message|># Instructions\n\n"
    "{{ .System }}<|end|>{{- end }}"
    "{{- range $i, $msg := .Messages }}{{- if eq $msg.Role \"user\" }}<|start|>user<|message|>"
    "{{ $msg.Content }}<|end|>{{- else if eq $msg.Role \"assistant\" }}<|start|>assistant"
    "<|channel|>final<|message|>{{ $msg.Content }}<|end|>{{- end }}{{- end }}<|start|>assistant"
)
_LLAMA_LICENSE = (
    "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024"
)

_DAY = 86_400
_BASE_TIME = 1_754_000_000  # 2025-07-31

CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="llama3.2:3b", arch="llama", families=("llama",), context_length=131072,
        quantization="Q4_K_M", parameter_size="3.2B", parameter_count=3_212_749_888,
        weights_size=2_019_377_376, capabilities=("completion", "tools"),
        embedding_length=3072, block_count=28, head_count=24, head_count_kv=8,
        template=_LLAMA3_TEMPLATE, template_kind="llama3",
        stop=("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        parameters=(("stop", '"<|start_header_id|>"'), ("stop", '"<|end_header_id|>"'),
                    ("stop", '"<|eot_id|>"')),
        license=_LLAMA_LICENSE, modified_unix=_BASE_TIME + 9 * _DAY,
        extra_info=(("llama.rope.freq_base", 500000.0), ("llama.vocab_size", 128256)),
    ),
    ModelSpec(
        name="llava:7b", arch="llama", families=("llama", "clip"), context_length=32768,
        quantization="Q4_0", parameter_size="7B", parameter_count=7_241_732_096,
        weights_size=4_113_289_152, capabilities=("completion", "vision"),
        embedding_length=4096, block_count=32, head_count=32, head_count_kv=8,
        template=_LLAVA_TEMPLATE, template_kind="legacy", stop=("[INST]", "[/INST]"),
        parameters=(("stop", '"[INST]"'), ("stop", '"[/INST]"')),
        license="Apache License\nVersion 2.0, January 2004", projector_size=624_434_368,
        image_tokens=576, vision_block_count=23, modified_unix=_BASE_TIME + 8 * _DAY,
        extra_info=(("llama.vocab_size", 32000),),
    ),
    ModelSpec(
        name="gemma3:4b", arch="gemma3", families=("gemma3",), context_length=131072,
        quantization="Q4_K_M", parameter_size="4.3B", parameter_count=4_300_079_472,
        weights_size=3_338_792_448, capabilities=("completion", "vision"),
        embedding_length=2560, block_count=34, head_count=8, head_count_kv=4,
        template=_GEMMA3_TEMPLATE, template_kind="gemma3", stop=("<end_of_turn>",),
        parameters=(("stop", '"<end_of_turn>"'), ("temperature", "1"), ("top_k", "64"),
                    ("top_p", "0.95")),
        license="Gemma Terms of Use\nLast modified: February 21, 2024",
        image_tokens=256, vision_block_count=27, modified_unix=_BASE_TIME + 7 * _DAY,
        extra_info=(("gemma3.mm.tokens_per_image", 256),),
    ),
    ModelSpec(
        name="qwen3:4b", arch="qwen3", families=("qwen3",), context_length=40960,
        quantization="Q4_K_M", parameter_size="4.0B", parameter_count=4_022_468_096,
        weights_size=2_497_279_360, capabilities=("completion", "tools", "thinking"),
        embedding_length=2560, block_count=36, head_count=32, head_count_kv=8,
        template=_QWEN3_TEMPLATE, template_kind="qwen3",
        stop=("<|im_start|>", "<|im_end|>"),
        parameters=(("repeat_penalty", "1"), ("stop", '"<|im_start|>"'),
                    ("stop", '"<|im_end|>"'), ("temperature", "0.6"), ("top_k", "20"),
                    ("top_p", "0.95")),
        license="Apache License\nVersion 2.0, January 2004",
        modified_unix=_BASE_TIME + 6 * _DAY,
    ),
    ModelSpec(
        name="all-minilm:latest", arch="bert", families=("bert",), context_length=512,
        quantization="F16", parameter_size="23M", parameter_count=22_565_376,
        weights_size=45_949_216, capabilities=("embedding",),
        embedding_length=384, block_count=6, head_count=12, head_count_kv=12,
        template="{{ .Prompt }}", template_kind="plain",
        license="Apache License\nVersion 2.0, January 2004",
        modified_unix=_BASE_TIME + 5 * _DAY,
        extra_info=(("bert.pooling_type", 1),),
    ),
    ModelSpec(
        name="tinyllama:latest", arch="llama", families=("llama",), context_length=2048,
        quantization="Q4_0", parameter_size="1B", parameter_count=1_100_048_384,
        weights_size=637_699_456, capabilities=("completion",),
        embedding_length=2048, block_count=22, head_count=32, head_count_kv=4,
        template=_TINYLLAMA_TEMPLATE, template_kind="legacy",
        stop=("<|system|>", "<|user|>", "<|assistant|>", "</s>"),
        parameters=(("stop", '"<|system|>"'), ("stop", '"<|user|>"'),
                    ("stop", '"<|assistant|>"'), ("stop", '"</s>"')),
        license="Apache License\nVersion 2.0, January 2004",
        installed=False, modified_unix=_BASE_TIME,
    ),
    # -- section 16 models (OLLAMA_SIM_MODELS or /api/pull) ---------------------------------
    ModelSpec(
        name="qwen3-vl:2b", arch="qwen3vl", families=("qwen3vl",), context_length=262144,
        quantization="Q4_K_M", parameter_size="2.1B", parameter_count=2_127_532_032,
        weights_size=1_891_493_856, capabilities=("completion", "vision", "thinking", "tools"),
        embedding_length=2048, block_count=28, head_count=16, head_count_kv=8,
        template="", template_kind="qwen3vl", renderer="qwen3-vl-thinking",
        parser="qwen3-vl-thinking", stop=("<|im_start|>", "<|im_end|>"),
        parameters=(("temperature", "1"), ("top_k", "20"), ("top_p", "0.95")),
        license="Apache License\nVersion 2.0, January 2004", image_tokens=256,
        vision_block_count=24, installed=False, modified_unix=_BASE_TIME - 1 * _DAY,
        extra_info=(("qwen3vl.vision.patch_size", 16),),
    ),
    ModelSpec(
        name="gpt-oss:20b", arch="gptoss", families=("gptoss",), context_length=131072,
        quantization="MXFP4", parameter_size="20.9B", parameter_count=20_914_757_184,
        weights_size=13_780_154_624, capabilities=("completion", "tools", "thinking"),
        embedding_length=2880, block_count=24, head_count=64, head_count_kv=8,
        template=_HARMONY_TEMPLATE, template_kind="harmony", parameters=(("temperature", "1"),),
        license="Apache License\nVersion 2.0, January 2004",
        installed=False, modified_unix=_BASE_TIME - 2 * _DAY,
        extra_info=(("gptoss.expert_count", 32), ("gptoss.expert_used_count", 4)),
    ),
    ModelSpec(
        name="gemma3:1b", arch="gemma3", families=("gemma3",), context_length=32768,
        quantization="Q4_K_M", parameter_size="999.89M", parameter_count=999_885_952,
        weights_size=815_319_791, capabilities=("completion",),
        embedding_length=1152, block_count=26, head_count=4, head_count_kv=1,
        template=_GEMMA3_TEMPLATE, template_kind="gemma3", stop=("<end_of_turn>",),
        parameters=(("stop", '"<end_of_turn>"'), ("temperature", "1"), ("top_k", "64"),
                    ("top_p", "0.95")),
        license="Gemma Terms of Use\nLast modified: February 21, 2024",
        installed=False, modified_unix=_BASE_TIME - 3 * _DAY,
    ),
    ModelSpec(
        name="llama3.2-vision:11b", arch="mllama", families=("mllama",), context_length=131072,
        quantization="Q4_K_M", parameter_size="10.7B", parameter_count=10_670_220_835,
        weights_size=7_816_589_186, capabilities=("completion", "vision"),
        embedding_length=4096, block_count=40, head_count=32, head_count_kv=8,
        template=_MLLAMA_TEMPLATE, template_kind="mllama", stop=("<|eot_id|>",),
        parameters=(("temperature", "0.6"), ("top_p", "0.9")), license=_LLAMA_LICENSE,
        image_tokens=1, vision_block_count=32, installed=False,
        modified_unix=_BASE_TIME - 4 * _DAY,
    ),
    ModelSpec(
        name="smollm2-8k:135m", arch="llama", families=("llama",), context_length=8192,
        quantization="Q4_1", parameter_size="134.52M", parameter_count=134_515_008,
        weights_size=98_166_560, capabilities=("completion",),
        embedding_length=576, block_count=30, head_count=9, head_count_kv=3,
        template=_CHATML_TEMPLATE, template_kind="chatml", stop=("<|im_start|>", "<|im_end|>"),
        parameters=(("num_ctx", "8192"), ("stop", '"<|im_start|>"'), ("stop", '"<|im_end|>"')),
        license="Apache License\nVersion 2.0, January 2004",
        installed=False, modified_unix=_BASE_TIME - 5 * _DAY,
    ),
    ModelSpec(
        name="smolvlm:256m", arch="llama", families=("llama", "clip"), context_length=8192,
        quantization="Q8_0", parameter_size="162.83M", parameter_count=162_826_560,
        weights_size=175_054_496, capabilities=("completion", "vision"),
        embedding_length=576, block_count=30, head_count=9, head_count_kv=3,
        template="", template_kind="smolvlm", stop=("<end_of_utterance>",),
        license="Apache License\nVersion 2.0, January 2004", projector_size=104_174_240,
        image_tokens=64, vision_block_count=12, installed=False,
        modified_unix=_BASE_TIME - 6 * _DAY,
    ),
)


def normalize_name(name: str) -> str | None:
    """``llama3.2`` -> ``llama3.2:latest``; strips ``registry.ollama.ai/library/``.

    Returns ``None`` for names the real server calls invalid.
    """
    text = name.strip()
    if not text:
        return None
    lowered = text.lower()
    for prefix in (f"{REGISTRY}/{NAMESPACE}/", f"{NAMESPACE}/"):
        if lowered.startswith(prefix):
            text = text[len(prefix):]
            break
    if "@" in text:
        text = text.split("@", 1)[0]
    if ":" not in text.rsplit("/", 1)[-1]:
        text += ":latest"
    repo, _, tag = text.rpartition(":")
    if not repo or not tag:
        return None
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789._-/")
    if not set(repo.lower()) <= allowed or not set(tag.lower()) <= allowed:
        return None
    if repo[0] in "._-" or tag[0] in "._-":
        return None
    return text.lower()


def by_name() -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in CATALOGUE}
