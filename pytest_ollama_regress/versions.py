"""Ollama version strings: parsing and ordering.

Release builds report ``0.11.4`` (no ``v``); source builds report ``0.0.0``. Release
candidates (``0.11.5-rc3``) order before their release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Literal

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?$")


@total_ordering
@dataclass(frozen=True)
class Version:
    """A comparable Ollama version; ``rc`` is ``None`` for a release."""

    major: int
    minor: int
    patch: int
    rc: int | None = None

    def _key(self) -> tuple[int, int, int, float]:
        return (self.major, self.minor, self.patch, float("inf") if self.rc is None else self.rc)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, str):
            other = parse_version(other)
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = parse_version(other)
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def is_source_build(self) -> bool:
        """``0.0.0`` is what a build from source without a tag reports."""
        return (self.major, self.minor, self.patch) == (0, 0, 0)

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base if self.rc is None else f"{base}-rc{self.rc}"


def parse_version(text: str) -> Version:
    """Parse ``0.11.4``, ``v0.12.6`` or ``0.11.5-rc3``; raise ``ValueError`` otherwise."""
    match = _VERSION_RE.match(text.strip())
    if not match:
        raise ValueError(
            f"unknown Ollama version {text!r}: expected MAJOR.MINOR.PATCH such as 0.12.6 "
            "(optionally -rcN)"
        )
    major, minor, patch, rc = match.groups()
    return Version(int(major), int(minor), int(patch), None if rc is None else int(rc))


BuildKind = Literal["release", "rc", "describe", "fork", "source", "unknown"]

_DESCRIBE_RE = re.compile(
    r"^v?(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?-(\d+)-g([0-9a-f]{4,40})(?:-dirty)?$")
_FORK_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-rc\d+)?[-+.]\S+$")


@dataclass(frozen=True)
class BuildVersion:
    """How a reported version string is read: which release the build is at, or after.

    ``release`` and ``rc`` builds are judged as their release (an ``-rcN`` already carries
    its release's changes); a ``describe`` build (``0.12.5-11-g6db8da9``, ``commits`` > 0)
    lies between its tag and the next release; a ``fork`` (``0.9.3-dynamic``) is judged as
    its leading release; ``source`` (``0.0.0``) and ``unknown`` (a bare hash, anything else)
    carry no release at all.
    """

    text: str
    kind: BuildKind
    base: Version | None = None
    commits: int = 0

    @property
    def exact(self) -> bool:
        """The build is a known release (or its rc, or a tag's describe with 0 commits)."""
        return self.base is not None and self.commits == 0

    def describe(self) -> str:
        """One phrase for the header: how the string was read."""
        if self.kind == "source":
            return "source build (0.0.0): release unknown"
        if self.kind == "unknown":
            return "no release number: release unknown"
        if self.kind == "rc":
            return f"release candidate, judged as {self.base}"
        if self.kind == "describe" and self.commits:
            return f"{self.commits} commits after {self.base}: between it and the next release"
        if self.kind == "fork":
            return f"decorated build, judged as {self.base}"
        return f"release {self.base}"


def read_build_version(text: str) -> BuildVersion:
    """Read a ``/api/version`` string; never fails (unreadable strings are ``unknown``)."""
    raw = (text or "").strip()
    match = _VERSION_RE.match(raw)
    if match:
        major, minor, patch, rc = match.groups()
        base = Version(int(major), int(minor), int(patch))
        if base.is_source_build:
            return BuildVersion(raw, "source")
        return BuildVersion(raw, "release" if rc is None else "rc", base)
    match = _DESCRIBE_RE.match(raw)
    if match:
        major, minor, patch, _rc, commits, _hash = match.groups()
        base = Version(int(major), int(minor), int(patch))
        if base.is_source_build:
            return BuildVersion(raw, "source")
        return BuildVersion(raw, "describe", base, int(commits))
    match = _FORK_RE.match(raw)
    if match:
        base = Version(*(int(g) for g in match.groups()))
        if not base.is_source_build:
            return BuildVersion(raw, "fork", base)
    return BuildVersion(raw, "source" if raw.startswith("0.0.0") else "unknown")


def next_releases(base: Version) -> tuple[Version, Version, Version]:
    """The releases that can directly follow ``base``: next patch, next minor, next major."""
    return (Version(base.major, base.minor, base.patch + 1), Version(base.major, base.minor + 1, 0),
            Version(base.major + 1, 0, 0))
