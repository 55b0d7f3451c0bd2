"""Ollama version strings: parsing and ordering.

Release builds report ``0.11.4`` (no ``v``); source builds report ``0.0.0``. Release
candidates (``0.11.5-rc3``) order before their release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

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
