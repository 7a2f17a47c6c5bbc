"""Make a small export directory for the torch-free runtime test run (make test-runtime).

    python tests/make_export_fixture.py OUT_DIR
"""

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagh.export.pipeline import ExportOptions, export_checkpoint  # noqa: E402
from tests.conftest import make_checkpoint  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = make_checkpoint(Path(tmp) / "m.pt", bits=24)
        export_checkpoint(ckpt, out, ExportOptions(fp16=True, force=True), log=lambda m: None)
    print(out)
