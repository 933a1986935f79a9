"""MedSegCore's folders are its architecture: these tests parse the sources and fail when a file
breaks the layering that README's Layout section describes.

* only ``MedSegCore/mrml`` imports ``slicer`` or VTK (at the top of a file or inside a function);
* the engine folders (``image``, ``threshold``, ``evaluation``) never import the adapter, ``dnn``,
  ``train`` or ``cli``; ``dnn`` and ``train`` import the adapter only inside functions;
* nothing but ``__main__`` imports ``cli``;
* each package opens with a docstring; few loose modules at the top; no product file over 450 lines.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORE = os.path.join(ROOT, "MedSegCore")
ADAPTER = "mrml"
ENGINE = ("image", "threshold", "evaluation")
SLICER_MODULES = ("slicer", "vtk", "vtkmodules", "mrml", "qt", "ctk")   # top-level names of Slicer's Python


def core_files():
    out = []
    for folder, _, files in os.walk(CORE):
        if "__pycache__" in folder:
            continue
        out += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return sorted(out)


def package_of(path):
    """'mrml', 'image', ... or '' for a top-level module."""
    rel = os.path.relpath(path, CORE).split(os.sep)
    return rel[0] if len(rel) > 1 else ""


def imports(path):
    """(absolute dotted name, at module level?) of every import in ``path``, relative ones resolved."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
    here = rel[:-1]                                           # the package holding the file
    top_level = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{a.name}" for a in node.names]
        for name in names:
            yield name, id(node) in top_level


FILES = core_files()


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.relpath(p, CORE))
def test_only_the_adapter_imports_slicer_or_vtk(path):
    if package_of(path) == ADAPTER:
        return
    bad = sorted({n for n, _ in imports(path) if n.split(".")[0] in SLICER_MODULES})
    assert not bad, f"{os.path.relpath(path, ROOT)} imports {bad}: move that code into MedSegCore/{ADAPTER}/"


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.relpath(p, CORE))
def test_layering(path):
    package = package_of(path)
    found = list(imports(path))
    def hits(prefixes, top_only=False):
        return sorted({n for n, top in found if (top or not top_only)
                       and any(n == p or n.startswith(p + ".") for p in prefixes)})
    rel = os.path.relpath(path, ROOT)
    if package in ENGINE:
        bad = hits([f"MedSegCore.{p}" for p in (ADAPTER, "dnn", "train", "cli")])
        assert not bad, f"{rel}: the engine imports {bad}"
    if package in ("dnn", "train"):
        bad = hits([f"MedSegCore.{ADAPTER}", "MedSegCore.cli"], top_only=True)
        assert not bad, f"{rel}: imports {bad} at module level (only inside the functions that write nodes)"
    if package != "cli" and os.path.basename(path) != "__main__.py":
        bad = hits(["MedSegCore.cli"])
        assert not bad, f"{rel}: imports the command line {bad}"


def test_every_package_says_what_lives_there():
    for folder, dirs, files in os.walk(CORE):
        if "__init__.py" not in files:
            continue
        with open(os.path.join(folder, "__init__.py"), encoding="utf-8") as f:
            doc = ast.get_docstring(ast.parse(f.read()))
        assert doc and len(doc) > 80, f"{folder}/__init__.py needs a docstring saying what lives there"
        if os.path.basename(folder) in ENGINE + (ADAPTER,):
            assert "import" in doc, f"{folder}/__init__.py should say what it may import"


def test_few_loose_modules_and_no_giant_files():
    loose = sorted(f for f in os.listdir(CORE) if f.endswith(".py") and f not in ("__init__.py", "__main__.py"))
    assert len(loose) <= 5, f"loose modules at MedSegCore's top level: {loose}"
    product = FILES + [os.path.join(d, f) for mod in ("MedSegThreshold", "MedSegDNN")
                       for d, _, fs in os.walk(os.path.join(ROOT, mod)) for f in fs if f.endswith(".py")]
    for path in product:
        with open(path, encoding="utf-8") as f:
            n = sum(1 for _ in f)
        assert n <= 450, f"{os.path.relpath(path, ROOT)} has {n} lines (keep product files under ~450)"


def test_the_checks_see_a_violation(tmp_path, monkeypatch):
    """The parser resolves relative imports and inner-function imports (so the tests above can fail)."""
    pkg = tmp_path / "MedSegCore" / "threshold"
    pkg.mkdir(parents=True)
    bad = pkg / "bad.py"
    bad.write_text("from ..mrml import nodes\n\ndef f():\n    import slicer\n", encoding="utf-8")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    found = dict(imports(str(bad)))
    assert found["MedSegCore.mrml.nodes"] is True and found["slicer"] is False
