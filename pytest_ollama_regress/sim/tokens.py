"""The simulated tokenizer: words and single punctuation marks are tokens."""

from __future__ import annotations

import re
import zlib

TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def count(text: str) -> int:
    """Number of tokens in ``text``."""
    return sum(1 for _ in TOKEN_RE.finditer(text))


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text)


def pieces(text: str) -> list[str]:
    """Split ``text`` into streamable tokens; each keeps its leading whitespace.

    ``"".join(pieces(t)) == t`` for any text without a trailing-only whitespace run lost.
    """
    out = [m.group(0) for m in _PIECE_RE.finditer(text)]
    joined = "".join(out)
    if joined != text:  # leading/trailing oddities: fall back to one piece per word
        return [text] if text else []
    return out


def token_id(token: str) -> int:
    """A stable id for a token (for the ``context`` array of generate)."""
    return zlib.crc32(token.encode()) % 150_000 + 1000


def cut_tail(text: str, keep: int) -> str:
    """Keep only the last ``keep`` tokens of ``text`` (cutting mid-message)."""
    if keep <= 0:
        return ""
    matches = list(TOKEN_RE.finditer(text))
    if len(matches) <= keep:
        return text
    return text[matches[len(matches) - keep].start():]
