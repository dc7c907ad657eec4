"""Inspecting results in the real window: kept runs compared, regions, levels, bands, libraries."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from spectramorph_engine import io
from spectramorph_engine.run.demo import MATERIALS, demo_abundances

from .conftest import DEMO_SIZE, run_to_end, wait_idle, write_material_library


def _two_runs(qtbot, window):
    first = run_to_end(qtbot, window, epochs=8)
    second = run_to_end(qtbot, window, epochs=25)
    return first, second


def test_runs_are_kept_on_disk_and_compared_with_their_difference(qtbot, window):
    s, rp = window.state, window.results_panel
    first, second = _two_runs(qtbot, window)
    assert [r.number for r in s.runs] == [1, 2] and s.shown_run.number == 2
    # each kept run's cube is memory-mapped from the file its run wrote, not held in memory
    for rec in s.runs:
        assert isinstance(rec.result.hr_hsi, np.memmap)
        assert Path(rec.result.output_files["hr_hsi"]).parent == Path(rec.folder)
        assert (Path(rec.folder) / "run.json").is_file()
    # the runs panel lists both, with their settings and scores
    t = window.runs_panel.table
    assert t.rowCount() == 2
    assert "8 ep" in t.item(0, 1).text() and "25 ep" in t.item(1, 1).text()
    assert f"PSNR {first.metrics['PSNR']:.2f}" in t.item(0, 2).text()
    # compare run 2 with run 1: side by side, linked views
    window.runs_panel.select(1)
    qtbot.mouseClick(window.runs_panel.compare_button, Qt.LeftButton)
    assert s.comparison == ("run", 1)
    assert rp.compare_view.isVisible()
    a, b = np.asarray(second.hr_hsi, dtype=np.float64), np.asarray(first.hr_hsi, dtype=np.float64)
    bands = rp.band_picker.bands()
    np.testing.assert_allclose(rp.compare_view.image.image, b[:, :, list(bands)], rtol=1e-6)
    np.testing.assert_allclose(rp.compare_view.image.levels, rp.view.image.levels)   # same stretch
    rp.view.plot.getViewBox().setRange(xRange=(10, 30), yRange=(5, 25), padding=0)
    (ax, ay), (bx, by) = rp.view.plot.getViewBox().viewRange(), rp.compare_view.plot.getViewBox().viewRange()
    assert np.mean(bx) == pytest.approx(np.mean(ax), abs=0.5) and np.mean(by) == pytest.approx(np.mean(ay), abs=0.5)
    # the same centre and the same magnification (image pixels per screen pixel)
    va, vb_ = rp.view.plot.getViewBox(), rp.compare_view.plot.getViewBox()
    assert (bx[1] - bx[0]) / vb_.boundingRect().width() == pytest.approx(
        (ax[1] - ax[0]) / va.boundingRect().width(), rel=0.02)
    assert (bx[1] - bx[0]) < 0.8 * DEMO_SIZE                 # zoomed in, as the main view
    # the difference: per-pixel RMSE over the bands, as computed here
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("diff_rmse"))
    expected = np.sqrt(np.mean((a - b) ** 2, axis=2))
    np.testing.assert_allclose(rp.compare_view.image.image, expected, rtol=1e-5, atol=1e-7)
    assert "Difference (RMSE)" in rp.compare_view.title()
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("diff_sam"))
    cos = np.sum(a * b, axis=2) / (np.linalg.norm(a, axis=2) * np.linalg.norm(b, axis=2))
    np.testing.assert_allclose(rp.compare_view.image.image, np.degrees(np.arccos(np.clip(cos, -1, 1))),
                               rtol=1e-4, atol=1e-4)
    # swipe: left of the line the shown run, right of it the comparison (same levels)
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("swipe"))
    rp.swipe_to(20)
    assert not rp.compare_view.isVisible() and rp.swipe_item.isVisible()
    np.testing.assert_allclose(rp.swipe_item.image, b[:, 20:, list(bands)], rtol=1e-6)
    assert rp.swipe_item.mapRectToParent(rp.swipe_item.boundingRect()).left() == pytest.approx(20)
    # show run 1: every panel follows; it can be compared with the truth, bicubic, the inputs
    window.runs_panel.select(1)
    qtbot.mouseClick(window.runs_panel.show_button, Qt.LeftButton)
    assert s.shown_run.number == 1 and rp.result is first
    assert window.export_panel.save_result_button.isEnabled()
    for key in ("truth", "bicubic", "lr_hsi", "hr_msi"):
        s.set_comparison(key)
        assert rp._compare is not None and rp._compare.key == key
    # remove run 2: its folder goes
    folder = s.run_record(2).folder
    s.remove_run(2)
    assert [r.number for r in s.runs] == [1] and not Path(folder).exists()


def test_error_maps_and_per_band_scores_against_the_truth(qtbot, window):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=10)
    truth = result.prepared.truth.astype(np.float64)
    res = np.asarray(result.hr_hsi, dtype=np.float64)
    rp.show_combo.setCurrentIndex(rp.show_combo.findData("err_rmse"))
    np.testing.assert_allclose(rp.view.image.image, np.sqrt(np.mean((res - truth) ** 2, axis=2)), rtol=1e-5)
    assert rp.view._bar.isVisible()
    rp.spectra_tabs.setCurrentIndex(1)
    _, psnr = rp.band_psnr_curve.getOriginalDataset()
    mse = np.mean((res - truth) ** 2, axis=(0, 1))
    np.testing.assert_allclose(psnr, np.minimum(10 * np.log10(1.0 / mse), 100.0), rtol=1e-6)
    assert np.mean(psnr) == pytest.approx(result.metrics["PSNR"], abs=0.02)


def test_regions_give_the_mean_spectrum_of_their_pixels_and_export_to_csv(qtbot, window, tmp_path):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=10)
    cube = np.asarray(result.hr_hsi, dtype=np.float64)
    rect = rp.regions.add_rectangle(10, 12, 20, 30)
    mean, std, n = rp.region_stats[rect.number]["result"]
    np.testing.assert_allclose(mean, cube[10:20, 12:30].mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(std, cube[10:20, 12:30].std(axis=(0, 1)), rtol=1e-5, atol=1e-9)
    assert n == 180
    truth_mean = rp.region_stats[rect.number]["truth"][0]
    np.testing.assert_allclose(truth_mean, result.prepared.truth[10:20, 12:30].mean(axis=(0, 1)), rtol=1e-5)
    # a triangle: the pixels whose centre lies inside (i + j <= 14 for corners (0,0), (0,16), (16,0))
    tri = rp.regions.add_polygon([(0, 0), (0, 16), (16, 0)])
    i, j = np.mgrid[:DEMO_SIZE, :DEMO_SIZE]
    inside = (i + j) <= 14
    np.testing.assert_allclose(rp.region_stats[tri.number]["result"][0], cube[inside].mean(axis=0), rtol=1e-6)
    assert "R1" in rp.regions_label.text() and "R2" in rp.regions_label.text()
    # drawn with the mouse: the polygon tool takes clicks as corners, a double-click closes it
    qtbot.mouseClick(rp.tool_buttons["polygon"], Qt.LeftButton)
    assert rp.regions.tool == "polygon"
    for r_, c_ in ((40.0, 40.0), (40.0, 60.0), (60.0, 60.0)):
        rp.view.pointClicked.emit(r_, c_, False, False)
    rp.view.pointClicked.emit(60.0, 60.0, True, False)
    drawn = rp.regions.regions[-1]
    assert drawn.kind == "polygon" and drawn.number == 3
    got = drawn.mask((DEMO_SIZE, DEMO_SIZE))
    ii, jj = np.nonzero(got)
    assert ii.min() >= 40 and jj.max() < 60 and np.all(jj >= ii)            # above the diagonal
    assert abs(int(got.sum()) - 190) <= 20                                  # 190 strictly above, + the edge
    np.testing.assert_allclose(rp.region_stats[drawn.number]["result"][0], cube[got].mean(axis=0), rtol=1e-6)
    qtbot.mouseClick(rp.tool_buttons["pixel"], Qt.LeftButton)
    # moved: the statistics follow
    rect.item.setPos((12, 30), finish=True)
    np.testing.assert_allclose(rp.region_stats[rect.number]["result"][0], cube[30:40, 12:30].mean(axis=(0, 1)),
                               rtol=1e-6)
    # several pinned pixels
    rp.regions.pin(5, 5)
    rp.regions.pin(40, 50, add=True)
    assert rp.regions.pins == [(5, 5), (40, 50)] and len(rp._pin_curves) == 1
    # CSV export: reloads to the plotted values
    path = tmp_path / "spectra.csv"
    rp.export_spectra_csv(str(path))
    qtbot.waitUntil(lambda: path.exists() and window.state.workers.pending == 0, timeout=10000)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, values = rows[0], np.array(rows[1:], dtype=float)
    x, columns = rp.plotted_spectra()
    assert header[0] == "wavelength_nm" and header[1:] == [name for name, _ in columns]
    np.testing.assert_array_equal(values[:, 0], x)
    for k, (_name, y) in enumerate(columns, start=1):
        np.testing.assert_array_equal(values[:, k], y)
    assert "R1 result mean" in header and "R1 result sd" in header and "reconstructed" in header
    # the plot as PNG and SVG
    for name in ("plot.png", "plot.svg"):
        rp.export_spectrum_plot(str(tmp_path / name))
        assert (tmp_path / name).stat().st_size > 1000
    rp.regions.clear()
    assert not rp.region_stats and not rp.regions_label.isVisible()


def test_levels_histogram_presets_and_the_stretch_kept_across_toggles(qtbot, window):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=10)
    first = rp.displayed_levels().copy()
    assert first.shape == (3, 2)
    # the truth, then the result again: the same stored levels (the first drawing is not special)
    rp.show_combo.setCurrentIndex(rp.show_combo.findData("truth"))
    np.testing.assert_allclose(rp.displayed_levels(), first)
    rp.show_combo.setCurrentIndex(rp.show_combo.findData("result"))
    np.testing.assert_allclose(rp.displayed_levels(), first)
    # dragging the histogram's levels changes the image's
    rp.histogram.item.setLevels(rgba=[(0.0, 0.2), (0.05, 0.3), (0.1, 0.4)])
    np.testing.assert_allclose(rp.displayed_levels(), [(0.0, 0.2), (0.05, 0.3), (0.1, 0.4)])
    # min-max preset: each channel from its minimum to its maximum
    qtbot.mouseClick(rp.preset_buttons[(0.0, 100.0)], Qt.LeftButton)
    comp = np.asarray(result.hr_hsi)[:, :, list(rp.band_picker.bands())]
    np.testing.assert_allclose(rp.displayed_levels(), np.column_stack([comp.min(axis=(0, 1)),
                                                                        comp.max(axis=(0, 1))]), rtol=1e-5)
    assert rp.histogram.item.levelMode == "rgba"
    # RGB by wavelength: "650 nm" picks the nearest band
    wl = result.prepared.wavelengths
    rp.band_picker.set_wavelengths_nm((650, 550, 450))
    assert rp.band_picker.bands() == tuple(int(np.argmin(np.abs(wl - t))) for t in (650, 550, 450))
    spin = rp.band_picker.spins[0]
    assert spin.text() == f"{wl[spin.value()]:.0f} nm"
    assert spin.valueFromText("1000 nm") == int(np.argmin(np.abs(wl - 1000)))
    # the view can be reset after zooming
    rp.view.plot.getViewBox().setRange(xRange=(0, 5), yRange=(0, 5), padding=0)
    qtbot.mouseClick(rp.fit_button, Qt.LeftButton)
    (x0, x1), _ = rp.view.plot.getViewBox().viewRange()
    assert x1 - x0 >= DEMO_SIZE


def test_band_slider_reads_the_wavelength_and_plays(qtbot, window):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=10)
    wl = result.prepared.wavelengths
    rp.mode_combo.setCurrentIndex(rp.mode_combo.findData("band"))
    rp.band_slider.setValue(37)
    assert rp.band_label.text() == f"{wl[37]:.1f} nm (band 37)"
    np.testing.assert_array_equal(rp.view.image.image, np.asarray(result.hr_hsi)[:, :, 37])
    assert rp.histogram.item.levelMode == "mono"
    band = np.asarray(result.hr_hsi)[:, :, 37]
    np.testing.assert_allclose(rp.displayed_levels(), np.percentile(band, [1, 99]), rtol=1e-5)
    rp.play_button.setChecked(True)
    qtbot.waitUntil(lambda: rp.band_slider.value() >= 39, timeout=5000)
    rp.play_button.setChecked(False)
    stopped = rp.band_slider.value()
    qtbot.wait(400)
    assert rp.band_slider.value() == stopped


def test_hover_then_leave_goes_back_to_the_pinned_pixel(qtbot, window):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=10)
    rp.select_pixel(5, 6)
    rp._hovered(30, 31)
    np.testing.assert_allclose(rp.spectrum_data()[1], np.asarray(result.hr_hsi)[30, 31])
    assert "Hovered" in rp.pixel_label.text()
    rp.view.left.emit()
    np.testing.assert_allclose(rp.spectrum_data()[1], np.asarray(result.hr_hsi)[5, 6])
    assert "Pinned pixel <b>(row 5, col 6)" in rp.pixel_label.text()


def test_library_match_ranks_the_true_material_first(qtbot, window, tmp_path):
    rp = window.results_panel
    result = run_to_end(qtbot, window, epochs=60)
    # a library of the demo's materials (its own reflectances, 5 nm steps) as CSV
    path = write_material_library(tmp_path / "materials.csv")
    loaded = []
    rp.library_tab.open_library(str(path), on_done=loaded.append)
    qtbot.waitUntil(lambda: bool(loaded), timeout=10000)
    abundances = demo_abundances(DEMO_SIZE)
    tab = rp.library_tab
    ranked = {}
    for k, material in enumerate(MATERIALS):
        row, col = np.unravel_index(np.argmax(abundances[:, :, k]), abundances.shape[:2])
        assert abundances[row, col, k] > 0.85
        rp.select_pixel(int(row), int(col))
        # the pixel of the ground truth: its own material first (synthetic mode's scale is the
        # cube's 1..99 percentiles clipped to 0..1, which bends dark spectra: ranks, not angles)
        tab.target_combo.setCurrentText(f"pixel ({row}, {col}), truth")
        assert tab.matches[0][0] == material and tab.table.item(0, 0).text() == material
        # the result's pixel: ranked as the result allows
        tab.target_combo.setCurrentText(f"pixel ({row}, {col})")
        ranked[material] = tab.matches[0][0]
    assert ranked["vegetation"] == "vegetation"
    print("result pixels ranked first:", ranked)
    # ticked: drawn over the spectra, scaled to the pixel
    rp.library_tab.set_overlay(0)
    assert len(rp._library_curves) == 1 and rp._library_curves[0].name() == f"library: {tab.matches[0][0]}"
    _, drawn = rp._library_curves[0].getOriginalDataset()
    target = tab.target()
    ok = np.isfinite(drawn)
    assert np.abs(drawn[ok] - target[ok]).mean() < np.abs(target[ok]).mean()     # scaled to the pixel


def test_write_all_outputs_writes_the_shown_run_with_its_own_settings(qtbot, window, tmp_path):
    result = run_to_end(qtbot, window, epochs=7)
    window.training_panel.form.widget("epochs").setValue(33)        # changed after the run
    out, logs = tmp_path / "export", tmp_path / "export logs"
    window.state.update_config(output_dir="export", log_dir="export logs")   # relative, as typed
    window.export_panel.write_all()
    qtbot.waitUntil(lambda: (out / "run.json").exists() and window.state.workers.pending == 0, timeout=30000)
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["epochs"] == 7 and run["config"]["output_dir"] == str(out)
    assert Path(run["outputs"]["hr_hsi"]) == out / "hr_hsi.npy"
    np.testing.assert_array_equal(io.load_cube(str(out / "hr_hsi.npy")).data, np.asarray(result.hr_hsi))
    assert (out / "metrics.json").exists()
    # the log and the settings go to the log folder, as the CLI puts them; the message counts
    # every file written and names the folders whole
    assert (logs / "config_used.yaml").exists() and "epoch" in (logs / "spectramorph.log").read_text()
    written = [p for p in out.iterdir()] + [p for p in logs.iterdir()]
    status = window.export_panel.status.text()
    assert f"Wrote {len(written)} files of Run 1 to {out}" in status and str(logs) in status, sorted(p.name for p in written)
    # the kept run's folder has no figures (drawn on export, off the run): the export has them
    assert (out / "endmembers.png").exists() and (out / "abundances.png").exists()
    assert not list(Path(window.state.shown_run.folder).glob("*.png"))
    wait_idle(qtbot, window)


def test_per_band_scores_wait_until_their_tab_is_shown(qtbot, window, monkeypatch):
    # a pass over the whole cube per run shown: not spent while the tab is hidden
    from spectramorph_engine.quality import inspection
    calls = []
    real = inspection.per_band_scores
    monkeypatch.setattr(inspection, "per_band_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    rp = window.results_panel
    rp.spectra_tabs.setCurrentIndex(0)
    run_to_end(qtbot, window, epochs=5)
    assert calls == []
    rp.spectra_tabs.setCurrentIndex(1)
    assert len(calls) == 1
    _, psnr = rp.band_psnr_curve.getOriginalDataset()
    assert psnr is not None and len(psnr) == window.state.result.hr_hsi.shape[2]
