"""The ``ctk`` module: the CTK widgets MedSeg's .ui files and effect use, as real Qt widgets.

Each class exposes the properties, signals and slots of its CTK header (commontk/CTK,
Libs/Widgets/<class>.h) that PythonQt would wrap, and nothing else; behaviour is CTK's where a
test can see it (collapsing hides the contents, the range widget keeps minimum <= maximum and
emits valuesChanged once per change).
"""
from PySide6 import QtCore, QtWidgets

from . import pythonqt as qt

Property, Signal, Slot = QtCore.Property, QtCore.Signal, QtCore.Slot


class ctkCollapsibleButton(qt.PythonQtObject, QtWidgets.QAbstractButton):
    """ctkCollapsibleButton.h: a checkable header button; ``collapsed`` hides the children."""

    contentsCollapsed = Signal(bool)

    def __init__(self, parent=None):
        QtWidgets.QAbstractButton.__init__(self, parent)
        self._collapsed = False
        self.setCheckable(True)
        self.setChecked(True)
        self.setContentsMargins(0, 24, 0, 0)
        QtCore.QObject.connect(self, QtCore.SIGNAL("toggled(bool)"), self._onToggled)

    def _onToggled(self, checked):
        self.setCollapsed(not checked)

    def _getCollapsed(self):
        return self._collapsed

    @Slot(bool)
    def setCollapsed(self, collapsed):
        if collapsed == self._collapsed:
            return
        self._collapsed = bool(collapsed)
        QtWidgets.QAbstractButton.setChecked(self, not collapsed)
        for child in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly):
            child.setVisible(not collapsed)
        self.updateGeometry()
        self.contentsCollapsed.emit(self._collapsed)

    collapsed = Property(bool, _getCollapsed, setCollapsed, notify=contentsCollapsed)

    def sizeHint(self):
        content = self.layout().sizeHint() if self.layout() and not self._collapsed else QtCore.QSize(0, 0)
        return QtCore.QSize(max(200, content.width()), 24 + content.height())

    def minimumSizeHint(self):
        return self.sizeHint()

    def paintEvent(self, event):
        painter = QtWidgets.QStylePainter(self)
        option = QtWidgets.QStyleOptionButton()
        option.initFrom(self)
        W, H = QtWidgets.QWidget.width(self), QtWidgets.QWidget.height(self)
        option.rect = QtCore.QRect(0, 0, W, 22)
        option.text = ("▸ " if self._collapsed else "▾ ") + QtWidgets.QAbstractButton.text(self)
        painter.drawControl(QtWidgets.QStyle.ControlElement.CE_PushButton, option)
        if not self._collapsed:
            painter.setPen(QtWidgets.QWidget.palette(self).mid().color())
            painter.drawRect(0, 22, W - 1, H - 23)


class ctkCollapsibleGroupBox(qt.PythonQtObject, QtWidgets.QGroupBox):
    """ctkCollapsibleGroupBox.h: a checkable QGroupBox; unchecked = collapsed (children hidden)."""

    def __init__(self, parent=None):
        QtWidgets.QGroupBox.__init__(self, parent)
        self.setCheckable(True)
        self.setChecked(True)
        QtCore.QObject.connect(self, QtCore.SIGNAL("toggled(bool)"), self._expand)

    def childEvent(self, event):   # ctkCollapsibleGroupBox::childEvent: children added later follow the state
        QtWidgets.QGroupBox.childEvent(self, event)
        if event.added() and isinstance(event.child(), QtWidgets.QWidget) and not self.isChecked():
            event.child().setVisible(False)

    def _expand(self, expand):
        for child in self.findChildren(QtWidgets.QWidget, options=QtCore.Qt.FindChildOption.FindDirectChildrenOnly):
            child.setVisible(expand)
        self.setMaximumHeight(16777215 if expand else 22)   # CTK: collapsedHeight, then only the title shows

    def _getCollapsed(self):
        return not self.isChecked()

    def _setCollapsed(self, collapsed):
        self.setChecked(not collapsed)

    collapsed = Property(bool, _getCollapsed, _setCollapsed)


class ctkRangeWidget(qt.PythonQtObject, QtWidgets.QWidget):
    """ctkRangeWidget.h: minimum/maximum spin boxes around a range; values clamp to the range and
    minimumValue <= maximumValue; ``valuesChanged(double,double)`` on every change."""

    valuesChanged = Signal(float, float)
    minimumValueChanged = Signal(float)
    maximumValueChanged = Signal(float)
    rangeChanged = Signal(float, float)

    def __init__(self, parent=None):
        QtWidgets.QWidget.__init__(self, parent)
        self._min, self._max, self._lo, self._hi = 0.0, 99.0, 0.0, 99.0
        self._step, self._decimals, self._alignment = 1.0, 2, QtCore.Qt.AlignmentFlag.AlignVCenter
        self._lowBox, self._highBox = QtWidgets.QDoubleSpinBox(self), QtWidgets.QDoubleSpinBox(self)
        self._slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, self)
        self._slider.setEnabled(False)   # shows where the range lies; the spin boxes edit it
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._lowBox)
        layout.addWidget(self._slider, 1)
        layout.addWidget(self._highBox)
        self._lowBox.valueChanged.connect(lambda v: self.setValues(v, max(v, self._hi)))
        self._highBox.valueChanged.connect(lambda v: self.setValues(min(v, self._lo), v))
        self._sync()

    def _sync(self):
        for box, value in ((self._lowBox, self._lo), (self._highBox, self._hi)):
            box.blockSignals(True)
            box.setDecimals(self._decimals)
            box.setRange(self._min, self._max)
            box.setSingleStep(self._step)
            box.setValue(value)
            box.blockSignals(False)

    @Slot(float, float)
    def setRange(self, minimum, maximum):
        minimum, maximum = float(minimum), float(max(minimum, maximum))
        self._min, self._max = minimum, maximum
        self.rangeChanged.emit(minimum, maximum)
        self.setValues(self._lo, self._hi)

    def _setMinimum(self, value):
        self.setRange(value, max(value, self._max))

    def _setMaximum(self, value):
        self.setRange(min(value, self._min), value)

    @Slot(float, float)
    def setValues(self, lower, upper):
        lower, upper = sorted((min(max(float(lower), self._min), self._max), min(max(float(upper), self._min), self._max)))
        changed = (lower, upper) != (self._lo, self._hi)
        lowChanged, highChanged = lower != self._lo, upper != self._hi
        self._lo, self._hi = lower, upper
        self._sync()
        if lowChanged:
            self.minimumValueChanged.emit(lower)
        if highChanged:
            self.maximumValueChanged.emit(upper)
        if changed:
            self.valuesChanged.emit(lower, upper)

    @Slot(float)
    def setMinimumValue(self, value):
        self.setValues(value, max(value, self._hi))

    @Slot(float)
    def setMaximumValue(self, value):
        self.setValues(min(value, self._lo), value)

    @Slot(int)
    def setDecimals(self, decimals):
        self._decimals = int(decimals)
        self._sync()

    @Slot()
    def reset(self):
        self.setValues(self._min, self._max)

    def _setStep(self, step):
        self._step = float(step)
        self._sync()

    def _setAlignment(self, alignment):
        self._alignment = alignment

    minimum = Property(float, lambda self: self._min, _setMinimum)
    maximum = Property(float, lambda self: self._max, _setMaximum)
    minimumValue = Property(float, lambda self: self._lo, setMinimumValue)
    maximumValue = Property(float, lambda self: self._hi, setMaximumValue)
    singleStep = Property(float, lambda self: self._step, _setStep)
    decimals = Property(int, lambda self: self._decimals, setDecimals)
    spinBoxAlignment = Property(QtCore.Qt.AlignmentFlag, lambda self: self._alignment, _setAlignment)


class ctkMessageBox(qt.PythonQtObject, QtWidgets.QMessageBox):
    """ctkMessageBox.h/.cpp: a QMessageBox with a "Don't show this message again" check box
    (``dontShowAgain``, ``dontShowAgainVisible``, ``dontShowAgainSettingsKey`` read from and written
    to QSettings for an accepting button); ``exec_`` is PythonQt's name for ``exec``.  A box whose
    ``dontShowAgain`` is set is shown and clicked at once on its AcceptRole button, as CTK's setVisible."""

    def __init__(self, parent=None):
        QtWidgets.QMessageBox.__init__(self, parent)
        self._key = ""
        self._check = QtWidgets.QCheckBox("Don't show this message again", self)
        self._check.setObjectName("ctk_msgbox_dontshowcheckbox")
        self._check.hide()
        QtCore.QObject.connect(self, QtCore.SIGNAL("finished(int)"), self._onFinished)

    def _setDontShowAgainVisible(self, visible):
        if not visible:
            self._check.hide()
            return
        self._check.setVisible(True)
        self.setCheckBox(self._check)

    def _setKey(self, key):
        if key == self._key:
            return
        self._key = key
        if key:
            self._check.setChecked(QtCore.QSettings().value(key, -1, int) != -1)
        self._setDontShowAgainVisible(bool(key))

    def _onFinished(self, result):
        button = QtWidgets.QMessageBox.clickedButton(self)
        if self._key and button is not None and self.buttonRole(button) == QtWidgets.QMessageBox.ButtonRole.AcceptRole:
            QtCore.QSettings().setValue(self._key, result if self._check.isChecked() else -1)

    def setVisible(self, visible):
        accept = [b for b in QtWidgets.QMessageBox.buttons(self)
                  if self.buttonRole(b) == QtWidgets.QMessageBox.ButtonRole.AcceptRole]
        QtWidgets.QMessageBox.setVisible(self, visible)
        if visible and self._check.isChecked() and accept:
            QtCore.QTimer.singleShot(0, accept[0].click)

    def exec_(self):
        if QtCore.QThread.currentThread().loopLevel() == 0:
            qt.record_error("ctkMessageBox.exec_", RuntimeError, RuntimeError(
                "a message box was opened outside any event loop: Slicer's messageBox() calls deleteLater() first, "
                "so Qt deletes the box as soon as exec_() starts; click through gui.dialogs.click (Slicer calls "
                f"slots from its main loop): [{QtWidgets.QWidget.windowTitle(self)}] {QtWidgets.QMessageBox.text(self)}"),
                None)
        return QtWidgets.QMessageBox.exec(self)

    dontShowAgain = Property(bool, lambda self: self._check.isChecked(), lambda self, v: self._check.setChecked(v))
    dontShowAgainVisible = Property(bool, lambda self: self._check.isVisibleTo(self), _setDontShowAgainVisible)
    dontShowAgainSettingsKey = Property(str, lambda self: self._key, _setKey)


for _cls in (ctkCollapsibleButton, ctkCollapsibleGroupBox, ctkRangeWidget, ctkMessageBox):
    _cls.__module__ = "ctk"
    qt.CUSTOM_WIDGETS[_cls.__name__] = _cls
    qt._WRAPPER_CLASSES.add(_cls)
