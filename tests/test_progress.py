"""Progress suits a log: lines, not carriage-return frames, when stderr is not a terminal."""

import io
import subprocess
import sys

from dagh.progress import LogProgress, progress_bar


def test_log_progress_writes_a_line_per_interval_and_one_at_the_end():
    out = io.StringIO()
    bar = LogProgress(range(5), desc="epoch 1/2", unit="batch", interval=0.0, stream=out)
    for _ in bar:
        bar.set_postfix(loss="0.500")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0].startswith("epoch 1/2: 1/5 batch") and lines[-1].startswith("epoch 1/2: 5/5 batch")
    assert "loss=0.500" in lines[-1]


def test_log_progress_is_quiet_between_intervals():
    out = io.StringIO()
    bar = LogProgress(total=1000, interval=3600.0, stream=out)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert out.getvalue() == ""  # short work: the caller's own line (an epoch's summary) is enough


def test_progress_bar_is_a_log_progress_off_a_terminal():
    assert isinstance(progress_bar(range(3)), LogProgress) == (not sys.stderr.isatty())


def test_dagh_train_into_a_log_has_no_carriage_returns(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as stream:
        subprocess.run([sys.executable, "-m", "dagh.cli.train", "-o", str(tmp_path / "m.pt"), "--identities", "4",
                        "--train-per-identity", "6", "--test-per-identity", "2", "--epochs", "2",
                        "--batch-size", "8", "--bits", "12", "--no-eval"],
                       stdout=stream, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "\r" not in text and "\x1b[" not in text
    assert "epoch 1/2:" in text and "epoch 2/2:" in text
