"""Static checks for what no machine here can run: the Qt panels and the CMake packaging.

* every ``self.ui.<name>`` a module uses exists in its ``.ui`` file, with a class fitting its name;
* every widget bound to the typed parameter node (``SlicerParameterName``) names a parameter of
  that node, with a widget class Slicer's parameterNodeWrapper can connect to the parameter's type;
* every script and resource a CMakeLists lists exists, and every one on disk is listed.
"""
import ast
import os
import re
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ["MedSegThreshold", "MedSegDNN"]

# Widget name suffix -> classes allowed (naming convention of Slicer module templates).
SUFFIX_CLASSES = {
    "Button": {"QPushButton", "QToolButton", "ctkMenuButton", "ctkCheckablePushButton"},
    "CheckBox": {"QCheckBox"},
    "ComboBox": {"QComboBox", "ctkComboBox"},
    "Selector": {"qMRMLNodeComboBox", "qMRMLSegmentSelectorWidget", "qMRMLCheckableNodeComboBox"},
    "SpinBox": {"QSpinBox", "QDoubleSpinBox", "ctkDoubleSpinBox"},
    "Label": {"QLabel"},
    "LineEdit": {"QLineEdit"},
    "ProgressBar": {"QProgressBar"},
    "PathLineEdit": {"ctkPathLineEdit", "QLineEdit"},
    "TableView": {"qMRMLTableView", "QTableWidget", "QTableView"},
    "CollapsibleButton": {"ctkCollapsibleButton"},
    "Slider": {"ctkSliderWidget", "QSlider"},
    "RangeWidget": {"ctkRangeWidget"},
    "TextEdit": {"QTextEdit", "QPlainTextEdit"},
}

# parameterNodeWrapper GUI connectors (Slicer's guiConnectors.py): parameter type -> widget classes.
CONNECTABLE = {
    "bool": {"QCheckBox", "QPushButton"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget"},
    "int": {"QSpinBox", "QSlider"},
    "str": {"QLineEdit", "QTextEdit"},
    "choice": {"QComboBox"},
    "node": {"qMRMLNodeComboBox"},
}


def ui_widgets(module):
    tree = ET.parse(os.path.join(ROOT, module, "Resources", "UI", f"{module}.ui"))
    widgets = {}
    for w in tree.iter("widget"):
        bound = None
        for prop in w.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                bound = prop.findtext("string")
        widgets[w.get("name")] = (w.get("class"), bound)
    return widgets


def module_source(module):
    """The module file and the files of its Lib packages (widgets may live there)."""
    texts = []
    for root, _, files in os.walk(os.path.join(ROOT, module)):
        for f in sorted(files):
            if f.endswith(".py") and (root == os.path.join(ROOT, module) or "Lib" in os.path.basename(root)):
                with open(os.path.join(root, f), encoding="utf-8") as handle:
                    texts.append(handle.read())
    return "\n\x00".join(texts)


def parameter_types(source):
    """{parameter: kind} of the class decorated with @parameterNodeWrapper."""
    for node in (n for text in source.split("\n\x00") for n in ast.parse(text).body):
        if isinstance(node, ast.ClassDef) and any(getattr(d, "id", None) == "parameterNodeWrapper"
                                                  for d in node.decorator_list):
            kinds = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign):
                    text = ast.unparse(item.annotation)
                    if "Choice(" in text:
                        kinds[item.target.id] = "choice"
                    elif "vtkMRML" in text:
                        kinds[item.target.id] = "node"
                    else:
                        base = re.sub(r"Annotated\[(\w+),.*", r"\1", text)
                        kinds[item.target.id] = base
            return kinds
    raise AssertionError("no @parameterNodeWrapper class found")


@pytest.mark.parametrize("module", MODULES)
def test_every_ui_name_used_exists_with_fitting_class(module):
    widgets = ui_widgets(module)
    used = set(re.findall(r"self\.ui\.(\w+)", module_source(module)))
    assert used, f"{module} uses no self.ui widgets?"
    missing = sorted(used - set(widgets))
    assert not missing, f"{module}.py uses widgets missing from {module}.ui: {missing}"
    for name in used:
        cls = widgets[name][0]
        suffixes = [s for s in SUFFIX_CLASSES if name.endswith(s)]
        if suffixes:   # the longest suffix decides (CollapsibleButton, not Button)
            classes = SUFFIX_CLASSES[max(suffixes, key=len)]
            assert cls in classes, f"{module}.ui: {name} is a {cls}, expected one of {sorted(classes)}"


@pytest.mark.parametrize("module", MODULES)
def test_parameter_bindings_match_parameter_node(module):
    kinds = parameter_types(module_source(module))
    bound = {name: (cls, param) for name, (cls, param) in ui_widgets(module).items() if param}
    assert bound, f"{module}.ui binds no widget to the parameter node"
    for name, (cls, param) in bound.items():
        assert param in kinds, f"{module}.ui: {name} is bound to unknown parameter '{param}'"
        assert cls in CONNECTABLE[kinds[param]], (
            f"{module}.ui: {name} ({cls}) cannot be connected to {param} of kind {kinds[param]}")


def cmake_list(path, variable):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(rf"set\({variable}\s+(.*?)\)", text, re.S)
    assert match, f"{path}: no set({variable} ...)"
    module = re.search(r"set\(MODULE_NAME (\w+)\)", text)
    items = match.group(1).split()
    if module:
        items = [i.replace("${MODULE_NAME}", module.group(1)) for i in items]
    return set(items)


def files_on_disk(folder, extensions, skip=("Testing", "__pycache__", ".medseg-cache")):
    """Files the extension ships; ``.medseg-cache`` holds what runs write beside a model (exports, the
    OpenVINO Winograd choice as JSON), git-ignored and never packaged."""
    found = set()
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in skip]
        for f in files:
            if f.endswith(extensions):
                found.add(os.path.relpath(os.path.join(root, f), folder))
    return found


@pytest.mark.parametrize("module", MODULES)
def test_module_cmakelists_lists_exactly_the_files(module):
    folder = os.path.join(ROOT, module)
    cmake = os.path.join(folder, "CMakeLists.txt")
    scripts = cmake_list(cmake, "MODULE_PYTHON_SCRIPTS")
    resources = cmake_list(cmake, "MODULE_PYTHON_RESOURCES")
    for item in scripts | resources:
        assert os.path.isfile(os.path.join(folder, item)), f"{cmake} lists missing file {item}"
    assert files_on_disk(folder, (".py",)) == scripts
    assert files_on_disk(folder, (".ui", ".png", ".svg", ".json")) == resources
    assert f"Resources/UI/{module}.ui" in resources and f"Resources/Icons/{module}.png" in resources
    with open(cmake, encoding="utf-8") as f:
        text = f.read()
    assert "WITH_GENERIC_TESTS" in text and "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text


def test_medsegcore_cmakelists_lists_exactly_the_files():
    folder = os.path.join(ROOT, "MedSegCore")
    cmake = os.path.join(folder, "CMakeLists.txt")
    scripts = cmake_list(cmake, "MedSegCore_PYTHON_SCRIPTS")
    resources = cmake_list(cmake, "MedSegCore_PYTHON_RESOURCES")
    assert files_on_disk(folder, (".py",)) == scripts
    assert files_on_disk(folder, (".json", ".pt", ".md")) == resources


def test_extension_cmakelists():
    with open(os.path.join(ROOT, "CMakeLists.txt"), encoding="utf-8") as f:
        text = f.read()
    assert "project(MedSeg)" in text
    assert re.search(r'set\(EXTENSION_CATEGORY "Segmentation"\)', text)
    assert re.search(r'set\(EXTENSION_DEPENDS "PyTorch"\)', text)
    assert "find_package(Slicer REQUIRED)" in text and "Slicer_EXTENSION_CPACK" in text
    for sub in ["MedSegCore", *MODULES]:
        assert f"add_subdirectory({sub})" in text
    assert os.path.isfile(os.path.join(ROOT, "Resources", "MedSeg.png"))
