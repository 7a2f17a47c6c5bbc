"""The commands end to end on a tiny configuration, and their error handling."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dagh.cli import eval as eval_cli
from dagh.cli import train as train_cli

TINY = ["--identities", "4", "--train-per-identity", "6", "--test-per-identity", "2", "--epochs", "1",
        "--batch-size", "8", "--bits", "12", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "m.pt"
    result = CliRunner().invoke(train_cli.main, ["-o", str(out), *TINY, "--json", str(out) + ".json"])
    assert result.exit_code == 0, result.output
    assert "mAP" in result.output
    return out


def test_train_writes_checkpoint_and_report(trained):
    report = json.loads(open(str(trained) + ".json").read())
    assert report["bits"] == 12 and 0 <= report["map"] <= 1


def test_eval_prints_and_writes_json(trained, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(eval_cli.main, [str(trained), "--json", str(out), "--topk", "1,5"])
    assert result.exit_code == 0, result.output
    assert "mAP" in result.output and "precision@5" in result.output
    report = json.loads(out.read_text())
    assert set(report["precision_at_k"]) == {"1", "5"}
    v = report["verification"]
    assert v["identity_set"] == "unseen synthetic identities" and v["num_identities"] == 200
    assert set(v["tar_at_far"]) == {"0.01", "0.001", "0.0001"} and 0 <= v["eer"] <= 1
    assert v["target"]["target_far"] == 1e-3 and v["target"]["far_measurable"] is True
    assert v["genuine_pairs"] == sum(v["genuine_histogram"]) == 200 * 6
    assert v["impostor_pairs"] == sum(v["impostor_histogram"]) == 800 * 799 // 2 - 200 * 6
    assert len(v["genuine_histogram"]) == 12 + 1
    assert "verification on unseen synthetic identities" in result.output
    for line in ("TAR@FAR=0.01", "TAR@FAR=0.001", "TAR@FAR=0.0001", "EER", "radius (FAR<=0.001)"):
        assert line in result.output
    rows = [r for r in result.output.splitlines() if r.strip() and r.strip()[0].isdigit() and "%" in r]
    shares = [float(x.rstrip("%")) for r in rows for x in r.split()[1:3]]
    assert rows and abs(sum(shares[0::2]) - 100) < 0.5 and abs(sum(shares[1::2]) - 100) < 0.5  # the histograms


def test_eval_target_far(trained, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(eval_cli.main, [str(trained), "--json", str(out), "--target-far", "0.2"])
    assert result.exit_code == 0, result.output
    target = json.loads(out.read_text())["verification"]["target"]
    assert target["target_far"] == 0.2 and target["far"] <= 0.2 and "radius (FAR<=0.2)" in result.output
    bad = CliRunner().invoke(eval_cli.main, [str(trained), "--target-far", "1.5"])
    assert bad.exit_code == 2 and "--target-far" in bad.output and "0<x<1" in bad.output


def test_eval_refuses_other_bit_length(trained):
    result = CliRunner().invoke(eval_cli.main, [str(trained), "--bits", "48"])
    assert result.exit_code == 2
    assert "12-bit model, not 48-bit" in result.output


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/faces"], "does not exist"),
    (["--bits", "4"], "from 8 to 256"),
])
def test_train_bad_input_exits_2_without_traceback(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "dagh.cli.train", "-o", str(tmp_path / "x.pt"), *args],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_empty_dataset_folder(tmp_path):
    (tmp_path / "faces").mkdir()
    result = CliRunner().invoke(train_cli.main, ["-o", str(tmp_path / "x.pt"), "--data", str(tmp_path / "faces")])
    assert result.exit_code == 2 and "empty" in result.output


def test_eval_missing_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dagh.cli.eval", str(tmp_path / "none.pt")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
