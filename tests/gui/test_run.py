"""Start on the demo, run, stop, and read the results the window shows."""
import time

import numpy as np
from PySide6.QtCore import QPointF, Qt

from spectramorph_engine.demo import demo_config

from .conftest import run_to_end, set_training


def test_starts_on_the_demo_with_defaults(window):
    s = window.state
    assert s.config == demo_config()          # every parameter at its (demo) default
    assert s.config.synthetic and s.truth is not None and s.truth.label == "built-in demo scene"
    p = s.prepared
    assert p.hr_msi.shape[:2] == (64, 64) and p.lr_hsi.shape[:2] == (16, 16)
    dp = window.data_panel
    assert dp.hr_view.image.image is not None
    assert dp.lr_view.image.image.shape == (16, 16, 3)      # LR-HSI colour composite
    assert window.training_panel.run_button.isEnabled()
    assert window.results_panel.welcome_run.isEnabled()
    # the training widgets show the config's values
    assert window.training_panel.form.widget("epochs").value() == s.config.epochs


def test_run_shows_curves_endmembers_maps_and_metrics(qtbot, window):
    result = run_to_end(qtbot, window, epochs=40)
    k = window.state.config.num_endmembers
    curves = window.curves_panel
    assert curves.point_count() == 40                        # one point per epoch
    assert curves.redraw_count < 40                           # throttled, not one redraw per epoch
    rp = window.results_panel
    assert rp.pages.currentIndex() == 1
    assert len(rp.endmember_curves) == k
    assert len(rp.alle_images) == k
    levels = {tuple(np.round(img.getLevels(), 6)) for img in rp.alle_images}
    assert len(levels) == 1                                   # one shared colour scale
    assert rp.metrics_table.rowCount() == len(result.metrics)
    assert rp.view.image.image.shape[:2] == result.hr_hsi.shape[:2]
    assert window.training_panel.run_button.isEnabled()
    assert not window.training_panel.stop_button.isEnabled()
    assert "done" in window.training_panel.progress_bar.format()


def test_stop_ends_training_quickly_and_keeps_no_result(qtbot, window):
    set_training(window, epochs=1_000_000)
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(window.state.history.loss) > 5, timeout=60000)
    assert window.training_panel.stop_button.isEnabled()
    t0 = time.monotonic()
    with qtbot.waitSignal(window.state.runCancelled, timeout=3000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    assert time.monotonic() - t0 < 2.0
    assert window.state.result is None
    assert window.results_panel.pages.currentIndex() == 0    # no result page shown as complete
    assert "no result" in window.results_panel.welcome_text.text()
    assert window.training_panel.run_button.isEnabled()
    assert window.training_panel.progress_bar.format() == "stopped"
    # and the app is ready for another run
    run_to_end(qtbot, window, epochs=10)
    assert window.state.result is not None


def test_clicking_a_result_pixel_shows_its_spectra(qtbot, window):
    result = run_to_end(qtbot, window, epochs=20)
    rp = window.results_panel
    row, col = 13, 41
    view = rp.view
    qtbot.waitUntil(lambda: view.plot.vb.viewRect().width() > 0)
    scene = view.image.mapToScene(QPointF(col + 0.5, row + 0.5))
    pos = view.mapFromScene(scene)
    qtbot.mouseClick(view.viewport(), Qt.LeftButton, pos=pos)
    assert rp.pixel == (row, col)
    _, y = rp.spectrum_data()
    np.testing.assert_array_equal(y, result.hr_hsi[row, col, :])
    prep = result.prepared
    _, truth = rp.truth_curve.getOriginalDataset()
    np.testing.assert_array_equal(truth, prep.truth[row, col, :])
    _, lr = rp.lr_curve.getOriginalDataset()
    np.testing.assert_array_equal(lr, prep.lr_hsi[row // prep.ratio, col // prep.ratio, :])
    assert f"row {row}, col {col}" in rp.pixel_label.text()


def test_engine_error_during_a_run_is_a_dialog_and_keeps_the_previous_result(qtbot, window, errors):
    first = run_to_end(qtbot, window, epochs=10)
    # more endmembers than the LR-HSI has bands: the engine refuses it when the run starts
    bands = window.state.prepared.lr_hsi.shape[2]
    window.training_panel.form.widget("num_endmembers").setValue(bands + 1)
    with qtbot.waitSignal(window.state.runFailed, timeout=30000):
        qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    assert errors and "num_endmembers" in errors[-1]
    assert window.state.result is first
    assert window.results_panel.result is first
    assert window.training_panel.run_button.isEnabled()


def test_result_view_single_band_and_truth(qtbot, window):
    run_to_end(qtbot, window, epochs=5)
    rp = window.results_panel
    rp.mode_combo.setCurrentIndex(rp.mode_combo.findData("band"))
    rp.band_slider.setValue(7)
    assert rp.view.image.image.ndim == 2
    np.testing.assert_array_equal(rp.view.image.image, window.state.result.hr_hsi[:, :, 7])
    rp.show_combo.setCurrentIndex(rp.show_combo.findData("truth"))
    np.testing.assert_array_equal(rp.view.image.image, window.state.result.prepared.truth[:, :, 7])
