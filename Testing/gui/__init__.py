"""GUI test tier: MedSeg's module panels and Segment Editor effect run on real Qt widgets.

The module files (MedSegThreshold.py, MedSegDNN.py, SegmentEditorEffect.py) and their .ui files run
unchanged on PySide6 (Qt 6, ``QT_QPA_PLATFORM=offscreen``), over Slicer's real MRML scene, segment
editor logic, slice logics and displayable managers from the ``slicer-core`` wheel, and Slicer's
real ``slicer/util.py`` (loadUI, childWidgetVariables, tryWithErrorDisplay, reloadScriptedModule).
What the Slicer application would supply, and where each behaviour is taken from:

=====================  ===============================================  ===============================
module here            stands in for                                    behaviour taken from
=====================  ===============================================  ===============================
pythonqt.py (``qt``)   PythonQt's view of Qt                            MeVisLab/pythonqt src/
                                                                        PythonQtInstanceWrapper.cpp,
                                                                        PythonQtClassInfo.cpp,
                                                                        PythonQtSignalReceiver.cpp
ctk_widgets.py         ctkCollapsibleButton, ctkCollapsibleGroupBox,    commontk/CTK Libs/Widgets/*.h
(``ctk``)              ctkRangeWidget, ctkMessageBox                    ctkMessageBox.cpp
mrml_widgets.py        qMRMLWidget, qMRMLNodeComboBox,                  Slicer Libs/MRML/Widgets/*.h,
                       qMRMLCheckableNodeComboBox, qMRMLTableView       qMRMLNodeComboBox.cxx
views.py               qSlicerLayoutManager, qMRMLSliceWidget/View      Slicer qMRMLSliceWidget.h,
                       (real vtkMRMLSliceLogic + displayable managers,  qMRMLSliceView.h
                       offscreen EGL render windows)
parameter_node.py      slicer.parameterNodeWrapper (serializers,        Slicer Base/Python/slicer/
                       validators, GUI connectors)                      parameterNodeWrapper/*.py
effect_host.py         qSlicerSegmentEditorScriptedEffect and the       Slicer Modules/Loadable/
                       editor widget's effect handling                  Segmentations/EditorEffects/
app.py                 slicer.app, module panels                        Slicer Base/Python/slicer/
                       (qSlicerScriptedLoadableModuleWidget),           ScriptedLoadableModule.py,
                       SegmentEditorEffects base class, effect factory  AbstractScriptedSegmentEditor-
                                                                        Effect.py
dialogs.py             the user answering modal dialogs; Slicer's       Slicer Base/Python/slicer/
                       main loop calling slots (a watchdog rejects      util.py (messageBox,
                       a dialog nobody answers)                         confirm*Display)
=====================  ===============================================  ===============================

Rules kept (tested in test_gui_harness.py): Qt properties are attributes and win over methods;
assigning an unknown attribute to a Qt object fails; ``connect('sig(args)', f)`` passes ``f`` only
the arguments it takes; an unknown signal fails; every exception raised inside a slot or a VTK
observer fails the test that caused it (conftest.py), as does anything still reacting when the
scene is closed after the test.  Each stand-in has only the API of its header that MedSeg uses;
anything else is an AttributeError, never a silent no-op.

Limits: only the widgets and API MedSeg uses exist; VTK pointer types in signal signatures are
carried as ``PyObject`` (PySide has no converter for them); the loader hides PySide's own child
attributes; slice views render offscreen (no interaction, no slice controller, no 3D view);
qMRMLNodeComboBox does not follow node renames, has no add/remove/edit menu; modal dialogs are
shown as a user sees them (``testingEnabled()`` is False; slicer.util's confirmations build a
real ctkMessageBox) and answered by the test (dialogs.py); one nobody answers is rejected and fails
the test; there is no main window, so slicer.util's error/info/warning displays only log; the parameter-node wrapper supports bool/int/float/str/node parameters and the six widget
types the .ui files use; CTK's transfer-function views (Slicer's Threshold effect histogram) are
not emulated: MedSeg draws its histogram into a QLabel.
"""
