"""Snapshots of debug renders kept per image, with the volatile parts normalised.

A render snapshot lives at ``<root>/<image key>/<test module>.ambr`` where the image key is
the target's label or short ID plus its server version (``4beecd8@0.11.10``) and ``<root>``
is a directory named ``__ollama_snapshots__`` beside (never inside) syrupy's
``__snapshots__``. The extension does not report its snapshots to syrupy's unused-snapshot
check: an image that is not under test in this run is not obsolete, so its renders must
neither fail the run nor be deleted by ``--snapshot-update``.

Normalisation replaces what changes from run to run without changing the prompt's meaning:
timestamps, dates a template inserts, and the random media marker of native-Jinja servers.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from syrupy.data import SnapshotCollections
from syrupy.extensions.amber import AmberSnapshotExtension
from syrupy.location import PyTestLocation

SNAPSHOT_DIRNAME = "__ollama_snapshots__"

_MONTHS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<__ollama_media_[0-9a-fA-F]+__>"), "<__ollama_media__>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
     "<timestamp>"),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "<date>"),
    (re.compile(rf"\b\d{{1,2}} (?:{_MONTHS})[a-z]* \d{{4}}\b"), "<date>"),
    (re.compile(rf"\b(?:{_MONTHS})[a-z]* \d{{1,2}}, \d{{4}}\b"), "<date>"),
)
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


def normalise_render(text: str) -> str:
    """``text`` with timestamps, dates and random media markers replaced by placeholders."""
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def render_record(render: Any) -> dict[str, Any]:
    """What a snapshot keeps of a ``DebugRender``: shape, image_count, normalised template."""
    return {
        "image_count": int(render.image_count),
        "rendered_template": normalise_render(render.rendered_template),
        "shape": render.shape,
    }


def snapshot_key(label: str, server_version: str) -> str:
    """Directory name of an image's snapshots: its label or short ID plus server version."""
    safe = _KEY_UNSAFE.sub("_", label).strip("._") or "target"
    return f"{safe}@{_KEY_UNSAFE.sub('_', server_version)}"


def snapshot_root(rootpath: Path, test_path: Path, configured: str | Path | None = None) -> Path:
    """Where per-image snapshot directories go for a test file.

    ``configured`` (``--ollama-snapshot-dir``) wins; a test file inside the project is
    served beside its own ``__snapshots__``; the built-in suite (an installed package, or
    any file outside the rootdir) uses ``<rootdir>/__ollama_snapshots__``.
    """
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else rootpath / path
    suite_dir = Path(__file__).resolve().parent
    test_path = test_path.resolve()
    if suite_dir not in test_path.parents and rootpath.resolve() in test_path.parents:
        return test_path.parent / SNAPSHOT_DIRNAME
    return rootpath / SNAPSHOT_DIRNAME


class RenderSnapshotExtension(AmberSnapshotExtension):
    """Amber snapshots in ``<root>/<key>/``; subclass per key with :func:`extension_for`."""

    root: ClassVar[str] = SNAPSHOT_DIRNAME
    key: ClassVar[str] = "default"
    target_id: ClassVar[str] = ""

    def serialize(self, data: Any, **kwargs: Any) -> str:
        """Normalise a ``DebugRender`` (or a plain string) before the amber serializer."""
        if hasattr(data, "rendered_template"):
            data = render_record(data)
        elif isinstance(data, str):
            data = normalise_render(data)
        return super().serialize(data, **kwargs)

    @classmethod
    def get_snapshot_name(cls, *, test_location: PyTestLocation, index: Any = 0) -> str:
        """The test's name without the target id: the directory already names the image."""
        name = super().get_snapshot_name(test_location=test_location, index=index)
        if cls.target_id:
            name = name.replace(f"[{cls.target_id}-", "[").replace(f"[{cls.target_id}]", "")
        return name

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        """The image's own directory."""
        return str(Path(cls.root) / cls.key)

    def discover_snapshots(self, *, test_location: PyTestLocation,
                           ignore_extensions: list[str] | None = None) -> SnapshotCollections:
        """Nothing: per-image snapshots are never "unused" (see the module docstring)."""
        return SnapshotCollections()

    @classmethod
    def matches_test_location(cls, *, test_location: PyTestLocation,
                              snapshot_location: str) -> bool:
        """A module's snapshots are ``<key>/<module basename>.ambr``."""
        return Path(snapshot_location).stem == test_location.basename


@cache
def extension_for(root: str, key: str, target_id: str = "") -> type[RenderSnapshotExtension]:
    """The extension class storing snapshots under ``root/key``; snapshot names leave out
    ``target_id`` (one class per combination)."""
    name = "RenderSnapshot_" + re.sub(r"\W", "_", key)
    return type(name, (RenderSnapshotExtension,),
                {"root": root, "key": key, "target_id": target_id})


def unified_diff(expected: str, actual: str, *, expected_label: str, actual_label: str) -> str:
    """A unified diff of two renders (empty when they are equal)."""
    return "\n".join(difflib.unified_diff(
        expected.splitlines(), actual.splitlines(),
        fromfile=expected_label, tofile=actual_label, lineterm="",
    ))
