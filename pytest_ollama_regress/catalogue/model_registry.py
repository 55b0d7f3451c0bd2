"""The model registry file and its lifecycle: import, deprecate, purge, backfill, list.

The file is JSON written deterministically (sorted keys, two-space indent, one trailing
newline) so it diffs well.  Every write holds an exclusive lock on ``<file>.lock`` (removed
again afterwards) and goes through a temporary file in the same folder and ``os.replace``, so
concurrent writers never leave a torn file and never lose each other's updates.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from pytest_ollama_regress.catalogue.listing import ListedModel, human_bytes
from pytest_ollama_regress.catalogue.names import (
    canonical_name,
    heuristic_capabilities,
    parse_model_name,
    strategy_a,
)

REGISTRY_VERSION = 1
DEFAULT_REGISTRY = "ollama-models.json"
LOCK_TIMEOUT_S = 30.0
PLACEHOLDER_RE = re.compile(r"^model-ollama-gguf")
PLACEHOLDER_REASON = "placeholder entry (model-ollama-gguf*), replaced by imported models"

_ENTRY_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "served_model_id": (str,),
    "backend": (str,),
    "family": (str,),
    "quantization": (str, type(None)),
    "download_format": (str, type(None)),
    "download_path": (str, type(None)),
    "download_size_bytes": (int, type(None)),
    "digest": (str, type(None)),
    "capabilities": (list,),
    "capabilities_source": (str, type(None)),
    "roles": (list,),
    "deprecated": (bool,),
    "deprecated_reason": (str, type(None)),
    "placeholder": (bool,),
    "remote": (bool,),
    "source_provider": (str, type(None)),
}


class RegistryError(ValueError):
    """The registry file is unreadable or malformed; the message says where."""


@dataclass
class Registry:
    """The registry's content: entries keyed by their Strategy A name."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level keys, kept

    def entries(self) -> list[dict[str, Any]]:
        """Entries sorted by name."""
        return [self.models[k] for k in sorted(self.models)]

    def by_served_id(self, served: str) -> dict[str, Any] | None:
        """The entry serving ``served`` (``llama3`` finds ``llama3:latest``)."""
        canon = canonical_name(served)
        for entry in self.entries():
            with contextlib.suppress(ValueError):
                if canonical_name(entry.get("served_model_id") or entry["name"]) == canon:
                    return entry
        return None

    def dumps(self) -> str:
        """The deterministic file text."""
        data = {**self.extra, "version": REGISTRY_VERSION, "models": self.models}
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}
    out = [names[t] for t in types if t in names]
    if type(None) in types:
        out.append("null")
    return " or ".join(out)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    """Parse and validate registry text; errors name the line/column or the JSON path."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{source}: $ must be an object with \"version\" and \"models\"")
    version = data.get("version", REGISTRY_VERSION)
    if version != REGISTRY_VERSION:
        raise RegistryError(f"{source}: $.version is {version!r}; this tool reads version 1")
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise RegistryError(f"{source}: $.models must be an object keyed by model name")
    for key, entry in models.items():
        where = f"{source}: $.models[{json.dumps(key)}]"
        if not isinstance(entry, dict):
            raise RegistryError(f"{where} must be an object")
        for fname, types in _ENTRY_TYPES.items():
            if fname in entry and not isinstance(entry[fname], types):
                raise RegistryError(f"{where}.{fname} must be {_type_name(types)}")
        if entry.get("name", key) != key:
            raise RegistryError(f"{where}.name is {entry['name']!r}, not the key {key!r}")
        entry.setdefault("name", key)
        served = entry.get("served_model_id")
        if served is not None:
            try:
                parse_model_name(served)
            except ValueError as exc:
                raise RegistryError(f"{where}.served_model_id: {exc}") from None
        for lname in ("capabilities", "roles"):
            if any(not isinstance(v, str) for v in entry.get(lname, [])):
                raise RegistryError(f"{where}.{lname} must be a list of strings")
    extra = {k: v for k, v in data.items() if k not in ("version", "models")}
    return Registry(models=models, extra=extra)


def load_registry(path: str | Path, *, missing_ok: bool = True) -> Registry:
    """Read the registry at ``path`` (an absent file is empty when ``missing_ok``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Registry()
        raise RegistryError(f"{p}: no such registry file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{p}: cannot read: {exc}") from None
    return parse_registry(text, str(p))


# --- locking and atomic writes -------------------------------------------------------------


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold ``<file>.lock`` exclusively; the lock file is removed again on release.

    Removing it is safe because a writer that got the lock checks that the file it locked is
    still the one at that path (else an earlier holder removed it: it locks the new one).
    """
    lock_path = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + timeout
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    _lock_fd(fd)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        raise RegistryError(
                            f"{path}: locked by another writer for {timeout:g}s; "
                            f"retry, or remove {lock_path} if no writer is running"
                        ) from None
                    time.sleep(0.01)
            if _still_there(fd, lock_path):
                break
            _unlock_fd(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        try:
            if os.name != "nt":  # Windows cannot remove an open file; the lock file stays there
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
            _unlock_fd(fd)
        finally:
            os.close(fd)


def _still_there(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and ``os.replace``."""
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def locked(path: str | Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Registry]:
    """Lock, read, yield the registry, and write it back (atomically) only if it changed."""
    p = Path(path)
    if not p.parent.is_dir():
        raise RegistryError(f"{p}: folder {p.parent} does not exist")
    with _file_lock(p, timeout):
        reg = load_registry(p)
        before = reg.dumps()
        yield reg
        after = reg.dumps()
        if after != before or not p.exists():
            write_atomic(p, after)


# --- planned changes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One planned change: ``action`` on entry ``name``, with field ``(old, new)`` pairs."""

    action: str  # "add", "update", "deprecate", "purge", "backfill"
    name: str
    fields: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)
    entry: Mapping[str, Any] | None = None  # the full new entry for "add"

    def describe(self) -> str:
        """One line for the dry-run / apply report."""
        if self.action == "purge":
            return f"purge {self.name}"
        if self.action == "add":
            shown = ("served_model_id", "family", "quantization", "capabilities", "download_path")
            entry = self.entry or {}
            return f"add {self.name} (" + "; ".join(
                f"{k}: {json.dumps(entry.get(k))}" for k in shown
            ) + ")"
        parts = [f"{k}: {json.dumps(o)} -> {json.dumps(n)}" for k, (o, n) in sorted(self.fields.items())]
        return f"{self.action} {self.name}" + (f" ({'; '.join(parts)})" if parts else "")


def apply_changes(reg: Registry, changes: Sequence[Change]) -> None:
    """Apply planned changes to ``reg`` in place."""
    for ch in changes:
        if ch.action == "purge":
            reg.models.pop(ch.name, None)
        elif ch.action == "add":
            reg.models[ch.name] = dict(ch.entry or {})
        else:
            entry = reg.models[ch.name]
            for key, (_, new) in ch.fields.items():
                entry[key] = new


def is_placeholder(entry: Mapping[str, Any]) -> bool:
    """A legacy placeholder: named ``model-ollama-gguf*`` or marked ``"placeholder": true``."""
    return bool(entry.get("placeholder")) or bool(PLACEHOLDER_RE.match(entry.get("name", "")))


def models_store(env: Mapping[str, str] | None = None) -> Path:
    """Ollama's model store: ``$OLLAMA_MODELS`` or ``~/.ollama/models``."""
    env = os.environ if env is None else env
    value = env.get("OLLAMA_MODELS")
    return Path(value).expanduser() if value else Path.home() / ".ollama" / "models"


def manifest_path(store: Path, served: str) -> Path:
    """``<store>/manifests/<host>/<namespace>/<model>/<tag>`` for a served model id."""
    n = parse_model_name(served)
    return store.joinpath("manifests", n.host, *n.namespace.split("/"), n.model, n.tag)


def resolve_path(store: Path | None, served: str) -> str:
    """The manifest path when it exists in ``store``, else ``ollama://<served>``."""
    if store is not None:
        p = manifest_path(store, served)
        if p.is_file():
            return str(p)
    return f"ollama://{served}"


def _new_fields(item: ListedModel) -> dict[str, Any]:
    naming = strategy_a(item.name)
    caps, source = item.capabilities, item.capabilities_source
    if not caps:
        caps, source = heuristic_capabilities(item.name), "name-heuristic"
    return {
        "backend": "ollama",
        "capabilities": sorted(caps),
        "capabilities_source": source,
        "digest": item.digest,
        "download_format": None if item.remote else "gguf",
        "download_size_bytes": item.size,
        "family": naming.family,
        "quantization": naming.quant,
        "remote": item.remote,
        "served_model_id": item.name,
        "source_provider": "ollama",
    }


def _merge(old: Mapping[str, Any], new: dict[str, Any], item: ListedModel) -> dict[str, Any]:
    """Fields of ``new`` that would change ``old``, keeping better facts already recorded."""
    keep = dict(new)
    old_digest = old.get("digest") or ""
    if item.digest and old_digest.startswith(item.digest) and len(old_digest) > len(item.digest):
        keep["digest"] = old_digest  # the 12-hex ID of `ollama list` is a prefix of the digest
    old_size = old.get("download_size_bytes")
    if item.size_text and isinstance(old_size, int) and human_bytes(old_size) == item.size_text:
        keep["download_size_bytes"] = old_size  # exact size that prints as the listed one
    if item.size is None and old_size is not None:
        keep["download_size_bytes"] = old_size
    if new["capabilities_source"] == "name-heuristic" and old.get("capabilities_source") not in (
        None, "name-heuristic",
    ):
        keep["capabilities"] = old.get("capabilities")
        keep["capabilities_source"] = old.get("capabilities_source")
    return {k: (old.get(k), v) for k, v in keep.items() if old.get(k) != v}


def plan_import(
    reg: Registry, models: Sequence[ListedModel], *, store: Path | None = None
) -> list[Change]:
    """Changes that importing ``models`` makes: new entries and updated fields.

    Existing entries are matched by served model id; their ``deprecated``, ``roles`` and
    unknown fields are kept, and a null ``download_path`` is filled.  A new model whose
    Strategy A name is taken by another model gets ``-h<8 hex>`` appended.
    """
    changes: list[Change] = []
    taken = {k: canonical_name(v.get("served_model_id") or k) for k, v in reg.models.items()}
    seen: set[str] = set()
    for item in models:
        canon = canonical_name(item.name)
        if canon in seen:
            continue
        seen.add(canon)
        new = _new_fields(item)
        old = reg.by_served_id(item.name)
        if old is not None:
            diff = _merge(old, new, item)
            if old.get("download_path") is None:
                diff["download_path"] = (None, resolve_path(store, item.name))
            if diff:
                changes.append(Change("update", old["name"], diff))
            continue
        name = strategy_a(item.name).variant
        if name in taken and taken[name] != canon:
            name = f"{name}-h{sha256(canon.encode()).hexdigest()[:8]}"
        taken[name] = canon
        entry = {
            **new,
            "deprecated": False,
            "deprecated_reason": None,
            "download_path": resolve_path(store, item.name),
            "name": name,
            "roles": [],
        }
        changes.append(Change("add", name, {k: (None, v) for k, v in entry.items()}, entry))
    return changes


def plan_deprecate_placeholders(reg: Registry, reason: str = PLACEHOLDER_REASON) -> list[Change]:
    """Mark every placeholder entry that is not yet deprecated as deprecated."""
    return [
        Change(
            "deprecate",
            e["name"],
            {
                "deprecated": (e.get("deprecated", False), True),
                "deprecated_reason": (e.get("deprecated_reason"), reason),
            },
        )
        for e in reg.entries()
        if is_placeholder(e) and not e.get("deprecated")
    ]


def plan_purge(reg: Registry, *, placeholders_only: bool = False) -> list[Change]:
    """Remove deprecated entries (only placeholders with ``placeholders_only``)."""
    return [
        Change("purge", e["name"])
        for e in reg.entries()
        if e.get("deprecated") and (is_placeholder(e) or not placeholders_only)
    ]


def plan_backfill(reg: Registry, store: Path | None) -> list[Change]:
    """Fill ``download_path`` (and ``download_format``) of Ollama entries that lack it."""
    changes = []
    for e in reg.entries():
        if e.get("backend", "ollama") != "ollama" or e.get("download_path") is not None:
            continue
        served = e.get("served_model_id") or e["name"]
        fields: dict[str, tuple[Any, Any]] = {"download_path": (None, resolve_path(store, served))}
        if not e.get("download_format") and not e.get("remote"):
            fields["download_format"] = (e.get("download_format"), "gguf")
        changes.append(Change("backfill", e["name"], fields))
    return changes


def visible(reg: Registry, *, show_deprecated: bool = False) -> list[dict[str, Any]]:
    """Entries to list: deprecated ones only with ``show_deprecated``."""
    return [e for e in reg.entries() if show_deprecated or not e.get("deprecated")]
