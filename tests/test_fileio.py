"""Crash-safe replacement of files and directories (dagh.fileio)."""

import pytest

from dagh import fileio


def _tree(root, text):
    root.mkdir()
    (root / "a.txt").write_text(text)
    (root / "sub").mkdir()
    (root / "sub" / "b.txt").write_text(text * 2)
    return root


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2 exchange", "two renames"])
def test_atomic_directory_replaces_the_old_one(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(fileio, "exchange_paths", lambda a, b: False)
    target = _tree(tmp_path / "out", "old")
    with fileio.atomic_directory(target, force=True) as partial:
        (partial / "a.txt").write_text("new")
    assert (target / "a.txt").read_text() == "new" and not (target / "sub").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no partial, no old copy left


def test_a_failed_directory_write_leaves_the_old_one(tmp_path):
    target = _tree(tmp_path / "out", "old")
    with pytest.raises(RuntimeError), fileio.atomic_directory(target, force=True) as partial:
        (partial / "a.txt").write_text("new")
        raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_updated_directory_changes_a_linked_copy_and_never_the_original(tmp_path):
    target = _tree(tmp_path / "out", "old")
    original = target / "a.txt"
    with pytest.raises(RuntimeError), fileio.updated_directory(target) as work:
        assert (work / "sub" / "b.txt").read_text() == "oldold"
        assert (work / "a.txt").stat().st_ino == original.stat().st_ino  # a link, not a copy
        fileio.atomic_write_text(work / "a.txt", "new")  # replaced, not written into
        raise RuntimeError("crash")
    assert original.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with fileio.updated_directory(target) as work:
        fileio.atomic_write_text(work / "a.txt", "new")
        (work / "c.txt").write_text("added")
    assert (target / "a.txt").read_text() == "new" and (target / "c.txt").read_text() == "added"
    assert (target / "sub" / "b.txt").read_text() == "oldold"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exchange_swaps_two_directories(tmp_path):
    a, b = _tree(tmp_path / "a", "A"), _tree(tmp_path / "b", "B")
    if not fileio.exchange_paths(a, b):
        pytest.skip("this kernel or filesystem cannot exchange paths (the two-rename path is tested above)")
    assert (a / "a.txt").read_text() == "B" and (b / "a.txt").read_text() == "A"
