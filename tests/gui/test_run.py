"""Start on the demo, run, stop, and read the results the window shows."""

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from spectramorph_engine.run.demo import demo_config

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
    # the training widgets show the defaults (the demo's only change: 5 endmembers, one per material)
    from spectramorph_engine import FusionConfig
    defaults = FusionConfig()
    form = window.training_panel.form
    for key in ("epochs", "hidden_size", "init_lr", "max_lr", "final_lr", "prior_downsample"):
        assert form.bound[key].value() == pytest.approx(getattr(defaults, key)), key
    assert form.bound["scheduler"].value() == defaults.scheduler
    assert form.bound["training_batch_size"].value() is None            # all pixels
    assert form.bound["num_endmembers"].value() == 5
    # every training key has a tooltip naming its key and default
    for key, bound in form.bound.items():
        assert f"<code>{key}</code>" in bound.widget.toolTip() and "default" in bound.widget.toolTip()
    # the wavelengths of the demo are shown
    assert "400–2500 nm, 120 bands" in dp.wl_status.text()
    # a window that fits a laptop, with an obvious Run button
    assert window.width() <= 1400 and window.height() <= 900
    assert window.minimumSizeHint().width() <= 1280
    run = window.training_panel.run_button
    assert "Run" in run.text() and run.isVisible() and run.height() >= 36
    assert window.results_panel.welcome_run.isVisible()


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
    # the metrics table: SpectraMorph and bicubic, one column per metric, the engine's numbers
    assert rp.metrics_table.rowCount() == 2 and rp.metrics_table.columnCount() == len(result.metrics)
    for name, value in result.metrics.items():
        assert rp.metric_value(name) == pytest.approx(value, rel=1e-3)
        assert rp.metric_value(name, row=1) == pytest.approx(result.bicubic_metrics[name], rel=1e-3)
    # the curves: loss on a log axis, the learning rate, one point per epoch, the engine's values
    assert curves.loss_plot.getPlotItem().ctrl.logYCheck.isChecked()
    _, loss = curves.loss_curve.getOriginalDataset()
    _, lr = curves.lr_curve.getOriginalDataset()
    np.testing.assert_allclose(loss, result.loss_history)
    np.testing.assert_allclose(lr, result.lr_history)
    # the endmember curves are the endmembers, over the wavelengths (known for the demo)
    wl = result.prepared.wavelengths
    for i, curve in enumerate(rp.endmember_curves):
        x, y = curve.getOriginalDataset()
        np.testing.assert_allclose(x, wl)
        np.testing.assert_allclose(y, result.endmembers[i])
    for i, img in enumerate(rp.alle_images):
        np.testing.assert_array_equal(img.image, result.alle[:, :, i])
    # bare view boxes, not plots: a PlotItem builds axes and an options form, 35 ms each on the
    # GUI thread at the end of every run (the largest stall of a 1024^2 run in `bench app`)
    import pyqtgraph as pg
    assert not [i for i in rp.alle_widget.scene().items()
                if isinstance(i, pg.PlotItem) and not isinstance(i, pg.ColorBarItem)]
    assert rp.view.image.image.shape[:2] == result.hr_hsi.shape[:2]
    assert window.training_panel.run_button.isEnabled()
    assert not window.training_panel.stop_button.isEnabled()
    assert "done" in window.training_panel.progress_bar.format()


def _spy_on_engine_epochs(monkeypatch, window):
    """For every EpochEnd the engine emits: whether Stop had already been pressed (the run's
    cancel token was set). Read in the worker thread, at the moment the engine reports."""
    from spectramorph_engine.core import events
    seen = []
    real_emit = events.emit

    def spy(progress, event):
        if isinstance(event, events.EpochEnd):
            token = window.state.workers._cancel
            seen.append(token is not None and token.is_set())
        real_emit(progress, event)
    monkeypatch.setattr(events, "emit", spy)
    return seen


def test_stop_ends_training_within_the_epoch_and_keeps_no_result(qtbot, window, monkeypatch):
    seen = _spy_on_engine_epochs(monkeypatch, window)
    set_training(window, epochs=1_000_000)
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(window.state.history.loss) > 5, timeout=60000)
    assert window.training_panel.stop_button.isEnabled()
    with qtbot.waitSignal(window.state.runCancelled, timeout=30000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.LeftButton)
    # the engine reported at most the epoch it was finishing when Stop came, none after it
    assert sum(seen) <= 1 and len(seen) > 5
    assert window.state.result is None
    assert window.results_panel.pages.currentIndex() == 0    # no result page shown as complete
    assert "no result" in window.results_panel.welcome_text.text()
    assert window.training_panel.run_button.isEnabled()
    assert window.training_panel.progress_bar.format() == "stopped"
    # and the app is ready for another run
    monkeypatch.undo()
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
    # hovering another pixel shows its spectra too (without moving the pin)
    r2, c2 = 50, 7
    pos2 = view.mapFromScene(view.image.mapToScene(QPointF(c2 + 0.5, r2 + 0.5)))
    # (QTest's mouseMove moves the cursor, which the offscreen platform ignores: send the event)
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication
    local = QPointF(pos2)
    move = QMouseEvent(QEvent.MouseMove, local, view.viewport().mapToGlobal(local), Qt.NoButton, Qt.NoButton,
                       Qt.NoModifier)
    QApplication.sendEvent(view.viewport(), move)
    qtbot.waitUntil(lambda: f"row {r2}, col {c2}" in rp.pixel_label.text(), timeout=3000)
    _, y = rp.spectrum_data()
    np.testing.assert_array_equal(y, result.hr_hsi[r2, c2, :])
    assert "Hovered" in rp.pixel_label.text() and rp.pixel == (row, col)


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


def test_progress_and_a_responsive_window_during_a_run(qtbot, window):
    """While training: the progress bar shows epoch, loss and time left, the curves grow on a
    throttled timer, the event loop keeps running (timers fire, the window resizes and repaints).
    Counted in events, not seconds: the GUI's own timer ticks between the engine's epoch
    batches, and curve redraws against the curve timer's ticks."""
    from PySide6.QtCore import QTimer
    set_training(window, epochs=1_000_000)
    h = window.state.history
    ticks = []                       # epochs the GUI had received at each tick of a 20 ms timer
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(len(h.loss)))
    timer.start()
    curves = window.curves_panel
    curve_ticks = []
    curves.timer.timeout.connect(lambda: curve_ticks.append(1))
    qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: len(h.loss) > 20, timeout=60000)
    first, redraws, first_tick, first_curve_tick = curves.point_count(), curves.redraw_count, len(ticks), \
        len(curve_ticks)
    # until the GUI has seen 8 more epoch batches arrive
    qtbot.waitUntil(lambda: len(set(ticks[first_tick:])) >= 8, timeout=60000)
    during = ticks[first_tick:]
    assert curves.point_count() > first                                   # the curves grow
    # the event loop ran the timer between the engine's deliveries, again and again: more ticks
    # than batches (a frozen loop would fire at most one late tick per batch)
    assert len(during) > 2 * len(set(during))
    # redraws come only from the curve timer (a few a second), not one per epoch batch
    assert curves.redraw_count - redraws <= len(curve_ticks) - first_curve_tick + 1
    assert during[-1] - during[0] > curves.redraw_count - redraws         # fewer redraws than epochs
    text = window.training_panel.progress_bar.format()
    assert "epoch" in text and "loss" in text and "left" in text
    assert "epoch" in window.results_panel.welcome_progress.format()
    assert "Stop" in window.results_panel.welcome_run.text()             # the big button stops the run
    window.resize(1200, 800)
    qtbot.waitUntil(lambda: window.width() == 1200)
    assert not window.grab().isNull()
    timer.stop()
    with qtbot.waitSignal(window.state.runCancelled, timeout=30000):
        qtbot.mouseClick(window.results_panel.welcome_run, Qt.LeftButton)
    assert "Run" in window.results_panel.welcome_run.text()


def test_real_world_run_shows_consistency_and_warnings(qtbot, window, tmp_path, errors):
    from .test_panels import open_real_pair
    open_real_pair(qtbot, window, tmp_path)
    srf = window.srf_panel
    # force the preset SRF without wavelengths: it does not describe the "camera" (the engine warns)
    for key, value in (("srf_source", "preset"), ("training_input", "srf")):
        combo = srf.form.widget(key)
        combo.setCurrentIndex(combo.findData(value))
    qtbot.waitUntil(lambda: window.state.prepared is not None and not window.state.preparing
                    and window.state.prepared.srf_estimate is None, timeout=30000)
    result = run_to_end(qtbot, window, epochs=10)
    assert result.metrics is None and result.consistency is not None
    rp = window.results_panel
    assert "Consistency" in rp.metrics_title.text()
    cons = result.consistency
    assert rp.metric_value("LR PSNR") == pytest.approx(cons["lr_consistency"]["PSNR"], rel=1e-2)
    assert rp.metric_value("MSI SAM") == pytest.approx(cons["msi_consistency"]["SAM"], rel=1e-2)
    assert rp.metric_value("RR PSNR") == pytest.approx(cons["reduced_resolution"]["fusion"]["PSNR"], rel=1e-2)
    assert rp.metric_value("LR PSNR", row=1) == pytest.approx(cons["bicubic"]["lr"]["PSNR"], rel=1e-2)
    # the warnings are in a box above the result, each one
    assert result.warnings
    assert rp.warnings_label.isVisible()
    for w in result.warnings:
        assert w[:40] in rp.warnings_label.text().replace("&gt;", ">").replace("&lt;", "<")
    # no ground truth: the truth curve and the truth view are off
    assert not rp.truth_curve.isVisible()
    assert not rp.show_combo.model().item(1).isEnabled()
    # the pixel spectrum is still the result's, with the LR-HSI beneath
    rp.select_pixel(5, 7)
    _, y = rp.spectrum_data()
    np.testing.assert_array_equal(y, result.hr_hsi[5, 7, :])
    # where to trust it: the misfit maps, drawn per LR pixel over the result's grid, with a colour bar
    assert result.misfit is not None and result.misfit.shape[2] == 2
    combo = rp.show_combo
    combo.setCurrentIndex(combo.findData("misfit_pair"))
    shown = rp.view.image.image
    ratio = result.prepared.ratio
    assert shown.shape == result.hr_hsi.shape[:2]
    assert shown[ratio * 2, ratio * 3] == pytest.approx(result.misfit[2, 3, 0])
    assert rp.view._bar.isVisible() and "Misfit" in rp.view.plot.titleLabel.text
    combo.setCurrentIndex(combo.findData("result"))
    assert not rp.view._bar.isVisible() and rp.view.image.image.ndim == 3
    assert not errors


def test_runs_start_from_the_prepared_pair_and_share_it(qtbot, window):
    """Run starts from the pair prepared when it was opened (no second copy of it, no second
    sensor fit), and the runs kept from it share its arrays; an edit that changes the
    preparation, followed at once by Run, is not run on the stale pair."""
    state = window.state
    prepared = state.prepared
    first = run_to_end(qtbot, window, epochs=5)
    second = run_to_end(qtbot, window, epochs=6)     # a training setting: the same pair
    assert first.prepared is prepared and second.prepared is prepared
    assert [r.result.prepared for r in state.runs] == [prepared, prepared]
    state.update_config(seed=state.config.seed + 1)  # a new synthetic pair, prepared after a delay
    assert state.preparing
    with qtbot.waitSignal(state.runFinished, timeout=60000):
        qtbot.mouseClick(window.training_panel.run_button, Qt.LeftButton)
    assert state.result.prepared is not prepared
    assert not np.array_equal(state.result.prepared.lr_hsi, prepared.lr_hsi)


def test_abundance_maps_fill_their_cells(qtbot, window):
    """The ALLE maps are laid out in the grid that makes them biggest in the panel, their
    names on their corners: each map's view box takes most of its row (with a title row above
    each, 7 maps in a 3 x 3 grid were drawn a fifth of their cells), and the colour bar keeps
    room for its tick labels."""
    from spectramorph_gui.panels.results_overview import alle_grid
    assert alle_grid(7, 260, 190) == (4, 2) and alle_grid(4, 260, 190) == (2, 2)
    assert alle_grid(7, 0, 0) == (3, 3)                      # not laid out yet: a square grid
    rp = window.results_panel
    run_to_end(qtbot, window, epochs=5)
    qtbot.wait(100)
    import pyqtgraph as pg
    widget = rp.alle_widget
    k = len(rp.alle_images)
    cols, rows = alle_grid(k, widget.width() - 60, widget.height())
    for img in rp.alle_images:
        box = img.getViewBox()
        assert box.height() >= 0.75 * widget.height() / rows - 10
    tags = [i for i in widget.scene().items() if isinstance(i, pg.TextItem)]
    assert sorted(t.textItem.toPlainText().strip() for t in tags) == sorted(f"■ ALLE {i + 1}" for i in range(k))
