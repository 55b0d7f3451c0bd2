"""``ollama-regress boundary`` and ``ollama-regress inventory`` (engine-free parts)."""

from __future__ import annotations

import pytest

from pytest_ollama_regress.cli import main
from tests.test_inventory import FILLED_TABLE, SEED_TABLE


@pytest.fixture(autouse=True)
def no_step_summary(monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def run(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err.splitlines()


def test_boundary_reads_the_seed_table(tmp_path, capsys):
    path = tmp_path / "image_inventory.md"
    path.write_text(SEED_TABLE)
    rc, out, err = run(capsys, "boundary", str(path))
    assert (rc, err) == (0, [])
    # the short ID is the target here; the full image ID stays in the files
    assert out[0].split() == ["Target", "vision", "Notes"]
    assert out[2].split()[:2] == ["4beecd8", "OK?"]
    assert out[-4:] == [
        "order: as given (not every image has a created time)",
        "LKG 4beecd8 FKB 90f0909 boundary 4beecd8..90f0909",
        "unconfirmed status (marked '?'): 4beecd8 90f0909",
        "no git diff: 4beecd8 and 90f0909 have no org.opencontainers.image.revision label",
    ]


def test_boundary_with_custom_paths_and_step_summary(tmp_path, capsys, monkeypatch):
    path = tmp_path / "filled.md"
    path.write_text(FILLED_TABLE)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rc, out, _ = run(capsys, "boundary", str(path), "--paths", "server/images.go,llm",
                     "--markers", "vision")
    assert rc == 0
    assert out[-2:] == [
        "LKG 903c367 FKB 90f0909 boundary 903c367..90f0909",
        "git diff ccccccc..bbbbbbb -- server/images.go llm",
    ]
    assert "git diff ccccccc..bbbbbbb -- server/images.go llm" in summary.read_text()


def test_boundary_merges_several_files(tmp_path, capsys):
    header = "| Digest (short) | Created (UTC) | Revision | VisionStatus |\n|---|---|---|---|\n"
    (tmp_path / "a.md").write_text(header + "| aaaaaaa | 2025-08-01 | r1 | OK |\n")
    (tmp_path / "b.md").write_text(header + "| bbbbbbb | 2025-07-01 | r0 | OK |\n")
    (tmp_path / "c.md").write_text(header + "| ccccccc | 2025-09-01 | r2 | FAIL |\n")
    rc, out, _ = run(capsys, "boundary", *(str(tmp_path / f"{n}.md") for n in "cab"),
                     "--order", "created", "--paths", "x")
    assert rc == 0
    assert [line.split()[0] for line in out[2:5]] == ["bbbbbbb", "aaaaaaa", "ccccccc"]
    assert out[-2:] == ["LKG aaaaaaa FKB ccccccc boundary aaaaaaa..ccccccc", "git diff r1..r2 -- x"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--order", "created"],
         "line 5 (4beecd8) has no created time: fill it or use --order given"),
        (["--markers", "ttft"], ": no status column for ttft (columns: vision)"),
    ],
)
def test_boundary_errors_are_one_line(tmp_path, capsys, args, error):
    path = tmp_path / "seed.md"
    path.write_text(SEED_TABLE)
    rc, out, err = run(capsys, "boundary", str(path), *args)
    assert (rc, out) == (2, [])
    assert len(err) == 1
    assert err[0].startswith(f"ollama-regress: error: {path}")
    assert err[0].endswith(error)


def test_boundary_on_a_malformed_file_names_the_line(tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text("| Digest (short) | VisionStatus |\n|---|---|\n| 4beecd8 | works? maybe |\n")
    rc, _, err = run(capsys, "boundary", str(path))
    assert rc == 2
    assert err == [f"ollama-regress: error: {path} line 3: status 'works? maybe' is not OK, "
                   "FAIL, SKIP, ERROR or ?"]


def test_inventory_rejects_bad_refs_and_suffixes_before_the_engine(capsys):
    rc, out, err = run(capsys, "inventory", "not a ref!")
    assert (rc, out, len(err)) == (2, [], 1)
    assert err[0].startswith("ollama-regress: error: 'not a ref!': malformed image reference")
    rc, _, err = run(capsys, "inventory", "ollama/ollama:0.11.4", "-o", "inv.xlsx")
    assert rc == 2
    assert err == ["ollama-regress: error: -o inv.xlsx: unknown suffix; use .csv, .json or .md, "
                   "or --format"]
