"""The layout's promises: one place for each kind of thing, no plugin reaching into another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_ollama_regress
from pytest_ollama_regress import dialects
from pytest_ollama_regress.dialects.base import Dialect
from pytest_ollama_regress.suite.checks import CHECKS, module_name

PACKAGE = Path(pytest_ollama_regress.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "sim" not in p.relative_to(PACKAGE).parts)
HOOK_MODULES = sorted(PACKAGE.glob("*/plugin.py"))
PYTEST_OBJECTS = {"config", "item", "session", "request", "pluginmanager", "metafunc", "node",
                  "early_config", "report", "terminalreporter", "pytestconfig", "benchmark"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_public_names_resolve() -> None:
    for name in pytest_ollama_regress.__all__:
        assert getattr(pytest_ollama_regress, name) is not None, name


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_a_hook_module(path: Path) -> None:
    if path == PACKAGE / "plugin.py":
        return
    hook_modules = {f"pytest_ollama_regress.{p.parent.name}.plugin" for p in HOOK_MODULES}
    assert not _imports(path) & hook_modules


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_attribute_of_pytest_objects(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in PYTEST_OBJECTS):
            pytest.fail(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")


@pytest.mark.parametrize("path", HOOK_MODULES, ids=lambda p: p.parent.name)
def test_options_are_declared_only_in_tables(path: Path) -> None:
    source = path.read_text()
    assert ".addoption(" not in source and ".addini(" not in source


def test_every_check_has_its_module_and_marks_per_dialect() -> None:
    for name, check in CHECKS.items():
        for dialect in check.dialects:
            text = (PACKAGE / "suite" / module_name(name, dialect)).read_text()
            wanted = (f'pytestmark = marks("{name}")' if dialect == "ollama"
                      else f'pytestmark = marks("{name}", "{dialect}")')
            assert wanted in text, (name, dialect)


def test_builtin_dialects_satisfy_the_protocol() -> None:
    for name in dialects.names():
        dialect = dialects.get(name)
        assert isinstance(dialect, Dialect) and dialect.name == name


def test_unknown_dialect_names_the_known_ones() -> None:
    with pytest.raises(dialects.DialectError, match="known: ollama, llama-server"):
        dialects.get("nosuch")


def test_requires_dialect_skips_other_server_families(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires_dialect("llama-server")
        def test_other(ollama_target):
            pass

        @pytest.mark.requires_dialect("ollama")
        def test_ours(ollama_target):
            assert ollama_target.dialect == "ollama"
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sim-good speaks the ollama dialect; this test needs llama-server*"])


def test_option_precedence_is_cli_then_env_then_ini(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nollama_url = http://127.0.0.1:9\n")
    pytester.makepyfile("""
        from pytest_ollama_regress.session import session_of
        from pytest_ollama_regress.targets.settings import TargetSettings

        def test_x(request):
            print("URLS", session_of(request.config).get(TargetSettings).urls)
    """)
    probe = "pytest_ollama_regress.targets.providers.probe_version"
    monkeypatch.setattr(probe, lambda *a, **k: "0.12.6")
    monkeypatch.setenv("OLLAMA_REGRESS_URL", "http://127.0.0.1:8 http://127.0.0.1:7")
    result = pytester.runpytest_inprocess("-s")
    result.stdout.fnmatch_lines(["*URLS [[]('http://127.0.0.1:8', 'env OLLAMA_REGRESS_URL'), "
                                 "('http://127.0.0.1:7', 'env OLLAMA_REGRESS_URL')[]]*"])
    result = pytester.runpytest_inprocess("-s", "--ollama-url=http://127.0.0.1:6")
    result.stdout.fnmatch_lines(["*URLS [[]('http://127.0.0.1:6', '--ollama-url')[]]*"])
    monkeypatch.delenv("OLLAMA_REGRESS_URL")
    result = pytester.runpytest_inprocess("-s")
    result.stdout.fnmatch_lines(["*URLS [[]('http://127.0.0.1:9', 'ini ollama_url')[]]*"])


def test_unknown_dialect_prefix_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(ollama_target): pass")
    result = pytester.runpytest("--ollama-url=vllm+http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ollama-url 'vllm+http://127.0.0.1:9': unknown server "
                                 "dialect 'vllm'; write ollama+ or llama-server+http://HOST:PORT"])
