"""The training-side doors (torch): dagh-train, dagh-eval, dagh-export, dagh-align, checkpoints, DDH pickles,
calibration data, walked through with bad input. Each must exit 2 with one "error:" line, no traceback,
nothing written, no code run."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

from tests.badinput.corpus import make_images, png_bomb
from tests.badinput.test_runtime_doors import cli

pytest.importorskip("torch", reason="the training doors need torch")


class RunsCode:
    marker = None

    def __reduce__(self):
        return (os.system, (f"touch {RunsCode.marker}",))


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    root = tmp_path_factory.mktemp("training-doors")
    images = make_images(root / "corpus")
    RunsCode.marker = root / "pwned"

    def folder(name: str, bad_file: str | None, people: int = 3, per_person: int = 4):
        target = root / name
        for p in range(people):
            (target / f"person{p}").mkdir(parents=True)
            for i in range(per_person):
                shutil.copy(images["grayscale.png"][0], target / f"person{p}" / f"{i}.png")
        if bad_file is not None:
            source = root / "bomb.png" if bad_file == "bomb.png" else images[bad_file][0]
            shutil.copy(source, target / "person0" / bad_file)
        return target

    (root / "bomb.png").write_bytes(png_bomb())
    paths = {"bomb folder": folder("bomb", "bomb.png"), "zero-byte folder": folder("zero", "zero_bytes.jpg"),
             "text folder": folder("text", "text_named.jpg"), "truncated folder": folder("trunc", "truncated.jpg"),
             "one identity": folder("one", None, people=1)}
    ddh = {"runs code": pickle.dumps((RunsCode(), [1]), protocol=2), "truncated": pickle.dumps(
        (np.zeros((4, 3072), np.uint8), [0, 1, 2, 3]), protocol=2)[:40],
        "wrong shape": pickle.dumps((np.zeros((4, 100), np.uint8), [0, 1, 2, 3]), protocol=2)}
    for name, blob in ddh.items():
        (root / f"ddh-{name}").mkdir()
        (root / f"ddh-{name}" / "part1").write_bytes(blob)
        paths[f"DDH pickle that {name}" if name == "runs code" else f"DDH pickle {name}"] = root / f"ddh-{name}"
    text = root / "notes.pt"
    text.write_text("these are my notes, not a checkpoint\n")
    evil = root / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"format": "dagh-checkpoint", "x": RunsCode()}, handle, protocol=2)
    np.save(root / "float.npy", np.zeros((64, 32, 32, 3), np.float32))
    np.save(root / "small.npy", np.zeros((64, 16, 16, 3), np.uint8))
    np.save(root / "objects.npy", np.array([{"a": 1}] * 40, dtype=object), allow_pickle=True)
    np.save(root / "few.npy", np.zeros((8, 32, 32, 3), np.uint8))
    paths.update({"text checkpoint": text, "code-running checkpoint": evil})
    return root, paths


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from tests.conftest import make_checkpoint

    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", bits=12)


@pytest.mark.parametrize("data, expect", [
    ("bomb folder", "bomb.png"),                       # regression: exited 1 with Pillow's DecompressionBombError
    ("zero-byte folder", "zero_bytes.jpg"), ("text folder", "text_named.jpg"),
    ("truncated folder", "truncated.jpg"), ("one identity", "identit"),
    ("DDH pickle that runs code", "refusing to unpickle"), ("DDH pickle truncated", "not a readable"),
    ("DDH pickle wrong shape", "3072"), ("no such folder", "does not exist"),
])
def test_dagh_train(bad, tmp_path, data, expect):
    root, paths = bad
    source = paths.get(data, root / "absent")
    out = tmp_path / "m.pt"
    cli("train", ["--data", source, "-o", out, "--epochs", 1, "--no-eval", "--quiet"], expect)
    assert not out.exists() and not RunsCode.marker.exists()


@pytest.mark.parametrize("name, expect", [
    ("text checkpoint", "not a dagh checkpoint"),     # regression: printed torch's weights_only paragraphs
    ("code-running checkpoint", "could run code"), ("absent", "does not exist"),
])
@pytest.mark.parametrize("command", ["eval", "export"])
def test_dagh_eval_and_export_on_bad_checkpoints(bad, tmp_path, command, name, expect):
    root, paths = bad
    args = [paths.get(name, root / "absent.pt")] + (["-o", tmp_path / "out"] if command == "export" else [])
    line = cli(command, args, expect)
    assert "weights_only" not in line and "file an issue" not in line
    assert not RunsCode.marker.exists() and not (tmp_path / "out").exists()


def test_a_truncated_checkpoint(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    cli("eval", [tmp_path / "cut.pt"], "not a dagh checkpoint")


def test_a_checkpoint_of_another_length_or_architecture_to_resume(checkpoint, tmp_path):
    cli("train", ["--resume", checkpoint, "--bits", 48, "-o", tmp_path / "m.pt", "--epochs", 1, "--no-eval",
                  "--quiet"], "12-bit")
    cli("train", ["--resume", checkpoint, "--model", "ddh", "--bits", 12, "-o", tmp_path / "m.pt", "--epochs", 1,
                  "--no-eval", "--quiet"], "different architecture")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("calib, expect", [
    ("float.npy", "uint8"), ("small.npy", "16x16"), ("objects.npy", "cannot read"), ("few.npy", "at least 32"),
    ("absent.npy", "does not exist"), ("bomb folder", "bomb.png"),
])
def test_dagh_export_calibration_data(bad, checkpoint, tmp_path, calib, expect):
    root, paths = bad
    source = paths.get(calib, root / calib)
    cli("export", [checkpoint, "-o", tmp_path / "out", "--int8", "--calib-data", source], expect)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))


def test_dagh_export_into_a_non_empty_directory(checkpoint, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    cli("export", [checkpoint, "-o", tmp_path / "out"], "not empty")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("photo", ["bomb folder", "text folder"])
def test_dagh_align(bad, tmp_path, photo):
    _, paths = bad
    cli("align", [paths[photo], "-o", tmp_path / "aligned", "--detector", "whole-image", "--strict", "--quiet"],
        "bomb.png" if photo == "bomb folder" else "text_named.jpg")
    assert not (tmp_path / "aligned").exists()
