"""The registry file: format, validation, lifecycle operations, atomic concurrent writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_ollama_regress.catalogue.listing import ListedModel, parse_listing, read_listing_file
from pytest_ollama_regress.catalogue.model_registry import (
    Registry,
    RegistryError,
    apply_changes,
    load_registry,
    locked,
    manifest_path,
    models_store,
    parse_registry,
    plan_backfill,
    plan_deprecate_placeholders,
    plan_import,
    plan_purge,
    resolve_path,
    visible,
)

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "ollama-list"


def imported(*paths: str, store: Path | None = None) -> Registry:
    reg = Registry()
    for p in paths:
        apply_changes(reg, plan_import(reg, read_listing_file(CORPUS / p).models, store=store))
    return reg


# --- format and validation -------------------------------------------------------------------


def test_file_is_deterministic_sorted_and_ends_with_one_newline() -> None:
    reg = imported("text/basic.txt")
    text = reg.dumps()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    data = json.loads(text)
    assert list(data) == ["models", "version"]
    assert list(data["models"]) == sorted(data["models"])
    assert list(data["models"]["llava-7b-ollama-gguf"]) == sorted(data["models"]["llava-7b-ollama-gguf"])
    assert parse_registry(text).dumps() == text
    # the order of the listing does not matter
    models = read_listing_file(CORPUS / "text/basic.txt").models
    other = Registry()
    apply_changes(other, plan_import(other, list(reversed(models))))
    assert other.dumps() == text


def test_imported_entry_fields() -> None:
    entry = imported("text/basic.txt").models["llava-7b-ollama-gguf"]
    assert entry == {
        "backend": "ollama",
        "capabilities": ["completion", "vision"],
        "capabilities_source": "name-heuristic",
        "deprecated": False,
        "deprecated_reason": None,
        "digest": "8dd30f6b0cb1",
        "download_format": "gguf",
        "download_path": "ollama://llava:7b",
        "download_size_bytes": 4_700_000_000,
        "family": "llava-7b",
        "name": "llava-7b-ollama-gguf",
        "quantization": None,
        "remote": False,
        "roles": [],
        "served_model_id": "llava:7b",
        "source_provider": "ollama",
    }
    reg = imported("text/quant-tags.txt", "text/remote-cloud.txt")
    assert reg.models["llama3.1-8b-instruct-ollama-gguf-q4_k_m"]["quantization"] == "q4_k_m"
    cloud = reg.models["gpt-oss-120b-cloud-ollama-gguf"]
    assert cloud["remote"] is True and cloud["download_format"] is None
    assert cloud["download_size_bytes"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"models": {\n  "a": ?\n}}', r"invalid JSON at line 2 column 8: "),
        ("[]", r"\$ must be an object"),
        ('{"version": 2, "models": {}}', r"\$\.version is 2"),
        ('{"models": []}', r"\$\.models must be an object"),
        ('{"models": {"x": []}}', r'\$\.models\["x"\] must be an object'),
        ('{"models": {"x": {"deprecated": "yes"}}}', r'\$\.models\["x"\]\.deprecated must be true or false'),
        ('{"models": {"x": {"capabilities": "vision"}}}', r'\.capabilities must be a list'),
        ('{"models": {"x": {"capabilities": [1]}}}', r'\.capabilities must be a list of strings'),
        ('{"models": {"x": {"name": "y"}}}', r"\.name is 'y', not the key 'x'"),
        ('{"models": {"x": {"served_model_id": "a::b"}}}', r"\.served_model_id: model name"),
        ('{"models": {"x": {"download_size_bytes": "4 GB"}}}', r"must be an integer or null"),
    ],
)
def test_malformed_registry_says_where(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    path.write_text(text)
    with pytest.raises(RegistryError, match=message) as info:
        load_registry(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_invalid_json_names_file_line_and_column_whatever_the_python(tmp_path: Path) -> None:
    """A trailing comma: Python 3.13 words it (and places it) differently from 3.12; the
    message promises the file, line and column where the parser stopped, not its wording."""
    text = '{"models": {\n  "a": 1,\n}'
    path = tmp_path / "reg.json"
    path.write_text(text)
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(text)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    where = f"line {parsed.value.lineno} column {parsed.value.colno}"
    assert re.fullmatch(rf"{re.escape(str(path))}: invalid JSON at {where}: \S.*", str(info.value))


def test_missing_registry() -> None:
    assert load_registry("/nonexistent/reg.json").models == {}
    with pytest.raises(RegistryError, match="no such registry file"):
        load_registry("/nonexistent/reg.json", missing_ok=False)


def test_unknown_fields_and_top_level_keys_survive(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    path.write_text(json.dumps({"comment": "ours", "models": {"x": {"owner": "me"}}}))
    with locked(path) as reg:
        reg.models["x"]["roles"] = ["vision"]
    data = json.loads(path.read_text())
    assert data["comment"] == "ours" and data["models"]["x"] == {
        "name": "x", "owner": "me", "roles": ["vision"],
    }


# --- import ----------------------------------------------------------------------------------


def test_reimport_is_idempotent_and_keeps_better_facts() -> None:
    reg = imported("json/api-tags.json")
    exact = reg.models["llama3.2-3b-ollama-gguf"]
    assert exact["download_size_bytes"] == 2019393189 and len(exact["digest"]) == 64
    assert plan_import(reg, read_listing_file(CORPUS / "json/api-tags.json").models) == []
    # the text listing prints 2.0 GB and a 12-hex ID: both agree, so nothing changes
    changes = plan_import(reg, read_listing_file(CORPUS / "text/basic.txt").models)
    assert "llama3.2-3b-ollama-gguf" not in {c.name for c in changes if c.action == "update"}


def test_import_updates_what_changed_and_keeps_user_fields() -> None:
    reg = imported("text/basic.txt")
    entry = reg.models["llava-7b-ollama-gguf"]
    entry.update(roles=["vision"], deprecated=True, deprecated_reason="old", note="mine")
    entry["capabilities"], entry["capabilities_source"] = ["completion", "vision", "tools"], "show"
    listing = parse_listing("llava:7b  0123456789ab  4.8 GB  now\n")
    changes = plan_import(reg, listing.models)
    assert [(c.action, c.name, dict(c.fields)) for c in changes] == [
        (
            "update",
            "llava-7b-ollama-gguf",
            {
                "digest": ("8dd30f6b0cb1", "0123456789ab"),
                "download_size_bytes": (4_700_000_000, 4_800_000_000),
            },
        )
    ]
    apply_changes(reg, changes)
    assert entry["roles"] == ["vision"] and entry["deprecated"] and entry["note"] == "mine"
    assert entry["capabilities_source"] == "show"  # not downgraded to the name heuristic


def test_import_matches_latest_and_missing_tag() -> None:
    reg = Registry()
    apply_changes(reg, plan_import(reg, [ListedModel(name="llama3")]))
    assert list(reg.models) == ["llama3-ollama-gguf"]
    changes = plan_import(reg, [ListedModel(name="llama3:latest")])
    # the same entry; only the spelling the server lists is recorded
    assert [(c.action, c.name, dict(c.fields)) for c in changes] == [
        ("update", "llama3-ollama-gguf", {"served_model_id": ("llama3", "llama3:latest")})
    ]


def test_import_collision_gets_a_hash_suffix() -> None:
    reg = Registry()
    apply_changes(reg, plan_import(reg, [ListedModel(name="a-b:c")]))
    apply_changes(reg, plan_import(reg, [ListedModel(name="a:b-c")]))
    names = sorted(reg.models)
    assert names[0] == "a-b-c-ollama-gguf" and names[1].startswith("a-b-c-ollama-gguf-h")
    assert reg.models[names[1]]["served_model_id"] == "a:b-c"


# --- deprecate, purge, backfill, list ---------------------------------------------------------


def _with_placeholders() -> Registry:
    reg = imported("text/basic.txt")
    reg.models["model-ollama-gguf"] = {"name": "model-ollama-gguf", "backend": "ollama",
                                       "download_path": None}
    reg.models["model-ollama-gguf-q4"] = {"name": "model-ollama-gguf-q4", "backend": "ollama",
                                          "deprecated": True, "deprecated_reason": "old"}
    reg.models["legacy"] = {"name": "legacy", "placeholder": True}
    reg.models["qwen3-4b-ollama-gguf"].update(deprecated=True, deprecated_reason="replaced")
    return reg


def test_deprecate_placeholders() -> None:
    reg = _with_placeholders()
    changes = plan_deprecate_placeholders(reg)
    assert [c.name for c in changes] == ["legacy", "model-ollama-gguf"]  # q4 already deprecated
    apply_changes(reg, changes)
    assert reg.models["legacy"]["deprecated"] is True
    assert "placeholder" in reg.models["model-ollama-gguf"]["deprecated_reason"]
    assert plan_deprecate_placeholders(reg) == []


def test_purge_deprecated_all_or_placeholders_only() -> None:
    reg = _with_placeholders()
    apply_changes(reg, plan_deprecate_placeholders(reg))
    only = plan_purge(reg, placeholders_only=True)
    assert [c.name for c in only] == ["legacy", "model-ollama-gguf", "model-ollama-gguf-q4"]
    everything = plan_purge(reg)
    assert [c.name for c in everything] == [
        "legacy", "model-ollama-gguf", "model-ollama-gguf-q4", "qwen3-4b-ollama-gguf",
    ]
    apply_changes(reg, only)
    assert "qwen3-4b-ollama-gguf" in reg.models and "legacy" not in reg.models


def test_list_hides_deprecated_unless_asked() -> None:
    reg = _with_placeholders()
    shown = [e["name"] for e in visible(reg)]
    assert "qwen3-4b-ollama-gguf" not in shown and "model-ollama-gguf-q4" not in shown
    assert "qwen3-4b-ollama-gguf" in [e["name"] for e in visible(reg, show_deprecated=True)]


def _store(tmp_path: Path) -> Path:
    store = tmp_path / "models"
    for parts in (
        ("registry.ollama.ai", "library", "llava", "7b"),
        ("registry.ollama.ai", "user", "model", "tag"),
        ("hf.co", "unsloth", "Mistral-Small-3.1-24B-Instruct-2503-GGUF", "Q3_K_XL"),
        ("registry.ollama.ai", "library", "all-minilm", "latest"),
    ):
        path = store.joinpath("manifests", *parts)
        path.parent.mkdir(parents=True)
        path.write_text('{"schemaVersion": 2}')
    return store


def test_manifest_paths(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert manifest_path(store, "llava:7b") == store / "manifests/registry.ollama.ai/library/llava/7b"
    assert manifest_path(store, "all-minilm") == store / "manifests/registry.ollama.ai/library/all-minilm/latest"
    assert resolve_path(store, "user/model:tag") == str(store / "manifests/registry.ollama.ai/user/model/tag")
    assert resolve_path(
        store, "hf.co/unsloth/Mistral-Small-3.1-24B-Instruct-2503-GGUF:Q3_K_XL"
    ).endswith("manifests/hf.co/unsloth/Mistral-Small-3.1-24B-Instruct-2503-GGUF/Q3_K_XL")
    assert resolve_path(store, "gemma3:4b") == "ollama://gemma3:4b"
    assert resolve_path(None, "gemma3:4b") == "ollama://gemma3:4b"


def test_models_store_from_env_or_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert models_store({"OLLAMA_MODELS": str(tmp_path)}) == tmp_path
    monkeypatch.setenv("HOME", str(tmp_path))
    assert models_store({}) == tmp_path / ".ollama" / "models"


def test_backfill_fills_only_missing_paths(tmp_path: Path) -> None:
    store = _store(tmp_path)
    reg = imported("text/basic.txt")
    for entry in reg.models.values():
        entry["download_path"] = None
    reg.models["gemma3-4b-ollama-gguf"]["download_path"] = "/kept"
    del reg.models["qwen3-4b-ollama-gguf"]["download_format"]
    reg.models["other"] = {"name": "other", "backend": "vllm", "download_path": None}
    changes = plan_backfill(reg, store)
    got = {c.name: {k: v[1] for k, v in c.fields.items()} for c in changes}
    assert got == {
        "all-minilm-ollama-gguf": {
            "download_path": str(store / "manifests/registry.ollama.ai/library/all-minilm/latest")
        },
        "llama3.2-3b-ollama-gguf": {"download_path": "ollama://llama3.2:3b"},
        "llava-7b-ollama-gguf": {
            "download_path": str(store / "manifests/registry.ollama.ai/library/llava/7b")
        },
        "qwen3-4b-ollama-gguf": {"download_path": "ollama://qwen3:4b", "download_format": "gguf"},
    }
    apply_changes(reg, changes)
    assert plan_backfill(reg, store) == []


# --- locking and concurrency -----------------------------------------------------------------


def test_writes_go_through_a_temp_file_and_keep_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    path.write_text('{"models": {}, "version": 1}\n')
    path.chmod(0o640)
    inode = path.stat().st_ino
    with locked(path) as reg:
        reg.models["x"] = {"name": "x"}
    assert path.stat().st_ino != inode  # replaced, not rewritten in place
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reg.json"]  # no lock file left


def test_unchanged_registry_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    with locked(path) as reg:
        reg.models["x"] = {"name": "x"}
    inode = path.stat().st_ino
    with locked(path):
        pass
    assert path.stat().st_ino == inode


def test_a_held_lock_times_out_with_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "reg.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pytest_ollama_regress.catalogue.model_registry import locked
            with locked({str(path)!r}):
                print("held", flush=True)
                time.sleep(10)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RegistryError, match=r"locked by another writer for 0\.3s"), locked(path, timeout=0.3):
            pass
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_the_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"), locked(tmp_path / "no" / "reg.json"):
        pass


def test_concurrent_importers_leave_a_valid_complete_file(tmp_path: Path) -> None:
    """Eight ``ollama-regress models import`` processes at once, each with its own models."""
    path = tmp_path / "reg.json"
    workers, per_worker = 8, 5
    procs = []
    for w in range(workers):
        listing = tmp_path / f"list{w}.txt"
        listing.write_text("NAME  ID  SIZE  MODIFIED\n" + "".join(
            f"w{w}/m{r}:7b  {w:06x}{r:06x}  {r + 1}.5 GB  {r} days ago\n" for r in range(per_worker)
        ) + "shared:latest  abcdef123456  1.0 GB  now\n")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "pytest_ollama_regress.cli", "models", "import",
             "--registry", str(path), "--file", str(listing)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    reg = load_registry(path, missing_ok=False)
    expected = {f"w{w}-m{r}-7b-ollama-gguf" for w in range(workers) for r in range(per_worker)}
    assert set(reg.models) == expected | {"shared-ollama-gguf"}
    assert path.read_text() == reg.dumps()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("list"))
    assert leftovers == ["reg.json"]  # nor a lock file, nor a temp file
