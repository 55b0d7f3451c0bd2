"""Image inventory rows: metadata per target and a status per marker.

A row describes one target (an image, a simulator profile or a URL): its image IDs, tags,
digests, creation time, OCI labels and server version, plus one :class:`MarkerStatus` per
marker, aggregated from the run's test reports or read from a hand-filled table (the seed's
Markdown form, our own CSV / Markdown / JSON output).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pytest_ollama_regress.suite.checks import tracked_markers

OCI_REVISION = "org.opencontainers.image.revision"

#: The built-in checks the inventory tracks by default (``suite/checks.py``).
DEFAULT_MARKERS: tuple[str, ...] = tracked_markers()
#: Column for tests of a target that carry none of the tracked markers.
OTHER = "other"
SHORT_ID_LEN = 7

OK, FAIL, SKIP, ERROR = "OK", "FAIL", "SKIP", "ERROR"
UNTESTED = "UNTESTED"  # skipped by --ollama-bisect
UNKNOWN = "?"  # no result (a hand-filled "?" or blank)
#: Precedence when several tests of one marker disagree: the first listed wins.
PRECEDENCE = (FAIL, ERROR, OK, SKIP, UNTESTED, UNKNOWN)
UNTESTED_TEXT = "not tested (bisect)"

_PLACEHOLDERS = {"", "-", "?", "(auto)", "auto", "n/a", "none", "<none>"}
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


class InventoryError(ValueError):
    """A one-line problem with an inventory file, an option or a target's metadata."""


def short_id(image_id: str) -> str:
    """``sha256:4beecd86…`` -> ``4beecd8`` (the seed's 7-hex short form)."""
    return image_id.split(":", 1)[-1][:SHORT_ID_LEN] if image_id else ""


def parse_created(text: str | None) -> datetime | None:
    """An ISO 8601 time (Docker's nanosecond form included) as aware UTC; None when blank.

    A time without an offset is taken as UTC. Raises :class:`InventoryError` otherwise.
    """
    if text is None or text.strip().lower() in _PLACEHOLDERS:
        return None
    m = _ISO.match(text.strip())
    if not m:
        raise InventoryError(f"created time {text.strip()!r} is not ISO 8601 (YYYY-MM-DDTHH:MM:SSZ)")
    year, month, day, hour, minute, sec, frac, tz = m.groups()
    try:
        when = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(sec or 0),
            int((frac or "0")[:6].ljust(6, "0")), tzinfo=timezone.utc,
        )
    except ValueError as exc:
        raise InventoryError(f"created time {text.strip()!r} is not a valid date: {exc}") from None
    if tz and tz.upper() != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when


def format_created(when: datetime | None) -> str:
    """UTC ``YYYY-MM-DDTHH:MM:SSZ`` (empty for None)."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


@dataclass
class MarkerStatus:
    """Aggregate of the tests of one marker on one target."""

    status: str = UNKNOWN
    first_failure: str | None = None
    tentative: bool = False  # a hand-filled "OK?" / "FAIL?"

    def add(self, outcome: str, nodeid: str) -> None:
        """Fold one outcome in: passed, failed, error, skipped, xfailed, xpassed, untested (bisect).

        ``xfailed`` counts as FAIL (the behaviour is broken, as expected), ``xpassed`` as OK.
        The first failing (or, without failures, erroring) test is kept.
        """
        status = {
            "passed": OK, "xpassed": OK, "failed": FAIL, "xfailed": FAIL, "error": ERROR,
            "skipped": SKIP, "untested": UNTESTED,
        }[outcome]
        if PRECEDENCE.index(status) < PRECEDENCE.index(self.status):
            if status in (FAIL, ERROR):
                self.first_failure = nodeid
            self.status = status

    def text(self) -> str:
        """Cell text: ``OK``, ``FAIL (test_x[4beecd8])``, ``not tested (bisect)``."""
        if self.status == UNTESTED:
            return UNTESTED_TEXT
        if self.first_failure and self.status in (FAIL, ERROR):
            return f"{self.status} ({self.first_failure.rsplit('::', 1)[-1]})"
        return self.status + ("?" if self.tentative and self.status != UNKNOWN else "")


def parse_status(text: str) -> tuple[str, bool]:
    """A status cell -> (status, tentative). ``OK?`` is a tentative OK; ``?``/blank unknown."""
    raw = text.strip()
    if raw.lower().startswith("not tested"):
        return UNTESTED, False
    word = raw.split(" ", 1)[0].split("(", 1)[0].strip()
    word = word.strip()
    tentative = word.endswith("?") and len(word) > 1
    word = word.rstrip("?").strip().upper()
    if word in ("", "UNKNOWN"):
        return UNKNOWN, tentative
    aliases = {"PASS": OK, "PASSED": OK, "GOOD": OK, "FAILED": FAIL, "BAD": FAIL,
               "SKIPPED": SKIP}
    word = aliases.get(word, word)
    if word not in (OK, FAIL, SKIP, ERROR):
        raise InventoryError(f"status {raw!r} is not OK, FAIL, SKIP, ERROR or ?")
    return word, tentative


@dataclass
class InventoryRow:
    """One target of the inventory."""

    target: str
    ref: str = ""
    kind: str = "image"
    image_id: str = ""
    repo_tags: list[str] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)
    created: datetime | None = None
    revision: str = ""
    source: str = ""
    version: str = ""
    server_version: str = ""
    statuses: dict[str, MarkerStatus] = field(default_factory=dict)
    notes: str = ""
    line: int | None = None  # source line, for rows read from a file
    file: str = ""  # the file it was read from

    @property
    def short_id(self) -> str:
        return short_id(self.image_id)

    @property
    def tentative(self) -> bool:
        """True when a status was filled in as unconfirmed (``OK?``)."""
        return any(s.tentative for s in self.statuses.values())

    @property
    def where(self) -> str:
        """How to name the row in a message: its file line or its target."""
        if self.line is None:
            return self.target
        return f"{self.file + ' ' if self.file else ''}line {self.line} ({self.target})"


def row_from_target(target: Any) -> InventoryRow:
    """A row from a ``targets.Target``; images add their ``ImageInfo`` (docker inspect)."""
    info = getattr(target, "image", None)
    if info is None:
        return InventoryRow(target=target.id, ref=target.ref, kind=target.kind)
    created = str(info.created or "")
    if created.startswith("0001-01-01"):  # the engine's "no time" value
        created = ""
    try:
        when = parse_created(created)
    except InventoryError as exc:
        raise InventoryError(f"{target.id}: {exc}") from None
    return InventoryRow(
        target=target.id, ref=target.ref, kind=target.kind, image_id=info.id,
        repo_tags=list(info.repo_tags or []), repo_digests=list(info.repo_digests or []),
        created=when, revision=info.revision or "", source=info.source or "",
        version=info.version or "",
    )


# --------------------------------------------------------------------------- reading files

_META = {
    "target": "target", "label": "target", "name": "target",
    "ref": "ref", "reference": "ref",
    "digestshort": "short", "shortid": "short", "short": "short", "id": "short",
    "fulldigest": "image_id", "digest": "image_id", "imageid": "image_id", "fullid": "image_id",
    "createdutc": "created", "created": "created",
    "tags": "repo_tags", "tag": "repo_tags", "repotags": "repo_tags",
    "digests": "repo_digests", "repodigests": "repo_digests",
    "revision": "revision", "ocirevision": "revision", "commit": "revision",
    "source": "source", "ocisource": "source",
    "version": "version", "ociversion": "version",
    "server": "server_version", "serverversion": "server_version",
    "notes": "notes", "note": "notes", "kind": "kind",
}


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _status_marker(header: str, markers: Sequence[str]) -> str | None:
    """The marker a header holds the status of, or None for other columns."""
    norm = _norm(header)
    for marker in markers:
        if norm in (_norm(marker), _norm(marker) + "status"):
            return marker
    if norm.endswith("firstfailure"):
        return None
    if norm == "status":
        return "status"
    if norm.endswith("status") and len(norm) > len("status"):
        stem = re.sub(r"[\s_]*status$", "", header.strip(), flags=re.IGNORECASE)
        return re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return None


def _split_list(text: str) -> list[str]:
    if text.strip().lower() in _PLACEHOLDERS:
        return []
    return [p for p in re.split(r"[;,\s]+", text.strip()) if p]


def split_names(values: Sequence[str] | None) -> list[str]:
    """Repeated comma- or space-separated option values: ``["vision,numctx", "ttft"]`` ->
    ``["vision", "numctx", "ttft"]``."""
    return [name for value in values or () for name in value.replace(",", " ").split()]


def rows_from_table(
    headers: Sequence[str],
    records: Iterable[tuple[int, Sequence[str]]],
    *,
    source: str,
    markers: Sequence[str] = DEFAULT_MARKERS,
) -> list[InventoryRow]:
    """Rows from a table's headers and ``(line, cells)`` records; errors name the line."""
    columns: list[tuple[str, str]] = []  # (kind, name): ("meta", field) | ("status", marker)
    for header in headers:
        marker = _status_marker(header, markers)
        if marker is not None:
            columns.append(("status", marker))
        else:
            columns.append(("meta", _META.get(_norm(header), "")))
    if not any(kind == "status" for kind, _ in columns):
        raise InventoryError(
            f"{source}: no status column (name one VisionStatus, <marker> or <marker>_status)"
        )
    rows: list[InventoryRow] = []
    for line, cells in records:
        if len(cells) != len(headers):
            raise InventoryError(
                f"{source} line {line}: {len(cells)} cells, the header has {len(headers)}"
            )
        meta: dict[str, str] = {}
        statuses: dict[str, MarkerStatus] = {}
        for (kind, name), cell in zip(columns, cells, strict=True):
            cell = cell.strip()
            if kind == "status":
                try:
                    status, maybe = parse_status(cell)
                except InventoryError as exc:
                    raise InventoryError(f"{source} line {line}: {exc}") from None
                statuses[name] = MarkerStatus(status, tentative=maybe)
            elif name and cell.lower() not in _PLACEHOLDERS:
                meta[name] = cell
        full = meta.get("image_id", "")
        if not full and re.fullmatch(r"(sha256:)?[0-9a-f]{64}", meta.get("short", "")):
            full = meta.pop("short")
        if full and not full.startswith("sha256:") and re.fullmatch(r"[0-9a-f]{64}", full):
            full = "sha256:" + full
        target = meta.get("target") or meta.get("short") or short_id(full) or meta.get("ref", "")
        if not target:
            raise InventoryError(f"{source} line {line}: no image named (fill a digest or ID)")
        try:
            created = parse_created(meta.get("created"))
        except InventoryError as exc:
            raise InventoryError(f"{source} line {line}: {exc}") from None
        rows.append(InventoryRow(
            target=target, ref=meta.get("ref", full or target), kind=meta.get("kind", "image"),
            image_id=full,
            repo_tags=_split_list(meta.get("repo_tags", "")),
            repo_digests=_split_list(meta.get("repo_digests", "")),
            created=created, revision=meta.get("revision", ""), source=meta.get("source", ""),
            version=meta.get("version", ""), server_version=meta.get("server_version", ""),
            statuses=statuses, notes=meta.get("notes", ""), line=line, file=source,
        ))
    if not rows:
        raise InventoryError(f"{source}: the table has no rows")
    return rows


def _markdown_records(lines: Sequence[str], source: str) -> tuple[list[str], list]:
    """The first pipe table of a Markdown text: header cells and ``(line, cells)``."""
    def cells(text: str) -> list[str]:
        body = text.strip()
        body = body[1:] if body.startswith("|") else body
        body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
        return [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", body)]

    start = None
    for i, text in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if text.strip().startswith("|") and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", nxt) \
                and "-" in nxt:
            start = i
            break
    if start is None:
        raise InventoryError(f"{source}: no Markdown table (a '| ... |' header and a '|---|' line)")
    headers = cells(lines[start])
    records = []
    for i in range(start + 2, len(lines)):
        if not lines[i].strip().startswith("|"):
            break
        records.append((i + 1, cells(lines[i])))
    return headers, records


def _json_status(item: Mapping[str, Any]) -> MarkerStatus:
    status, tentative = parse_status(str(item.get("status") or ""))
    return MarkerStatus(status, item.get("first_failure"), tentative)


def _rows_from_json(text: str, source: str) -> list[InventoryRow]:
    try:
        data = json.loads(text)
        rows = []
        for n, item in enumerate(data["rows"], 1):
            rows.append(InventoryRow(
                target=item["target"], ref=item.get("ref", ""), kind=item.get("kind", "image"),
                image_id=item.get("image_id", ""), repo_tags=list(item.get("repo_tags", [])),
                repo_digests=list(item.get("repo_digests", [])),
                created=parse_created(item.get("created_utc")),
                revision=item.get("revision", ""), source=item.get("source", ""),
                version=item.get("version", ""), server_version=item.get("server_version", ""),
                statuses={m: _json_status(s) for m, s in item.get("statuses", {}).items()},
                notes=item.get("notes", ""), line=n, file=source,
            ))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InventoryError(f"{source}: not an inventory JSON file ({exc})") from None
    if not rows:
        raise InventoryError(f"{source}: the inventory has no rows")
    return rows


def load_inventory(path: str | Path, markers: Sequence[str] = DEFAULT_MARKERS) -> list[InventoryRow]:
    """Read a hand-filled or generated inventory: Markdown (.md), CSV (.csv) or JSON (.json)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".md", ".markdown", ".csv", ".json", ".txt"):
        raise InventoryError(f"{path}: unknown inventory suffix {suffix!r} (use .md, .csv or .json)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InventoryError(f"{path}: not UTF-8 text") from None
    if suffix == ".json":
        return _rows_from_json(text, str(path))
    lines = text.splitlines()
    if suffix == ".csv":
        reader = csv.reader(lines, strict=True)
        numbered: list[tuple[int, list[str]]] = []
        try:
            for record in reader:
                if any(c.strip() for c in record):
                    numbered.append((reader.line_num, record))
        except csv.Error as exc:
            raise InventoryError(f"{path} line {reader.line_num}: malformed CSV ({exc})") from None
        if not numbered:
            raise InventoryError(f"{path}: empty CSV file")
        headers = numbered[0][1]
        return rows_from_table(headers, numbered[1:], source=str(path), markers=markers)
    headers, records = _markdown_records(lines, str(path))
    return rows_from_table(headers, records, source=str(path), markers=markers)
