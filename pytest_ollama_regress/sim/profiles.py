"""Regression profiles: each one reproduces exactly one bug our users have met.

A profile is a small object whose hooks the engine calls at the one place the bug lives.
``Profile`` itself is the correct server (``good``); a regression subclasses ``Regression``
and overrides one hook. Healthy variants (``healthy`` true) change only what the server
reports, never how it behaves: builds from source that report ``0.0.0``, a ``git describe``
string or a bare hash. To add a profile, subclass, override the hook, and add an instance to
``PROFILES``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

from pytest_ollama_regress.sim.wire import Base64Error, go_b64decode

T = TypeVar("T")
_DATA_URI = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)


class Profile:
    """The correct behaviour; subclasses break one thing."""

    name = "good"
    description = "no regression: behaves like the real server of the simulated version"
    healthy = True  # no regression: the suite must pass it

    def reported_version(self, behaves_as: str) -> str:
        """What ``/api/version`` (and the startup log) shows for a server that behaves as
        release ``behaves_as``."""
        return behaves_as

    def decode_image(self, data: str) -> bytes | None:
        """An ``images`` entry as bytes (Go's ``[]byte`` binding); ``None`` drops it.

        Raises ``Base64Error`` (``illegal base64 data at input byte N``: a 400) for anything
        that is not standard base64, a ``data:`` URI included.
        """
        return go_b64decode(data)

    def filter_images(self, images: Sequence[T]) -> list[T]:
        """Images that survive until rendering (the render shows exactly these)."""
        return list(images)

    def runner_images(self, images: Sequence[T]) -> list[T]:
        """Of the rendered images, those the runner embeds (``prompt_eval_count``, answer)."""
        return list(images)

    def ps_context_length(self, per_slot: int, num_parallel: int, configured: int) -> int:
        """``/api/ps`` ``context_length`` for a runner with ``per_slot`` context.

        ``configured`` is the ``num_ctx`` the load asked for (request or default) before
        the scheduler's floors and the clamp.
        """
        return per_slot

    def needs_reload(self, options_changed: bool) -> bool:
        """Whether a loaded runner is reloaded for this request."""
        return options_changed

    @property
    def num_ctx_change_reloads(self) -> bool:
        """Whether a different ``num_ctx`` counts as a changed runner option."""
        return True

    @property
    def truncation(self) -> str:
        """``messages``: drop whole old messages; ``tokens``: cut the prompt mid-message."""
        return "messages"

    @property
    def honours_truncate_false(self) -> bool:
        return True

    def first_token_delay_ns(self, env: Mapping[str, str]) -> int:
        """Extra delay before the first generated token."""
        return 0

    @property
    def logit_drift(self) -> float:
        """Noise (nats) on every next-token logit: greedy outputs and logprobs drift."""
        return 0.0

    def __repr__(self) -> str:
        return f"<Profile {self.name}>"


class Regression(Profile):
    """A server with one bug."""

    healthy = False


class SourceBuild(Profile):
    name = "source-build"
    description = ("healthy build from source (docker build . at a release's commit): reports "
                   "0.0.0, behaves as the simulated version")

    def reported_version(self, behaves_as: str) -> str:
        return "0.0.0"


class DescribeBuild(Profile):
    name = "describe-build"
    description = ("healthy scripts/env.sh build 11 commits after a tag: reports "
                   "'<version>-11-g6db8da9', behaves as the simulated version")
    commits = 11
    abbrev = "6db8da9"

    def reported_version(self, behaves_as: str) -> str:
        return f"{behaves_as}-{self.commits}-g{self.abbrev}"


class HashBuild(Profile):
    name = "hash-build"
    description = ("healthy build whose git describe found no tag: reports a bare hash "
                   "'6db8da9', behaves as the simulated version")

    def reported_version(self, behaves_as: str) -> str:
        return DescribeBuild.abbrev


class VisionIgnored(Regression):
    name = "vision-ignored"
    description = "images are dropped before rendering: no image_count, no [img-N] tags"

    def filter_images(self, images: Sequence[T]) -> list[T]:
        return []


class VisionMiscount(Regression):
    name = "vision-miscount"
    description = "with 2+ images the last one is lost: image_count and tags one fewer"

    def filter_images(self, images: Sequence[T]) -> list[T]:
        items = list(images)
        return items[:-1] if len(items) >= 2 else items


class ImagesUnvalidated(Regression):
    name = "images-unvalidated"
    description = ("images are not validated: a data: URI prefix is stripped and undecodable "
                   "base64 is ignored instead of a 400")

    def decode_image(self, data: str) -> bytes | None:
        try:
            return go_b64decode(_DATA_URI.sub("", data, count=1))
        except Base64Error:
            return None


class ImagesFirstOnly(Regression):
    name = "images-first-only"
    description = ("the runner embeds only the first image: the render shows every image, "
                   "prompt_eval_count and the answer know only the first")

    def runner_images(self, images: Sequence[T]) -> list[T]:
        return list(images)[:1]


class NumCtxScaled(Regression):
    name = "numctx-scaled"
    description = "/api/ps context_length is divided by OLLAMA_NUM_PARALLEL"

    def ps_context_length(self, per_slot: int, num_parallel: int, configured: int) -> int:
        return per_slot // max(num_parallel, 1)


class PsConfigured(Regression):
    name = "ps-configured"
    description = ("/api/ps context_length is the num_ctx as configured (request or default), "
                   "before the floors of 4 and 2048 (vision) the runner really runs with")

    def ps_context_length(self, per_slot: int, num_parallel: int, configured: int) -> int:
        return configured


class NumCtxSticky(Regression):
    name = "numctx-sticky"
    description = ("a changed num_ctx does not reload: the loaded runner keeps its old context "
                   "(and /api/ps keeps reporting it)")

    @property
    def num_ctx_change_reloads(self) -> bool:
        return False


class ReloadThrash(Regression):
    name = "reload-thrash"
    description = "every request reloads the model (large load_duration every time)"

    def needs_reload(self, options_changed: bool) -> bool:
        return True


class SilentTruncation(Regression):
    name = "silent-truncation"
    description = "history is cut mid-message (system may be lost); truncate:false is ignored"

    @property
    def truncation(self) -> str:
        return "tokens"

    @property
    def honours_truncate_false(self) -> bool:
        return False


class SlowTtft(Regression):
    name = "slow-ttft"
    description = "the first token is late by OLLAMA_SIM_TTFT_DELAY_MS (default 250 ms)"
    default_delay_ms = 250.0

    def first_token_delay_ns(self, env: Mapping[str, str]) -> int:
        raw = env.get("OLLAMA_SIM_TTFT_DELAY_MS", "").strip().strip("\"'")
        try:
            delay = float(raw) if raw else self.default_delay_ms
        except ValueError:
            raise ValueError(
                f"OLLAMA_SIM_TTFT_DELAY_MS={raw!r} is not a number: set it to e.g. 250"
            ) from None
        return int(max(delay, 0.0) * 1_000_000)


class NumericsDrift(Regression):
    name = "numerics-drift"
    description = ("next-token logits carry noise of 1 nat (a broken kernel, a quantised KV "
                   "cache): logprobs drift from a healthy server's and greedy answers part "
                   "from them where the noise lifts another token to the top")

    @property
    def logit_drift(self) -> float:
        return 1.0


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(),
        VisionIgnored(),
        VisionMiscount(),
        ImagesUnvalidated(),
        ImagesFirstOnly(),
        NumCtxScaled(),
        PsConfigured(),
        NumCtxSticky(),
        ReloadThrash(),
        SilentTruncation(),
        SlowTtft(),
        NumericsDrift(),
        SourceBuild(),
        DescribeBuild(),
        HashBuild(),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; a one-line ValueError listing the profiles otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown simulator profile {name!r}: choose one of {', '.join(PROFILES)}"
        ) from None
