"""Parsers for model listings: ``/api/tags``, ``ollama list`` as JSON or as its text table.

Sizes in the text table are Ollama's ``format.HumanBytes``: decimal units (1 KB = 1000 B),
one decimal below 10 (``4.7 GB``), truncated to an integer from 10 up (``13 GB``), ``B`` under
1000 bytes, ``-`` for remote (cloud) models.  Unparseable lines are never dropped: they come
back as ``LineError`` with their 1-based line number.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pytest_ollama_regress.catalogue.names import parse_model_name

#: The seed's plain-text regex, kept for reference and tests (every line it accepts, we accept).
SEED_LINE_RE = re.compile(
    r"^(?P<name>\S+)\s+(?P<id>[0-9a-f]{6,})\s+(?P<size_val>\d+(?:\.\d+)?)\s+"
    r"(?P<size_unit>[KMGTP]B)\s+(?P<modified>.+)$"
)

#: Our row regex: the seed's, plus leading/trailing blanks, ``B`` and ``KiB``-style units,
#: no space needed before the unit, and ``-`` as the size of a remote model.
LINE_RE = re.compile(
    r"^\s*(?P<name>\S+)\s+(?P<id>[0-9a-fA-F]{6,64})\s+"
    r"(?:(?P<size_val>\d+(?:\.\d+)?)\s*(?P<size_unit>[KMGTP]?i?B)|(?P<remote>-))"
    r"\s+(?P<modified>\S.*?)\s*$"
)
HEADER_RE = re.compile(r"^\s*NAME\s+ID\s+SIZE\s+MODIFIED\s*$")

UNITS = {
    "B": 1,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4, "PB": 1000**5,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4, "PIB": 1024**5,
}

DOCKER_TIMEOUT_S = 30.0
_CONTAINER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ListingError(ValueError):
    """A listing could not be read at all (one-line message naming the fix)."""


@dataclass(frozen=True)
class LineError:
    """One input line (or JSON item) that could not be parsed."""

    line: int | None
    text: str
    reason: str
    where: str = ""  # JSON path for JSON input

    def __str__(self) -> str:
        loc = f"line {self.line}" if self.line is not None else self.where
        return f"{loc}: {self.reason}: {self.text!r}"


@dataclass(frozen=True)
class ListedModel:
    """One model row of a listing."""

    name: str
    digest: str | None = None  # full sha256 hex, or the 12-hex ID of ``ollama list``
    size: int | None = None  # bytes; approximate when ``size_text`` is set
    size_text: str | None = None  # as printed (text listings)
    modified: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    capabilities_source: str = ""
    line: int | None = None
    remote: bool = False


@dataclass
class Listing:
    """A parsed listing: the models and every line that could not be parsed."""

    models: list[ListedModel]
    errors: list[LineError]
    format: str  # "text", "json" or "tags"

    @property
    def ok(self) -> bool:
        return not self.errors


def human_bytes(size: int) -> str:
    """Format bytes as Ollama's ``format.HumanBytes`` does (``ollama list`` SIZE column)."""
    for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= scale:
            value = size / scale
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{size} B"


def parse_size(text: str) -> int:
    """``"4.7 GB"`` -> 4700000000 (decimal units; ``KiB``-style units are binary)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?i?B)\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"size {text!r} is not NUMBER UNIT (units B, KB, MB, GB, TB)")
    return round(float(m.group(1)) * UNITS[m.group(2).upper()])


def _diagnose(text: str) -> str:
    if re.match(r"\s*error\b", text, re.IGNORECASE):
        return "an error message, not a model row (did `ollama list` fail?)"
    cols = text.split()
    if len(cols) < 4:
        return "expected NAME ID SIZE MODIFIED columns"
    if not re.fullmatch(r"[0-9a-fA-F]{6,64}", cols[1]):
        return f"ID {cols[1]!r} is not a hex digest"
    if cols[2] != "-" and not re.fullmatch(r"\d+(?:\.\d+)?([KMGTP]?i?B)?", cols[2]):
        return f"size {cols[2]!r} is not a number"
    return "size unit not one of B, KB, MB, GB, TB (or a remote '-')"


def parse_text(text: str) -> Listing:
    """Parse ``ollama list`` text output (header lines and blank lines are skipped)."""
    models: list[ListedModel] = []
    errors: list[LineError] = []
    for number, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or HEADER_RE.match(line):
            continue
        m = LINE_RE.match(line)
        if not m:
            errors.append(LineError(number, line, _diagnose(line)))
            continue
        name = m.group("name")
        try:
            parse_model_name(name)
        except ValueError as exc:
            errors.append(LineError(number, line, str(exc)))
            continue
        size = size_text = None
        if not m.group("remote"):
            size_text = f"{m.group('size_val')} {m.group('size_unit')}"
            size = parse_size(size_text)
        models.append(
            ListedModel(
                name=name,
                digest=m.group("id").lower(),
                size=size,
                size_text=size_text,
                modified=m.group("modified"),
                line=number,
                remote=bool(m.group("remote")),
            )
        )
    return Listing(models, errors, "text")


def _json_item(item: Any, where: str) -> ListedModel | LineError:
    if not isinstance(item, Mapping):
        return LineError(None, json.dumps(item)[:80], "expected an object", where)
    name = item.get("name") or item.get("model")
    if not isinstance(name, str) or not name:
        return LineError(None, json.dumps(item)[:80], "no 'name' or 'model' string", where)
    try:
        parse_model_name(name)
    except ValueError as exc:
        return LineError(None, name, str(exc), where)
    raw_size = item.get("size")
    size = size_text = None
    if isinstance(raw_size, bool) or (raw_size is not None and not isinstance(raw_size, (int, str))):
        return LineError(None, name, f"size {raw_size!r} is neither bytes nor text", where)
    if isinstance(raw_size, int):
        size = raw_size
    elif isinstance(raw_size, str) and raw_size.strip() not in ("", "-"):
        try:
            size, size_text = parse_size(raw_size), raw_size.strip()
        except ValueError as exc:
            return LineError(None, name, str(exc), where)
    caps = item.get("capabilities")
    digest = item.get("digest") or item.get("id")
    return ListedModel(
        name=name,
        digest=str(digest).removeprefix("sha256:") if digest else None,
        size=size,
        size_text=size_text,
        modified=item.get("modified_at") or item.get("modified"),
        details=dict(item.get("details") or {}),
        capabilities=tuple(caps) if isinstance(caps, list) else (),
        capabilities_source="tags" if isinstance(caps, list) and caps else "",
        remote=bool(item.get("remote_model")) or raw_size == "-",
    )


def parse_json(text: str) -> Listing:
    """Parse a JSON listing: ``{"models": [...]}`` (the ``/api/tags`` shape) or ``[...]``.

    Raises ``ListingError`` with line and column for invalid JSON.
    """
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise ListingError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if isinstance(data, Mapping) and isinstance(data.get("models"), list):
        items, prefix = data["models"], "$.models"
    elif isinstance(data, list):
        items, prefix = data, "$"
    else:
        raise ListingError("JSON listing must be {\"models\": [...]} or a list of models")
    return _json_listing(items, prefix, "json")


def _json_listing(items: Sequence[Any], prefix: str, fmt: str) -> Listing:
    models: list[ListedModel] = []
    errors: list[LineError] = []
    for i, item in enumerate(items):
        parsed = _json_item(item, f"{prefix}[{i}]")
        (errors if isinstance(parsed, LineError) else models).append(parsed)  # type: ignore[arg-type]
    return Listing(models, errors, fmt)


def parse_listing(text: str) -> Listing:
    """Parse a listing, JSON when it starts with ``{`` or ``[``, else the text table."""
    head = text.lstrip("\ufeff \t\r\n")[:1]
    return parse_json(text) if head in ("{", "[") else parse_text(text)


def parse_tags(models: Sequence[Mapping[str, Any]]) -> Listing:
    """Wrap the ``/api/tags`` ``models`` array (exact sizes and full digests)."""
    return _json_listing(models, "$.models", "tags")


def read_listing_file(path: str | Path) -> Listing:
    """Parse a listing saved to a file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ListingError(f"cannot read listing {path}: {exc.strerror or exc}") from None
    return parse_listing(text)


def read_listing_stream(stream: IO[str]) -> Listing:
    """Parse a listing from a text stream (stdin)."""
    return parse_listing(stream.read())


def docker_list_command(container: str, docker: str = "docker") -> list[str]:
    """The argv that lists models inside ``container``; rejects names that look like flags."""
    if not _CONTAINER_RE.match(container):
        raise ListingError(
            f"invalid container name or ID {container!r}: expected letters, digits, '_', '.', '-'"
        )
    return [docker, "exec", container, "ollama", "list"]


def docker_listing(
    container: str, *, docker: str = "docker", timeout: float = DOCKER_TIMEOUT_S
) -> Listing:
    """Run ``docker exec <container> ollama list`` (bounded by ``timeout``) and parse it."""
    argv = docker_list_command(container, docker)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ListingError(
            f"docker CLI {docker!r} not found: install Docker or save `ollama list` to a file"
        ) from None
    except subprocess.TimeoutExpired:
        raise ListingError(f"`{' '.join(argv)}` timed out after {timeout:g}s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise ListingError(f"`{' '.join(argv)}` failed: {reason}")
    return parse_listing(proc.stdout)
