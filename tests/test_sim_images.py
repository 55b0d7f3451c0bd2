"""The simulator image builder: one story in build order, a build key that does not depend on
which venv runs it, and earlier images kept (listed) unless pruned."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pytest_ollama_regress.versions import parse_version

BUILDER = Path(__file__).resolve().parent.parent / "fixtures" / "images" / "build_sim_images.py"
STORY = ("hist-1", "hist-2", "hist-3", "good", "regressed", "hist-4", "hist-5", "hist-6")


def builder() -> ModuleType:
    module = sys.modules.get("build_sim_images")
    if module is None:
        spec = importlib.util.spec_from_file_location("build_sim_images", BUILDER)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["build_sim_images"] = module
        spec.loader.exec_module(module)
    return module


def test_the_images_tell_one_story_in_build_order() -> None:
    specs = builder().SPECS
    names = [s.name for s in specs]
    assert [n for n in names if n in STORY] == list(STORY)  # built (created) in this order
    story = [s for s in specs if s.name in STORY]
    versions = [parse_version(s.version) for s in story]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert min(versions) >= parse_version("0.11.5")  # every one renders (debug render era)
    verdicts = ["good" if s.profile == "good" else "bad" for s in story]
    assert verdicts == ["good"] * 4 + ["bad"] * 4  # any pair in created order is monotonic


def _rootfs(tmp_path: Path, site: str, python: str, sim_source: str, mtime: int) -> Any:
    b = builder()
    lib = tmp_path / site
    (lib / b.PACKAGE / "sim").mkdir(parents=True, exist_ok=True)
    source = lib / b.PACKAGE / "sim" / "server.py"
    source.write_text(sim_source)
    pillow = lib / "PIL" / "Image.py"
    pillow.parent.mkdir(parents=True, exist_ok=True)
    pillow.write_text(f"# pillow built for {python}\n")
    exe = lib / "python"
    exe.write_text(python)
    for path in (source, pillow, exe):
        os.utime(path, (mtime, mtime))
    dest = f"{b.PREFIX}/lib/{python}/site-packages"
    files = [(exe, f"{b.PREFIX}/bin/{python}"), (pillow, f"{dest}/PIL/Image.py"),
             (source, f"{dest}/{b.PACKAGE}/sim/server.py")]
    launcher = b.LAUNCHER.encode()
    return b.RootFs(files, [], {f"{b.PREFIX}/bin/ollama-regress": (launcher, 0o755)}, [])


def test_the_build_key_depends_on_the_simulator_not_on_the_venv(tmp_path: Path) -> None:
    a = _rootfs(tmp_path, "venv-a", "python3.11", "VERSION = 1\n", 1_000).fingerprint("x")
    other_venv = _rootfs(tmp_path, "tox-py312", "python3.12", "VERSION = 1\n", 2_000)
    assert other_venv.fingerprint("x") == a
    changed = _rootfs(tmp_path, "venv-c", "python3.11", "VERSION = 2\n", 1_000)
    assert changed.fingerprint("x") != a
    assert _rootfs(tmp_path, "venv-d", "python3.11", "VERSION = 1\n", 1_000).fingerprint("y") != a


@pytest.mark.docker
def test_earlier_images_are_kept_until_pruned(sim_manifest: dict[str, Any]) -> None:
    b = builder()
    base = sim_manifest["base"]["id"]
    dockerfile = f'FROM {base}\nLABEL {b.LABEL_FINGERPRINT}="000000000000"\n'
    old = subprocess.run(
        ["docker", "build", "-q", "--no-cache", "-"], input=dockerfile, capture_output=True,
        text=True, timeout=120, env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    assert old.returncode == 0, old.stderr
    old_id = old.stdout.strip().splitlines()[-1]
    try:
        again = b.build_locked()  # reuses the current images
        assert again["built"] is False and again["fingerprint"] == sim_manifest["fingerprint"]
        assert b._inspect(old_id) is not None  # still there
        assert old_id in b.stale_images(sim_manifest["fingerprint"])
        # --prune removes what stale_images lists; here only this one: on a shared engine the
        # list may hold images of other checkouts
        assert b.prune([old_id]) == [old_id] and b._inspect(old_id) is None
        assert all(b._inspect(image["id"]) is not None for image in sim_manifest["images"])
    finally:
        subprocess.run(["docker", "rmi", "-f", old_id], capture_output=True, timeout=60)
