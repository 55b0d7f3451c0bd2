"""Installed models: which catalogue models are present, their manifests and mtimes.

``OLLAMA_SIM_MODELS`` chooses the models a fresh server has: unset, the default set (the
catalogue's ``installed`` models); ``all``, every catalogue model; else a comma-separated list
of names, where ``default`` stands for the default set (``default,gpt-oss:20b``). The default
models are the newest, so ``/api/tags`` lists them first whatever is added.

With ``OLLAMA_MODELS`` set, manifests live on disk like the real server's
(``manifests/registry.ollama.ai/library/<name>/<tag>``): a fresh folder is filled with the
chosen models, an existing one is read back, pull writes and delete removes.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from pytest_ollama_regress.sim.catalogue import (
    CATALOGUE,
    REGISTRY,
    ModelSpec,
    by_name,
    normalize_name,
)


def chosen_models(selection: str) -> list[ModelSpec]:
    """The models ``OLLAMA_SIM_MODELS=selection`` installs (ValueError naming the choices)."""
    text = selection.strip().strip("\"'").strip()
    if not text:
        return [spec for spec in CATALOGUE if spec.installed]
    if text.lower() == "all":
        return list(CATALOGUE)
    specs = by_name()
    names: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item.lower() == "default":
            names += [spec.name for spec in CATALOGUE if spec.installed]
            continue
        normal = normalize_name(item)
        if normal is None or normal not in specs:
            raise ValueError(
                f"OLLAMA_SIM_MODELS: unknown model {item!r}: use all, default, or names from "
                f"{', '.join(specs)}")
        names.append(normal)
    return [specs[name] for name in dict.fromkeys(names)]


class ModelStore:
    """Thread-safe set of installed models with their ``modified_at`` times (ns)."""

    def __init__(self, models_dir: str | None = None, selection: str = "") -> None:
        self._lock = threading.Lock()
        self._specs = by_name()
        self._installed: dict[str, int] = {}
        self.root = Path(models_dir).expanduser() if models_dir else None
        manifests = self._manifest_root()
        if manifests is not None and manifests.is_dir():
            for spec in CATALOGUE:
                path = self._manifest_path(spec)
                if path is not None and path.is_file():
                    self._installed[spec.name] = path.stat().st_mtime_ns
        else:
            for spec in chosen_models(selection):
                self._install(spec, spec.modified_unix * 1_000_000_000)

    def _manifest_root(self) -> Path | None:
        if self.root is None:
            return None
        return self.root / "manifests" / REGISTRY / "library"

    def _manifest_path(self, spec: ModelSpec) -> Path | None:
        root = self._manifest_root()
        return None if root is None else root / spec.repo / spec.tag

    def _install(self, spec: ModelSpec, mtime_ns: int) -> None:
        path = self._manifest_path(spec)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(spec.manifest_bytes())
            os.utime(path, ns=(mtime_ns, mtime_ns))
            blobs = self.root / "blobs" if self.root else None
            if blobs is not None:
                blobs.mkdir(parents=True, exist_ok=True)
        self._installed[spec.name] = mtime_ns

    def known(self, name: str) -> ModelSpec | None:
        """A model the simulated registry can serve (installed or not)."""
        return self._specs.get(name)

    def get(self, name: str) -> ModelSpec | None:
        """The installed model called ``name`` (normalised), or ``None``."""
        with self._lock:
            if name in self._installed:
                return self._specs[name]
        return None

    def modified_ns(self, name: str) -> int:
        with self._lock:
            return self._installed.get(name, 0)

    def installed(self) -> list[tuple[ModelSpec, int]]:
        """Installed models, newest ``modified_at`` first (as ``/api/tags`` sorts)."""
        with self._lock:
            items = [(self._specs[n], t) for n, t in self._installed.items()]
        return sorted(items, key=lambda item: item[1], reverse=True)

    def pull(self, spec: ModelSpec) -> None:
        with self._lock:
            self._install(spec, time.time_ns())

    def delete(self, name: str) -> bool:
        with self._lock:
            if name not in self._installed:
                return False
            del self._installed[name]
            path = self._manifest_path(self._specs[name])
            if path is not None and path.exists():
                path.unlink()
                if not any(path.parent.iterdir()):
                    path.parent.rmdir()
            return True

    def count_blobs(self) -> int:
        with self._lock:
            return sum(len(self._specs[n].layers()) + 1 for n in self._installed)
