"""Modal dialogs as a user meets them (dialogs.py): Slicer's real slicer.util builds a real
ctkMessageBox, the test answers it, and a dialog nobody answers fails the test instead of hanging."""
import time

import pytest
from PySide6 import QtWidgets

import slicer
from gui import ctk_widgets, dialogs


def _ask(function, *args, **kwargs):
    return dialogs.in_event_loop(lambda: function(*args, **kwargs))


@pytest.mark.parametrize("function, button, expected", [
    (slicer.util.confirmYesNoDisplay, "Yes", True), (slicer.util.confirmYesNoDisplay, "No", False),
    (slicer.util.confirmOkCancelDisplay, "OK", True), (slicer.util.confirmOkCancelDisplay, "Cancel", False)])
def test_confirmations_are_real_message_boxes(function, button, expected):
    seen = []
    with dialogs.answer(button, check=lambda a: seen.append(QtWidgets.QApplication.activeModalWidget())) as box:
        assert _ask(function, "Run it?", "A title") is expected
    assert box.title == "A title" and box.text == "Run it?"
    yes_no = function is slicer.util.confirmYesNoDisplay
    assert sorted(box.buttons) == sorted(["Yes", "No"] if yes_no else ["OK", "Cancel"])
    widget = seen[0]
    assert isinstance(widget, ctk_widgets.ctkMessageBox)              # slicer.util.messageBox: ctk.ctkMessageBox
    assert QtWidgets.QMessageBox.icon(widget) == QtWidgets.QMessageBox.Icon.Question


def test_an_unanswered_dialog_is_rejected_and_fails_the_test(no_slot_errors, monkeypatch):
    monkeypatch.setattr(dialogs, "UNANSWERED_S", 0.3)
    start = time.monotonic()
    assert _ask(slicer.util.confirmYesNoDisplay, "Nobody answers this") is False
    assert time.monotonic() - start < 5
    (where, error, text), = no_slot_errors
    assert "not answered" in str(error) and "Nobody answers this" in str(error)
    no_slot_errors.clear()


def test_no_dialog_rejects_at_once(no_slot_errors):
    with dialogs.no_dialog():
        assert _ask(slicer.util.confirmOkCancelDisplay, "Unexpected") is False
        slicer.util.errorDisplay("no main window: only logged")    # mainWindowNeeded, as in Slicer
    (where, error, text), = no_slot_errors
    assert "expects none" in str(error) and "Unexpected" in str(error)
    no_slot_errors.clear()


def test_answer_fails_when_no_dialog_opens():
    with pytest.raises(AssertionError, match="no dialog was shown"):
        with dialogs.answer("Yes"):
            pass


def test_a_box_opened_outside_an_event_loop_is_reported(no_slot_errors):
    """Slicer's messageBox calls deleteLater() before exec_(): outside a running loop Qt deletes the
    box at once, and the 'answer' is silently no."""
    assert slicer.util.confirmYesNoDisplay("Opened from test code") is False
    assert any("outside any event loop" in str(e) for _w, e, _t in no_slot_errors)
    no_slot_errors.clear()
