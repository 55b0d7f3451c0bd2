"""What an Ollama server promises, as named rules, for the releases it may be.

Every check of the built-in suite asks an :class:`Expectations` object what the target does
and never asserts a behaviour the target does not promise. Each behaviour is a :class:`Rule`
with a short name; failure messages end with the rule that was applied, e.g. ``image_count 0
!= 2: images were dropped before rendering (rule: debug-render image_count, >= 0.11.5)``.

The version string is read deliberately (:func:`~.versions.read_build_version`): a release or
its ``-rcN`` is one release; a ``git describe`` build lies between its tag and the next
release; a source build (``0.0.0``) or a bare hash may be any release. ``--ollama-behaves-as``
(or the image label ``org.ollama-regress.behaves-as``) states the release a build behaves as.
When the releases a server may be disagree about a rule, a check either probes what the
server does (where every form is healthy), accepts every healthy form, or skips with a reason
naming ``--ollama-behaves-as`` (where a probe would hide a regression). See docs/suite.md.

Facts come from the Ollama source history (reference notes, sections 3-7, 13 and 16).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pytest_ollama_regress.versions import (
    BuildVersion,
    Version,
    next_releases,
    parse_version,
    read_build_version,
)

T = TypeVar("T")
BEHAVES_AS_LABEL = "org.ollama-regress.behaves-as"
"""OCI image label naming the release an image behaves as (like ``--ollama-behaves-as``)."""
OLDEST = Version(0, 10, 0)
"""The oldest release the suite judges (the source audit covers v0.10 on): a build of unknown
release is taken to be this one or newer."""


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
        """Whether release ``version`` is covered by this rule (an rc counts as its release)."""
        v = release_of(version)
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
    Rule("debug-render", "`_debug_render_only` returns `_debug_info` without inference "
         "(first tagged in 0.11.5-rc3; probed)", since="0.11.5"),
    Rule("debug-render shape minimal", "debug response is {model, created_at, _debug_info}",
         since="0.11.5", until="0.12.0"),
    Rule("debug-render shape full", "debug response is a normal response with done:false",
         since="0.12.0"),
    Rule("debug-render image_count", "`image_count` equals the images kept after truncation",
         since="0.11.5"),
    Rule("chat image tags", "each image adds `[img-N]` before its message content, N running "
         "over all kept messages", since="0.11.5"),
    Rule("literal [img] placeholder", "each literal `[img]` is replaced in order by `[img-N]`",
         since="0.11.5"),
    Rule("renderer image tag space", "a built-in renderer model's `[img-N]` tags are followed "
         "by a space before text", since="0.23.4"),
    Rule("renderer [img] not replaced", "built-in renderer models do not replace a literal "
         "`[img]` (an upstream bug)", since="0.17.1", until="0.23.4"),
    Rule("native chat media markers", "a model without a Go TEMPLATE is chatted natively: "
         "images become `<__ollama_media_...__>` markers, no `[img-N]`, `[img]` kept",
         since="0.30.0"),
    Rule("image count accounts every image", "each added image adds prompt tokens: "
         "prompt_eval_count grows with every image the runner embeds"),
    Rule("multi-image answer", "an answer about several pictures accounts for every one"),
    Rule("text-model image error", "text-only gemma3/mistral3/llama4/qwen25vl models fail "
         "a request with images: `missing data required for image input`", until="0.30.0"),
    Rule("mllama one image", "mllama (llama3.2-vision) takes at most one image per request"),
    Rule("mllama runs", "mllama models load and run (the llama.cpp runner of v0.30+ has no "
         "mllama)", until="0.30.0"),
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
    Rule("gpt-oss num_ctx floor", "gpt-oss runs with num_ctx >= 8192 unless VRAM is under "
         "20 GiB", since="0.11.0", until="0.15.5"),
    Rule("qwen3vl num_ctx floor", "qwen3vl runs with num_ctx >= 8192 unless VRAM is under "
         "20 GiB", since="0.12.7", until="0.15.5"),
    Rule("modelfile num_ctx", "a Modelfile `PARAMETER num_ctx` is the model's default context"),
    Rule("ps context_length", "/api/ps entries carry context_length", since="0.9.7"),
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
    Rule("thinking always on", "gpt-oss thinks whatever `think` says: its first token may be "
         "thinking, and a short num_predict may end before any content"),
    Rule("ttft gate", "the candidate's median TTFT is at most the allowed regression above "
         "the baseline's median"),
    Rule("debug-render snapshot", "an image renders the recorded conversations as it did "
         "when its snapshot was recorded"),
    Rule("debug-render baseline", "a candidate renders the recorded conversations as the "
         "baseline image does (documented version differences aside)"),
    Rule("numerics snapshot", "an image decodes the fixed prompt set greedily as it did when "
         "its snapshot was recorded"),
    Rule("numerics gate", "a candidate's next-token distributions on the fixed prompt set stay "
         "within the allowed divergence from the baseline's"),
)

TTFT_OVERHEAD_SLACK_NS = 100_000_000
"""Client-observed first-token time allowed beyond load + prefill + two decode steps."""

_CONTEXT_ERROR_WORDS = ("exceed", "too large", "longer", "too long")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "ten", "eleven", "twelve")


def release_of(version: Version | str) -> Version:
    """The release ``version`` is judged as: an ``-rcN`` counts as its release (§16.1)."""
    v = parse_version(version) if isinstance(version, str) else version
    return Version(v.major, v.minor, v.patch)


def boundaries() -> tuple[Version, ...]:
    """Every release at which some rule starts or stops, oldest first."""
    found = {release_of(edge) for r in RULES.values() for edge in (r.since, r.until) if edge}
    return tuple(sorted(found))


def possible_releases(build: BuildVersion) -> tuple[Version, ...]:
    """The releases a build may behave as, one per era that the rules tell apart.

    A release (or rc, or fork) is its release. A ``git describe`` build N commits after a
    tag may already carry any change of the next release, so each rule boundary that is a
    direct successor of the tag is possible too. A source build or a bare hash may be any
    release from :data:`OLDEST` on: one representative per era (the oldest, then every
    later boundary).
    """
    if build.base is not None and build.commits == 0:
        return (release_of(build.base),)
    if build.base is not None:
        base = release_of(build.base)
        later = [b for b in boundaries() if b in next_releases(base)]
        return (base, *later)
    return (OLDEST, *(b for b in boundaries() if b > OLDEST))


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


def image_tag_forms(content: str, images: int, start: int = 0) -> tuple[str, ...]:
    """Every healthy way a chat message's content appears once its ``images`` are tagged.

    The tags go right before the content (``[img-0]What?``); a built-in renderer model
    (v0.23.4+) puts a space after them (``[img-0] What?``). A literal ``[img]`` is replaced in
    order instead. (Native-Jinja chat, v0.30+, has no tags at all: see
    :func:`found_media_markers`.)
    """
    tags = image_tags(images, start)
    if "[img]" in content:
        for tag in tags:
            content = content.replace("[img]", tag, 1)
        return (content,)
    joined = "".join(tags)
    forms = [joined + content]
    if tags and content and not content[0].isspace():
        forms.append(f"{joined} {content}")
    return tuple(forms)


def generate_tag_forms(prompt: str, images: int) -> tuple[str, ...]:
    """Every healthy way a generate render starts its prompt with ``images`` tags: attached
    (``[img-0][img-1]<prompt>``, v0.12.6+), each followed by a blank line (before), or the
    tags then a space (renderer models, v0.23.4+). The snapshot diff shows a change of form
    between images."""
    tags = image_tags(images)
    forms = ["".join(tags) + prompt, "".join(f"{tag}\n\n" for tag in tags) + prompt]
    if tags:
        forms.append("".join(tags) + " " + prompt)
    return tuple(forms)

_MEDIA_RE = re.compile(r"<__ollama_media_[0-9a-zA-Z_]*__>")
_SEPARATED_TAG_RE = re.compile(r"(\[img-\d+\])(?:\n\n| )")


def found_media_markers(text: str) -> list[str]:
    """The native-chat media markers (``<__ollama_media_<hex>__>``) in ``text``, in order."""
    return _MEDIA_RE.findall(text)


def canonical_render(text: str) -> str:
    """A render with the healthy tag forms made one: ``[img-N]`` attached to what follows,
    media markers as ``<media>``. For diffs across images and versions."""
    return _MEDIA_RE.sub("<media>", _SEPARATED_TAG_RE.sub(r"\1", text))


@dataclass(frozen=True)
class ReleaseRules:
    """What one release promises; see :data:`RULES`."""

    version: Version

    @classmethod
    def of(cls, text: str) -> ReleaseRules:
        """The rules of release ``text`` (``0.12.6``; an ``-rcN`` counts as its release)."""
        return cls(release_of(text))

    def promises(self, name: str) -> bool:
        """Whether the rule ``name`` covers this release."""
        return rule(name).applies(self.version)

    def _either(self, promised: str, otherwise: str) -> Rule:
        """The rule ``promised`` when this release promises it, else ``otherwise``."""
        return rule(promised if self.promises(promised) else otherwise)

    @property
    def debug_render(self) -> bool:
        """``_debug_render_only`` exists (v0.11.5 and later)."""
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
    def truncate_field(self) -> bool:
        """``truncate``/``shift`` request fields exist, ``truncate:false`` is a 400 (v0.12.6+)."""
        return self.promises("truncate:false rejected")

    @property
    def ps_context_rule(self) -> Rule:
        """What ``/api/ps`` ``context_length`` reports for this release."""
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

    @property
    def non_vision_images_rule(self) -> Rule:
        """What this release does with images sent to a model without vision."""
        return self._either("non-vision images ignored", "non-vision images")

    @property
    def non_vision_images_accepted(self) -> bool:
        """Go-runner servers (< 0.30.0) accept such images and tag them; later is undecided."""
        return self.promises("non-vision images ignored")

    @property
    def native_chat(self) -> bool:
        """Models without a Go TEMPLATE may be chatted natively (v0.30+, media markers)."""
        return self.promises("native chat media markers")

    def chat_unknown_model_message(self, model: str) -> str:
        """The 404 message of ``/api/chat`` for a model that is not installed."""
        if self.promises("chat unknown model"):
            return f"model '{model}' not found"
        return f'model "{model}" not found, try pulling it first'

    @property
    def first_line_error_is_http_error(self) -> bool:
        """A runner error before the first token is a real HTTP status (v0.12.6+)."""
        return self.promises("first-line error status")


class _Ambiguous:
    def __repr__(self) -> str:
        return "AMBIGUOUS"


AMBIGUOUS = _Ambiguous()
"""What :meth:`Expectations.unanimous` returns when the possible releases disagree."""

Verdict = Literal["pass", "fail", "ambiguous"]


@dataclass(frozen=True)
class Expectations:
    """What a server promises: the rules of every release it may behave as.

    ``releases`` has one entry for a known release; several for a ``git describe`` build, a
    source build (``0.0.0``) or a bare hash (see :func:`possible_releases`), unless the
    release was stated (``behaves_as``). ``probes`` records what was seen of the server
    itself (e.g. ``{"debug render": "full"}``), for the header, the summary and the
    inventory.
    """

    server_version: str
    build: BuildVersion
    releases: tuple[Version, ...]
    behaves_as: str | None = None
    probes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_version(cls, server_version: str, behaves_as: str | None = None) -> Expectations:
        """Expectations for a version string as ``/api/version`` reports it.

        ``behaves_as`` (``X.Y.Z``) states the release the build behaves as; it wins over
        the version string. A bad value is a one-line ``ValueError``.
        """
        build = read_build_version(server_version)
        if behaves_as:
            try:
                stated = release_of(parse_version(behaves_as))
            except ValueError:
                raise ValueError(
                    f"behaves-as {behaves_as!r} is not a release: write X.Y.Z, e.g. 0.12.6"
                ) from None
            return cls(server_version, build, (stated,), behaves_as)
        return cls(server_version, build, possible_releases(build))

    def with_probes(self, probes: Mapping[str, str]) -> Expectations:
        """A copy that also records ``probes`` (what the server was seen to do)."""
        return dataclasses.replace(self, probes={**self.probes, **probes})

    @property
    def known(self) -> bool:
        """The server is one release (stated, or read from its version)."""
        return len(self.releases) == 1

    @property
    def version(self) -> Version | None:
        """The one release the server is judged as, ``None`` when it may be several."""
        return self.releases[0] if self.known else None

    @property
    def views(self) -> tuple[ReleaseRules, ...]:
        """The rules of each release the server may be."""
        return tuple(ReleaseRules(v) for v in self.releases)

    def describe(self) -> str:
        """How the version was read, for the header and the inventory."""
        if self.behaves_as:
            return f"behaves as {self.behaves_as} (stated)"
        return self.build.describe()

    # -- asking the rules ------------------------------------------------------------------
    def unanimous(self, ask: Callable[[ReleaseRules], T]) -> T | _Ambiguous:
        """``ask``'s answer when every possible release gives the same, else AMBIGUOUS."""
        answers = {ask(view) for view in self.views}
        return answers.pop() if len(answers) == 1 else AMBIGUOUS

    def promises(self, name: str) -> bool | None:
        """Whether rule ``name`` covers the server: ``None`` when its releases disagree."""
        answer = self.unanimous(lambda view: view.promises(name))
        return None if answer is AMBIGUOUS else bool(answer)

    def judge(self, actual: object,
              expected: Callable[[ReleaseRules], Collection[object]]) -> Verdict:
        """``pass`` when ``actual`` is healthy for every possible release, ``fail`` when for
        none, ``ambiguous`` when it depends on which release the server is."""
        fits = [actual in expected(view) for view in self.views]
        if all(fits):
            return "pass"
        return "ambiguous" if any(fits) else "fail"

    def expected_union(self, expected: Callable[[ReleaseRules], Collection[T]]) -> list[T]:
        """Every value some possible release expects, sorted, for failure messages."""
        values = {v for view in self.views for v in expected(view)}
        return sorted(values)  # type: ignore[type-var]

    def skip_reason(self, name: str) -> str:
        """Why a check relying on rule ``name`` does not run against this server."""
        if self.promises(name) is None:
            return self.ambiguous_reason(rule(name))
        return rule(name).skip_reason(self.server_version)

    def ambiguous_reason(self, applied: Rule | str) -> str:
        """A skip reason for a rule the possible releases disagree on, naming the way out."""
        what = applied.name if isinstance(applied, Rule) else applied
        span = f" ({applied.span})" if isinstance(applied, Rule) else ""
        return (f"server {self.server_version} ({self.describe()}): whether it promises "
                f"{what!r}{span} depends on the release it behaves as; state it with "
                f"--ollama-behaves-as=TARGET=X.Y.Z or the image label {BEHAVES_AS_LABEL}")

    # -- what the checks need ----------------------------------------------------------------
    @property
    def debug_render(self) -> bool:
        """``_debug_render_only`` answers: probed when the suite could, else by release."""
        probed = self.probes.get("debug render")
        if probed is not None:
            return probed != "absent"
        return self.promises("debug-render") is not False

    @property
    def debug_shape(self) -> str | None:
        """The probed debug response shape (``minimal``/``full``), else the release's."""
        probed = self.probes.get("debug render")
        if probed in ("minimal", "full"):
            return probed
        answer = self.unanimous(lambda view: view.debug_shape)
        return None if answer is AMBIGUOUS else answer  # type: ignore[return-value]

    def healthy_debug_shapes(self) -> tuple[str, ...]:
        """The debug response shapes some possible release gives."""
        return tuple(sorted({v.debug_shape for v in self.views if v.debug_shape}))

    @property
    def native_chat(self) -> bool | None:
        """Native-Jinja chat (media markers) is possible for template-less models (v0.30+)."""
        return self.promises("native chat media markers")
