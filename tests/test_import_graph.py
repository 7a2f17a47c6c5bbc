"""No import circle anywhere in dagh, lazy imports included; the checker itself catches one."""

from pathlib import Path

import dagh
from tests.import_graph import cycles, import_graph

PACKAGE = Path(dagh.__file__).parent


def test_dagh_has_no_import_cycle():
    found = cycles(import_graph(PACKAGE))
    assert not found, "import circles (break them: move the shared part down a layer): " + "; ".join(
        " <-> ".join(c) for c in found)


def test_the_checker_finds_a_cycle_through_a_lazy_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ..c import thing\n")  # relative
    (pkg / "c.py").write_text("def thing():\n    import pkg.a  # lazy, still an edge\n")
    (pkg / "d.py").write_text("import pkg.a\n")  # imports into the circle, not part of it
    assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_the_runtime_rooms_import_one_way():
    """DESIGN.md: recognizer -> face, encode, search, gallery -> preprocess; runtime never reaches up."""
    graph = import_graph(PACKAGE)
    for module, targets in graph.items():
        if module.startswith("dagh.runtime"):
            upward = [t for t in targets if not t.startswith("dagh.runtime")
                      and t not in ("dagh", "dagh.errors", "dagh.manifest", "dagh.fileio", "dagh._optional")]
            assert not upward, f"{module} imports {upward}: the runtime imports only errors/manifest/fileio"
        if module.startswith(("dagh.runtime.search.", "dagh.runtime.encode.")):
            assert not any(t.startswith("dagh.runtime.gallery") for t in targets), module
    backends = ["dagh.runtime.search.cpu", "dagh.runtime.search.gpu", "dagh.runtime.search.reference"]
    for backend in backends:
        assert "dagh.runtime.search.index" not in graph[backend], f"{backend} imports the index that uses it"
