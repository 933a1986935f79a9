"""Modal dialogs on real Qt: shown as Slicer shows them to a user, answered by the test, never hanging.

The GUI tier runs with ``slicer.app.testingEnabled()`` False, so Slicer's real ``slicer/util.py``
takes the path a user sees: ``confirmOkCancelDisplay`` / ``confirmYesNoDisplay`` ->
``_messageDisplay`` -> ``messageBox``, which builds a ``ctk.ctkMessageBox`` (ctk_widgets.py, a real
QMessageBox), calls ``deleteLater()`` and then ``exec_()`` (Slicer Base/Python/slicer/util.py,
as shipped in slicer-core 5.13).  ``errorDisplay`` / ``infoDisplay`` / ``warningDisplay`` pass
``mainWindowNeeded=True`` and there is no ``qSlicerMainWindow`` here, so they only log, as in
Slicer without a main window.

A test answers a dialog with :func:`answer` (a button clicked with QTest once the dialog is the
application's active modal widget) and clicks the button that opens it with :func:`in_event_loop`:
Slicer calls slots from its running main loop, and a ``deleteLater()`` posted outside any event
loop would delete the box as soon as its own ``exec_()`` loop starts.  The watchdog (a 50 ms
QTimer started by :func:`install`) rejects a dialog nobody answers within :data:`UNANSWERED_S`
seconds (at once inside :func:`no_dialog`) and records the failure: a test fails with the
dialog's title and text instead of hanging.
"""
import contextlib
import time

from PySide6 import QtCore, QtTest, QtWidgets

from . import pythonqt as qt

UNANSWERED_S = 5.0
_QUEUE = []          # pending Answer objects, first come first served
_STATE = {"timer": None, "seen": {}, "strict": 0}


class Answer:
    """What the test saw of the dialog it answered: ``title``, ``text``, ``buttons`` (texts, '&' removed)."""

    def __init__(self, button, check=None):
        self.button, self.check = button, check
        self.shown, self.title, self.text, self.buttons = False, "", "", []


def describe(widget) -> str:
    title = QtWidgets.QWidget.windowTitle(widget)
    text = QtWidgets.QMessageBox.text(widget) if isinstance(widget, QtWidgets.QMessageBox) else ""
    return f"[{title}] {text}"


def _buttons(widget):
    return [b for b in widget.findChildren(QtWidgets.QAbstractButton)
            if QtWidgets.QWidget.isVisible(b) and not isinstance(b, QtWidgets.QCheckBox)]


def _label(button):
    return QtWidgets.QAbstractButton.text(button).replace("&", "")


def _respond(widget, answer):
    answer.shown = True
    answer.title = QtWidgets.QWidget.windowTitle(widget)
    answer.text = QtWidgets.QMessageBox.text(widget) if isinstance(widget, QtWidgets.QMessageBox) else ""
    buttons = _buttons(widget)
    answer.buttons = [_label(b) for b in buttons]
    if answer.check is not None:
        answer.check(answer)                  # e.g. change the bundle while the question is open
    chosen = [b for b in buttons if _label(b) == answer.button]
    if len(chosen) != 1:
        raise AssertionError(f"dialog {describe(widget)!r} has no button '{answer.button}' (it has {answer.buttons})")
    QtTest.QTest.mouseClick(chosen[0], QtCore.Qt.MouseButton.LeftButton)


def _reject(widget, why):
    qt.record_error("a modal dialog", AssertionError, AssertionError(f"{why}: {describe(widget)}"), None)
    escape = widget.escapeButton() if isinstance(widget, QtWidgets.QMessageBox) else None
    if escape is not None:
        escape.click()
    else:
        QtWidgets.QDialog.reject(widget)


def _tick():
    widget = QtWidgets.QApplication.activeModalWidget()
    seen = _STATE["seen"]
    if widget is None:
        seen.clear()
        return
    try:
        if _QUEUE:
            seen.pop(id(widget), None)
            _respond(widget, _QUEUE.pop(0))
        elif _STATE["strict"]:
            _reject(widget, "a dialog was shown where the test expects none")
        elif time.monotonic() - seen.setdefault(id(widget), time.monotonic()) > UNANSWERED_S:
            _reject(widget, f"a modal dialog was not answered within {UNANSWERED_S:.0f} s and was rejected")
    except Exception as exc:  # noqa: BLE001 - recorded: the test fails, the dialog is closed
        qt.record_error("answering a modal dialog", type(exc), exc, exc.__traceback__)
        _reject(widget, "the dialog could not be answered")


def install():
    """Start the watchdog timer (once per QApplication)."""
    if _STATE["timer"] is None:
        timer = QtCore.QTimer()
        timer.setInterval(50)
        timer.timeout.connect(_tick)
        timer.start()
        _STATE["timer"] = timer


@contextlib.contextmanager
def answer(button, check=None):
    """The next modal dialog shown inside the block is answered by clicking ``button`` (its text,
    '&' removed, e.g. "Yes"); ``check(answer)`` runs first, with the dialog still open.  Yields
    the :class:`Answer`; fails if no dialog was shown."""
    record = Answer(button, check)
    _QUEUE.append(record)
    try:
        yield record
    finally:
        if record in _QUEUE:
            _QUEUE.remove(record)
    assert record.shown, f"no dialog was shown (the test meant to answer one with '{button}')"


@contextlib.contextmanager
def no_dialog():
    """Inside the block any modal dialog is a failure, rejected at once."""
    _STATE["strict"] += 1
    try:
        yield
    finally:
        _STATE["strict"] -= 1


def in_event_loop(function, *args):
    """Call ``function(*args)`` from inside a running Qt event loop, as Slicer's main loop calls a
    slot when the user clicks; returns its result, re-raises what it raised."""
    loop, outcome = QtCore.QEventLoop(), {}

    def call():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # noqa: B036 - re-raised in the test below
            outcome["error"] = exc
        finally:
            loop.quit()

    QtCore.QTimer.singleShot(0, call)
    loop.exec()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def click(button):
    """A left click on ``button`` from inside the event loop (see :func:`in_event_loop`)."""
    in_event_loop(QtTest.QTest.mouseClick, button, QtCore.Qt.MouseButton.LeftButton)
    QtWidgets.QApplication.processEvents()
