"""``ollama-regress models ...``: every operation, dry-runs that change nothing, bad input."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ollama_regress.catalogue import cli as catalogue_cli

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "ollama-list"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ollama-regress")
    catalogue_cli.register(p.add_subparsers(dest="command", required=True))
    return p


def run(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return int(args.handler(args) or 0)


def digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A registry with the basic corpus imported and two placeholders."""
    path = tmp_path / "reg.json"
    assert run("models", "import", "--registry", str(path), "--file", str(CORPUS / "text/basic.txt"),
               "--models-dir", str(tmp_path / "nostore")) == 0
    data = json.loads(path.read_text())
    data["models"]["model-ollama-gguf"] = {"name": "model-ollama-gguf", "backend": "ollama",
                                           "download_path": None}
    data["models"]["model-ollama-gguf-q4"] = {"name": "model-ollama-gguf-q4", "backend": "ollama",
                                              "deprecated": True}
    data["models"]["llava-7b-ollama-gguf"]["download_path"] = None
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def test_import_from_file_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reg.json"
    assert run("models", "import", "--registry", str(path), "--file",
               str(CORPUS / "text/namespaced.txt")) == 0
    out = capsys.readouterr().out
    assert "add user-model-tag-ollama-gguf (" in out and out.endswith("8 change(s) applied\n")
    data = json.loads(path.read_text())
    assert "hf.co-unsloth-mistral-small-3.1-24b-instruct-2503-gguf-ollama-gguf-q3_k_xl" in data["models"]
    # a second import changes nothing and does not rewrite the file
    before = digest(path)
    assert run("models", "import", "--registry", str(path), "--file",
               str(CORPUS / "text/namespaced.txt")) == 0
    assert capsys.readouterr().out == "0 change(s) applied\n"
    assert digest(path) == before


def test_import_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "reg.json"
    monkeypatch.setattr(sys, "stdin", io.StringIO((CORPUS / "json/list-rows.json").read_text()))
    assert run("models", "import", "--registry", str(path), "--file", "-") == 0
    assert len(json.loads(path.read_text())["models"]) == 5


def change_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if "change(s)" not in ln and not ln.startswith("model store")]


@pytest.mark.parametrize(
    "argv",
    [
        ["import", "--file", str(CORPUS / "text/quant-tags.txt"), "--deprecate-placeholders"],
        ["deprecate-placeholders"],
        ["purge-deprecated"],
        ["purge-deprecated", "--placeholders-only"],
        ["backfill-paths", "-v"],
    ],
    ids=["import", "deprecate-placeholders", "purge-deprecated", "purge-placeholders", "backfill"],
)
def test_dry_run_prints_plans_and_leaves_the_file_byte_identical(
    registry: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    before = digest(registry)
    assert run("models", argv[0], "--registry", str(registry), "--dry-run", *argv[1:]) == 0
    out = capsys.readouterr().out
    assert digest(registry) == before
    assert out.rstrip().endswith("(dry run: nothing written)")
    planned = change_lines(out)
    assert planned and all(ln.startswith("would ") for ln in planned), out
    # the real run applies exactly what the dry run planned
    assert run("models", argv[0], "--registry", str(registry), *argv[1:]) == 0
    applied = change_lines(capsys.readouterr().out)
    assert [f"would {ln}" for ln in applied] == planned
    assert digest(registry) != before


def test_lifecycle_deprecate_purge_backfill_list(
    registry: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = str(registry)
    assert run("models", "deprecate-placeholders", "--registry", reg) == 0
    assert "deprecate model-ollama-gguf (" in capsys.readouterr().out
    assert run("models", "list", "--registry", reg, "--json") == 0
    shown = [e["name"] for e in json.loads(capsys.readouterr().out)]
    assert "model-ollama-gguf" not in shown and "llava-7b-ollama-gguf" in shown
    assert run("models", "list", "--registry", reg, "--json", "--show-deprecated") == 0
    assert "model-ollama-gguf" in [e["name"] for e in json.loads(capsys.readouterr().out)]
    assert run("models", "purge-deprecated", "--registry", reg, "--placeholders-only") == 0
    assert "purge model-ollama-gguf\n" in capsys.readouterr().out
    assert run("models", "list", "--registry", reg, "--show-deprecated") == 0
    assert "model-ollama-gguf" not in capsys.readouterr().out
    store = tmp_path / "store"
    manifest = store / "manifests/registry.ollama.ai/library/llava/7b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    assert run("models", "backfill-paths", "--registry", reg, "--models-dir", str(store)) == 0
    assert f'backfill llava-7b-ollama-gguf (download_path: null -> "{manifest}")' in capsys.readouterr().out
    assert json.loads(registry.read_text())["models"]["llava-7b-ollama-gguf"]["download_path"] == str(manifest)
    assert run("models", "list", "--registry", reg) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "SERVED", "AS", "CAPABILITIES", "PATH"]
    assert any(line.startswith("llava-7b-ollama-gguf ") and line.endswith(str(manifest)) for line in table)


def test_backfill_reads_ollama_models_env(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "envstore"
    manifest = store / "manifests/registry.ollama.ai/library/llava/7b"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}")
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    assert run("models", "backfill-paths", "--registry", str(registry)) == 0
    assert json.loads(registry.read_text())["models"]["llava-7b-ollama-gguf"]["download_path"] == str(manifest)


def test_list_json_is_plain_parseable_stdout(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run("models", "list", "--registry", str(registry), "--json") == 0
    out = capsys.readouterr().out
    entries = json.loads(out)
    assert [e["name"] for e in entries] == sorted(e["name"] for e in entries)
    assert max(len(line) for line in out.splitlines()) < 200  # never wrapped or styled


def test_name_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models", "name", "llava:7b", "llama3", "hf.co/u/M-GGUF:IQ4_XS") == 0
    assert capsys.readouterr().out.splitlines() == [
        "llava:7b\tllava-7b-ollama-gguf",
        "llama3\tllama3-ollama-gguf",
        "hf.co/u/M-GGUF:IQ4_XS\thf.co-u-m-gguf-ollama-gguf-iq4_xs",
    ]
    assert run("models", "name", "--json", "mistral:7b-instruct-q4_K_M") == 0
    assert json.loads(capsys.readouterr().out) == [{
        "served_model_id": "mistral:7b-instruct-q4_K_M", "family": "mistral-7b-instruct",
        "quant": "q4_k_m", "variant": "mistral-7b-instruct-ollama-gguf-q4_k_m",
    }]


# --- bad input -------------------------------------------------------------------------------


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return lines[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["models", "frobnicate"], "argument OPERATION: invalid choice: 'frobnicate'"),
        (["models", "list", "--bogus"], "unrecognized arguments: --bogus"),
        (["models", "import"], "one of the arguments --url --file --docker is required"),
        (["models", "import", "--file", "a", "--docker", "b"], "not allowed with argument"),
        (["models"], "the following arguments are required: OPERATION"),
    ],
)
def test_unknown_operation_or_flag_is_an_argparse_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run(*argv)
    assert info.value.code == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_list_of_a_missing_registry_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent" / "x.json"
    assert run("models", "list", "--registry", str(missing)) == 2
    err = capsys.readouterr().err
    assert err == (
        f"ollama-regress models list: error: {missing}: no such registry file; give --registry "
        "PATH, or create it with `ollama-regress models import`\n"
    )


def test_import_leaves_no_lock_file(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("NAME  ID  SIZE  MODIFIED\nllava:7b  abcdef123456  4.7 GB  now\n")
    path = tmp_path / "reg.json"
    assert run("models", "import", "--registry", str(path), "--file", str(listing)) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["list.txt", "reg.json"]


def test_malformed_registry_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "reg.json"
    path.write_text('{"models": {"x": {"deprecated": 1}}}')
    assert run("models", "list", "--registry", str(path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"ollama-regress models list: error: {path}: $.models[\"x\"].deprecated")


def test_unparseable_listing_lines_are_reported_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "reg.json"
    assert run("models", "import", "--registry", str(path), "--file",
               str(CORPUS / "text/bad-lines.txt")) == 2
    err = capsys.readouterr().err.splitlines()
    assert [ln.split(":")[1].strip() for ln in err[:-1]] == [
        "unparseable line 3", "unparseable line 4", "unparseable line 5", "unparseable line 6",
        "unparseable line 8", "unparseable line 9",
    ]
    assert "6 unparseable listing line(s) above" in err[-1]
    assert not path.exists()


def test_missing_listing_file_and_bad_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models", "import", "--registry", str(tmp_path / "r.json"), "--file",
               str(tmp_path / "nope.txt")) == 2
    assert "cannot read listing" in capsys.readouterr().err
    assert run("models", "import", "--registry", str(tmp_path / "r.json"), "--docker=--rm") == 2
    assert "invalid container name or ID '--rm'" in capsys.readouterr().err


def test_unreachable_url_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("models", "import", "--registry", str(tmp_path / "r.json"), "--url",
               "http://127.0.0.1:9") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ollama-regress models import: error: --url ")


def test_console_script_exposes_models() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_ollama_regress.cli", "models", "name", "llava:7b"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "llava:7b\tllava-7b-ollama-gguf\n"
