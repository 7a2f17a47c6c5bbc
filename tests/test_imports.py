"""Every module imports; every CLI answers --help; the torch-free parts stay torch-free."""

import importlib
import pkgutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import dagh

MODULES = sorted(m.name for m in pkgutil.walk_packages(dagh.__path__, "dagh."))


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


CLIS = ["dagh.cli.train", "dagh.cli.eval", "dagh.cli.export", "dagh.cli.profile", "dagh.cli.align", "dagh.cli.gallery",
        "dagh.cli.engine", "dagh.cli.doctor"]


@pytest.mark.parametrize("name", CLIS)
def test_cli_help(name):
    result = CliRunner().invoke(importlib.import_module(name).main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "Example" in result.output


@pytest.mark.parametrize("name", ["dagh", "dagh.errors", "dagh.manifest", "dagh.eval.metrics", "dagh.runtime",
                                  "dagh.runtime.preprocess", "dagh.data.synthetic"])
def test_torch_free_modules_do_not_import_torch(name):
    code = f"import sys, {name}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", f"importing {name} imported torch"


def test_optional_require_names_the_extra():
    from dagh._optional import require
    from dagh.errors import DependencyError

    with pytest.raises(DependencyError, match=r"pip install 'dagh\[export\]'"):
        require("surely_not_a_module_xyz", extra="export", purpose="ONNX export")
