"""The app never dies of a bug: an exception in a slot, the fusion worker, a background task or
a thread becomes a dialog with a sentence and the traceback as details, a record in the app's
log, and the window stays usable (the demo still runs)."""
import threading

import pytest
from PySide6.QtCore import Qt

from spectramorph_gui import errors as app_errors

from .conftest import run_to_end


def _log_text() -> str:
    path = app_errors.log_path()
    return path.read_text(encoding="utf-8") if path.is_file() else ""


# pytest-qt would otherwise turn the slot's exception into a test failure by itself; here the
# app's own hook must catch it, as it does for a user.
@pytest.mark.qt_no_exception_capture
def test_a_bug_in_a_slot_is_a_dialog_with_details_and_the_demo_still_runs(qtbot, window, errors,
                                                                         monkeypatch):
    window.error_reporter.install()      # pytest-qt restored its own hook after the fixture's setup

    def broken_save(*_args, **_kw):
        raise ZeroDivisionError("the save slot divided by zero")
    monkeypatch.setattr(window.export_panel, "save_config", broken_save)
    qtbot.mouseClick(window.export_panel.save_config_button, Qt.LeftButton)   # a real button
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert "ZeroDivisionError" in errors[0] and "the save slot divided by zero" in errors[0]
    assert "Traceback" in errors.details[0] and "broken_save" in errors.details[0]
    assert "broken_save" in _log_text()
    # the window is alive and keeps its data: the demo runs to the end
    monkeypatch.undo()
    result = run_to_end(qtbot, window, epochs=10)
    assert result is not None and window.state.result is result
    assert len(errors) == 1


def test_a_bug_in_the_fusion_worker_is_one_dialog_with_details(qtbot, window, errors, monkeypatch):
    import spectramorph_engine

    def broken_run(*_args, **_kw):
        raise KeyError("an engine bug")
    monkeypatch.setattr(spectramorph_engine, "run_fusion", broken_run)
    with qtbot.waitSignal(window.state.runFailed, timeout=30000):
        qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert "KeyError" in errors[0] and "broken_run" in errors.details[0]
    assert "broken_run" in _log_text()
    assert window.training_panel.run_button.isEnabled()
    monkeypatch.undo()
    assert run_to_end(qtbot, window, epochs=10) is not None
    assert len(errors) == 1


def test_a_bug_in_a_background_task_or_a_thread_is_a_dialog(qtbot, window, errors):
    window.state.run_task(lambda: [][1], "Reading a list")
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=5000)
    assert "IndexError" in errors[0] and "Traceback" in errors.details[0]
    # an error the user can fix stays one sentence, without details
    from spectramorph_engine import InputError

    def refuse():
        raise InputError("file 'x.mat' is empty")
    window.state.run_task(refuse, "Opening x.mat")
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=5000)
    assert errors[1] == "Opening x.mat failed: file 'x.mat' is empty" and errors.details[1] == ""
    window.error_reporter.install()
    t = threading.Thread(target=lambda: {}["missing key"], name="helper-thread")
    t.start()
    t.join()
    qtbot.waitUntil(lambda: len(errors) == 3, timeout=5000)
    assert "KeyError" in errors[2] and "helper-thread" in _log_text()
