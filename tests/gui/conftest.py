"""Fixtures for driving the real main window offscreen.

Each test gets its own settings folder (SPECTRAMORPH_SETTINGS_DIR) so the
user's real window layout and last folder are never read or written, its own
working folder (outputs/, logs/ land in tmp), and a captured error dialog.
"""
import json
import os
import tempfile


def _offscreen_with_a_desktop_screen() -> None:
    """Qt's offscreen platform has one 800 x 800 screen, smaller than the app's window: restored
    geometries are then clamped to it. Give it a 1920 x 1200 screen (its JSON config file)."""
    platform = os.environ.get("QT_QPA_PLATFORM", "offscreen")
    if platform != "offscreen":
        return
    # one file per process: parallel test workers must not rewrite a file another is reading
    path = os.path.join(tempfile.gettempdir(), f"spectramorph-offscreen-screen-{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"screens": [{"name": "screen0", "x": 0, "y": 0, "width": 1920, "height": 1200,
                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}, fh)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={path}"


_offscreen_with_a_desktop_screen()

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

DEMO_SIZE = 64          # small demo scene: a run of a few dozen epochs takes about a second
FAST_HIDDEN = 64        # hidden units for test runs


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAMORPH_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("SPECTRAMORPH_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def one_torch_thread(monkeypatch):
    """The engine gives torch one thread per core. On a shared test machine (other jobs on the
    same cores) multi-threaded torch spins and a 16 x 16 NMF takes 30 s instead of 0.7 s; the
    tiny test scenes are fastest on one thread, and timings are not what these tests check."""
    from spectramorph_engine.core import device
    monkeypatch.setattr(device, "available_cores", lambda: 1)


@pytest.fixture(autouse=True)
def stop_discards(monkeypatch):
    """Stop asks what to do (a modal question, which would wait forever offscreen): in tests it
    answers "discard", as Stop did before it asked, unless a test patches its own answers."""
    from spectramorph_gui.panels import training_panel
    monkeypatch.setattr(training_panel, "ask_stop", lambda *_a, **_k: training_panel.DISCARD)


class Dialogs(list):
    """Texts of the error dialogs opened; `details` holds each one's details part ("" when
    it had none: an error the user can fix rather than a bug)."""

    def __init__(self):
        super().__init__()
        self.details = []


@pytest.fixture
def errors(monkeypatch):
    """Texts of the error dialogs the window opened (the dialog itself is not shown)."""
    from spectramorph_gui.panels import dialogs
    captured = Dialogs()

    def capture(parent, text, details=""):
        captured.append(text)
        captured.details.append(details)
    monkeypatch.setattr(dialogs, "show_error", capture)
    return captured


@pytest.fixture
def window(qtbot, errors):
    from spectramorph_gui.panels.main_window import MainWindow
    w = MainWindow(demo_size=DEMO_SIZE)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.state.prepared is not None, timeout=30000)
    yield w
    w.state.stop_run()
    w.close()


def set_training(window, epochs, hidden=FAST_HIDDEN):
    """Type the test's training settings into the training panel's widgets."""
    form = window.training_panel.form
    form.widget("epochs").setValue(epochs)
    form.widget("hidden_size").setValue(hidden)
    assert window.state.config.epochs == epochs


def run_to_end(qtbot, window, epochs=30, timeout=60000):
    set_training(window, epochs)
    with qtbot.waitSignal(window.state.runFinished, timeout=timeout):
        qtbot.mouseClick(window.training_panel.run_button, _left())
    return window.state.result


def _left():
    from PySide6.QtCore import Qt
    return Qt.LeftButton


def wait_idle(qtbot, window, timeout=30000):
    """Until no background job (load, export) is left."""
    qtbot.waitUntil(lambda: window.state.workers.pending == 0, timeout=timeout)


def write_material_library(path):
    """The demo's materials as a spectral library CSV (their own reflectances, 5 nm steps)."""
    import csv

    import numpy as np
    from spectramorph_engine.run.demo import MATERIALS, material_spectra
    grid = np.arange(400.0, 2501.0, 5.0)
    spectra = material_spectra(grid)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["wavelength"] + list(MATERIALS))
        for k, lam in enumerate(grid):
            w.writerow([lam] + [spectra[m][k] for m in MATERIALS])
    return path
