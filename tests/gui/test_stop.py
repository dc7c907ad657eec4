"""Stop keeps the work: Stop asks whether to finish with the network trained so far, discard the
run or keep going; nothing is discarded without that answer."""
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QApplication, QMessageBox

from spectramorph_gui.panels import training_panel as tp
from spectramorph_gui.state import RunProgress

from .conftest import set_training

ASK_STOP = tp.ask_stop       # the real question (conftest makes it answer "discard" in tests)


class Answers:
    """Stands in for the Stop question: answers with the queued choices, records what it was
    asked (the stage, and whether the run was training)."""

    def __init__(self, *choices):
        self.choices = list(choices)
        self.asked = []

    def __call__(self, parent, progress, ended=(), held=None):
        self.asked.append(progress.stage)
        return self.choices.pop(0)


@pytest.fixture
def answers(monkeypatch):
    def make(*choices):
        a = Answers(*choices)
        monkeypatch.setattr(tp, "ask_stop", a)
        return a
    return make


def _start_long_run(qtbot, window, epochs=1_000_000):
    set_training(window, epochs=epochs)
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(window.state.history.loss) > 5, timeout=60000)


def test_finish_ends_training_and_shows_a_result(qtbot, window, answers):
    asked = answers(tp.FINISH)
    _start_long_run(qtbot, window)
    with qtbot.waitSignal(window.state.runFinished, timeout=60000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert asked.asked == ["train"]
    result = window.state.result
    assert result is not None
    stopped = result.training_stopped
    assert stopped["epochs"] == 1_000_000 and 5 < stopped["epoch"] < 1_000_000
    assert len(result.loss_history) == stopped["epoch"]
    assert result.hr_hsi.shape[:2] == (64, 64) and result.metrics["PSNR"] > 0
    # the window shows the result and says where training stopped
    assert window.results_panel.pages.currentIndex() == 1
    panel = window.training_panel
    assert panel.progress_bar.format() == f"done – {stopped['epoch']} of 1000000 epochs"
    assert f"stopped at epoch {stopped['epoch']} of 1000000" in panel.status_label.text()
    assert window.curves_panel.point_count() == stopped["epoch"]
    assert panel.run_button.isEnabled() and not panel.stop_button.isEnabled()


def test_keep_goes_on_training_and_discard_ends_with_no_result(qtbot, window, answers):
    asked = answers(tp.KEEP, tp.DISCARD)
    _start_long_run(qtbot, window)
    qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert asked.asked == ["train"] and window.state.running
    epochs_then = len(window.state.history.loss)
    qtbot.waitUntil(lambda: len(window.state.history.loss) > epochs_then + 5, timeout=60000)
    assert window.state.running and window.training_panel.stop_button.isEnabled()
    # asked again: discard ends it as Stop always did, with no result
    with qtbot.waitSignal(window.state.runCancelled, timeout=30000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert asked.asked == ["train", "train"]
    assert window.state.result is None
    assert window.training_panel.progress_bar.format() == "stopped"
    assert "no result" in window.training_panel.status_label.text()


def _answer_the_open_question(button_text=None, key=None, seen=None):
    """Once the question is open: note its buttons, then click one (by its text) or press a key."""
    def act():
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, act)
            return
        if seen is not None:
            seen["buttons"] = [b.text() for b in box.buttons()]
            seen["text"] = box.text()
            seen["default"] = box.defaultButton().text() if box.defaultButton() else None
        if key is not None:
            from PySide6.QtTest import QTest
            QTest.keyClick(box, key)
            return
        for b in box.buttons():
            if b.text() == button_text:
                b.click()
                return
    QTimer.singleShot(0, act)


def test_the_question_offers_finish_only_while_training(qtbot):
    training = RunProgress(stage="train", epoch=120, epochs=2500, loss=0.0123)
    seen = {}
    _answer_the_open_question("Finish with the model trained so far", seen=seen)
    assert ASK_STOP(None, training) == tp.FINISH
    assert sorted(seen["buttons"]) == sorted(["Finish with the model trained so far", "Discard this run",
                                              "Keep training"])
    assert "epoch 120 of 2500" in seen["text"] and seen["default"] == "Finish with the model trained so far"
    # Escape in the question never discards: it keeps the run going
    _answer_the_open_question(key=Qt.Key_Escape)
    assert ASK_STOP(None, training) == tp.KEEP
    # outside training there is nothing to finish early
    nmf = RunProgress(stage="nmf")
    seen = {}
    _answer_the_open_question("Discard this run", seen=seen)
    assert ASK_STOP(None, nmf) == tp.DISCARD
    assert sorted(seen["buttons"]) == ["Discard this run", "Keep going"]
    assert seen["default"] == "Keep going"
    assert "extracting endmembers" in seen["text"].lower()


def test_the_question_closes_itself_when_the_run_ends(qtbot):
    from PySide6.QtCore import QObject, Signal

    class Ends(QObject):
        ended = Signal(object)
    ends = Ends()
    QTimer.singleShot(50, lambda: ends.ended.emit(None))
    assert ASK_STOP(None, RunProgress(stage="train", epoch=3, epochs=10), ended=(ends.ended,)) == tp.KEEP


def test_escape_asks_before_discarding(qtbot, window, answers):
    asked = answers(tp.KEEP, tp.DISCARD)
    _start_long_run(qtbot, window)
    window.stop_action.trigger()
    assert asked.asked == ["train"] and window.state.running


def test_stage_status_shows_no_html_entities(window):
    """The status line of a stage without a fraction (NMF) or with one (scoring) reads as text."""
    panel = window.training_panel
    for stage, fraction in (("nmf", None), ("metrics", 0.5), ("inference", None)):
        panel._on_progress(RunProgress(stage=stage, elapsed=3.0, fraction=fraction))
        assert panel.status_label.textFormat() == Qt.RichText
        doc = QTextDocument()
        doc.setHtml(panel.status_label.text())
        shown = doc.toPlainText()
        assert "&nbsp;" not in shown and "elapsed" in shown, shown


def test_training_waits_while_the_question_is_open_and_finish_keeps_that_epoch(qtbot, window, monkeypatch):
    """The question names the epoch where training waits; however long the user takes, Finish
    gives the model of that epoch (it had gone on training under the dialog: asked at epoch
    2897, the model came from epoch 5478)."""
    import re
    monkeypatch.setattr(tp, "ask_stop", ASK_STOP)
    _start_long_run(qtbot, window)
    seen = {"tries": 0}

    def act():
        box = QApplication.activeModalWidget()
        seen["tries"] += 1
        waiting = not isinstance(box, QMessageBox) or "paused" not in box.text()
        if waiting and (seen["tries"] < 250 or not isinstance(box, QMessageBox)):   # up to ~5 s
            QTimer.singleShot(20, act)
            return
        seen["text"] = box.text()
        seen["losses"] = len(window.state.history.loss)

        def later():           # a user reading the question: training must not move meanwhile
            seen["losses_later"] = len(window.state.history.loss)
            next(b for b in box.buttons() if b.text() == "Finish with the model trained so far").click()
        QTimer.singleShot(700, later)
    QTimer.singleShot(0, act)
    with qtbot.waitSignal(window.state.runFinished, timeout=60000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert "paused" in seen["text"], seen["text"]
    epoch = int(re.search(r"paused at epoch (\d+) of", seen["text"]).group(1))
    assert seen["losses"] == seen["losses_later"] == epoch
    assert window.state.result.training_stopped["epoch"] == epoch


def test_asked_before_training_the_question_offers_finish_once_training_waits(qtbot, window, monkeypatch):
    """Stop pressed while the inputs are prepared: the question says nothing trains yet; when
    training reaches its first epoch it waits, and the question says so and offers Finish
    (it said 'preparing the inputs' while the progress bar showed training)."""
    import re
    monkeypatch.setattr(tp, "ask_stop", ASK_STOP)
    set_training(window, epochs=1_000_000)
    seen = {"tries": 0}

    def act():
        box = QApplication.activeModalWidget()
        seen["tries"] += 1
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, act)
            return
        seen.setdefault("first", box.text())
        seen.setdefault("first_buttons", sorted(b.text() for b in box.buttons()))
        if "paused" not in box.text() and seen["tries"] < 1500:          # up to ~30 s
            QTimer.singleShot(20, act)
            return
        seen["text"] = box.text()
        texts = {b.text(): b for b in box.buttons()}
        texts.get("Finish with the model trained so far", texts["Discard this run"]).click()
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    assert window.state.progress.stage != "train"
    QTimer.singleShot(0, act)
    qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.state.running, timeout=60000)
    assert window.state.result is not None, seen
    assert seen["first"].startswith("The run is") or "paused" in seen["first"], seen["first"]
    assert "paused" in seen["text"], seen["text"]
    epoch = int(re.search(r"paused at epoch (\d+) of", seen["text"]).group(1))
    assert window.state.result.training_stopped["epoch"] == epoch


def test_the_check_shows_how_far_it_is_and_stop_discards_it(qtbot, window, tmp_path, answers):
    """On a real pair the reduced-resolution check trains a fifth of the epochs before the run's
    own training: with many epochs set that is a long wait, so the bar says the check's fraction
    done (it was a busy bar with no number), and Stop then ends the run with no result."""
    from .test_panels import open_real_pair
    asked = answers(tp.DISCARD)
    open_real_pair(qtbot, window, tmp_path)
    set_training(window, epochs=1_000_000)
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    bar = window.training_panel.progress_bar
    checking = tp.BAR_TEXT["check"]
    qtbot.waitUntil(lambda: bar.format().startswith(checking) and bar.format().endswith("%")
                    and bar.maximum() > 0 and bar.value() > 0, timeout=60000)
    percent = int(bar.format()[len(checking):].strip().rstrip("%"))
    assert 0 <= percent < 100 and bar.value() == pytest.approx(10 * percent, abs=6)
    assert window.state.progress.stage == "check" and not window.state.history.loss   # no run epochs yet
    # the status line under the bar keeps the stage's whole text; the welcome page says why no
    # curve grows yet
    assert tp.STAGE_TEXT["check"] in window.training_panel.status_label.text()
    assert "checked on a reduced-resolution copy first" in window.results_panel.welcome_text.text()
    with qtbot.waitSignal(window.state.runCancelled, timeout=30000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert asked.asked == ["check"]
    assert window.state.result is None and bar.format() == "stopped"
