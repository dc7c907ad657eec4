"""Sensor-model previews, exports, configuration round trip, bad input, remembered layout."""
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PySide6.QtGui import QImage

from spectramorph_engine import load_config

from .conftest import DEMO_SIZE, run_to_end, wait_idle


def _one_core():
    """The CLI gives torch one thread per core it may use: one (see conftest.one_torch_thread)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _choose(combo, value):
    i = combo.findData(value)
    assert i >= 0, value
    combo.setCurrentIndex(i)


# ---------------------------------------------------------------------------- PSF / SRF

def test_psf_preview_follows_type_sigma_and_size(window):
    psf = window.psf_panel
    form = psf.form
    before = psf.kernel.copy()
    assert before.shape == (15, 15) and abs(before.sum() - 1) < 1e-6
    _choose(form.widget("psf_type"), "airy")
    assert window.state.config.psf_type == "airy"
    assert not np.allclose(psf.kernel, before)
    airy = psf.kernel.copy()
    form.widget("sigma").setValue(1.5)
    assert window.state.config.sigma == 1.5
    assert not np.allclose(psf.kernel, airy)
    assert psf.kernel_view.image.image.shape == (15, 15)
    np.testing.assert_allclose(psf.kernel_view.image.image, psf.kernel, rtol=1e-6)   # the image is the kernel
    form.widget("kernel_size").setValue(4)
    assert psf.kernel.shape == (9, 9)
    assert psf.kernel_view.image.image.shape == (9, 9)
    from spectramorph_engine.sensors import psf as psf_mod
    np.testing.assert_allclose(psf.kernel, psf_mod.make_psf("airy", 1.5, 4))
    assert f"{psf_mod.psf_fwhm(psf.kernel):.2f} px" in psf.stats.text()
    assert "FWHM" in psf.stats.text() and "Sum" in psf.stats.text()
    x, y = psf.profile_curve.getOriginalDataset()
    assert x is not None and len(x) == len(y) > 1


def test_psf_file_is_validated(window, tmp_path, errors):
    good = tmp_path / "kernel.npy"
    k = np.ones((5, 5)) / 25
    np.save(good, k)
    assert window.psf_panel.choose_file(str(good))
    assert window.state.config.provide_psf and window.state.config.psf_file == str(good)
    assert window.psf_panel.kernel.shape == (5, 5)
    bad = tmp_path / "even.npy"
    np.save(bad, np.ones((4, 4)))
    assert not window.psf_panel.choose_file(str(bad))
    assert errors
    assert window.state.config.psf_file == str(good)      # the previous kernel stays


def test_srf_preset_curves(qtbot, window):
    srf = window.srf_panel
    combo = srf.form.widget("num_msi_bands")
    for n in (1, 3, 8, 16, 4):
        _choose(combo, n)
        assert window.state.config.num_msi_bands == n
        assert len(srf.curves) == n
        assert srf.srf.shape == (n, window.state.prepared.lr_hsi.shape[2])
    assert "true wavelengths" in srf.note.text()
    x, _ = srf.curves[0].getOriginalDataset()
    assert x[0] == pytest.approx(400.0) and x[-1] == pytest.approx(2500.0)
    # the pair is prepared again with the new SRF (HR-MSI band count follows the preset)
    _choose(combo, 8)
    qtbot.waitUntil(lambda: window.state.prepared is not None and window.state.prepared.hr_msi.shape[2] == 8,
                    timeout=20000)


def test_named_camera_sets_the_srf_and_the_band_count(qtbot, window):
    srf, s = window.srf_panel, window.state
    combo = srf.form.widget("msi_camera")
    _choose(combo, "sentinel2_10m")
    assert s.config.msi_camera == "sentinel2_10m"
    x, _ = srf.curves[0].getOriginalDataset()
    peaks = [x[np.argmax(row)] for row in srf.srf]
    np.testing.assert_allclose(peaks, [492.4, 559.8, 664.6, 832.8], atol=np.max(np.diff(x)))
    assert "Sentinel-2" in srf.note.text()
    assert not srf.form.widget("num_msi_bands").isEnabled()       # the camera decides the band count
    _choose(combo, "worldview3")
    qtbot.waitUntil(lambda: s.prepared is not None and s.prepared.hr_msi.shape[2] == 16, timeout=20000)
    assert "msi_camera: worldview3" in srf.use_label.text()
    _choose(combo, None)                                         # back to the preset by band count
    qtbot.waitUntil(lambda: s.prepared is not None and s.prepared.hr_msi.shape[2] == s.config.num_msi_bands,
                    timeout=20000)
    assert s.config.msi_camera is None and srf.form.widget("num_msi_bands").isEnabled()


def test_fwhm_factor_changes_the_curves(window):
    srf = window.srf_panel
    before = srf.srf.copy()
    srf.form.widget("fwhm_factor").setValue(2.0)
    assert window.state.config.fwhm_factor == 2.0
    assert not np.allclose(srf.srf, before)


# ---------------------------------------------------------------------------- exports

@pytest.mark.parametrize("suffix", [".npy", ".mat", ".h5"])
def test_export_result(qtbot, window, tmp_path, suffix):
    result = run_to_end(qtbot, window, epochs=5)
    path = tmp_path / f"out{suffix}"
    window.export_panel.export_result(str(path))
    wait_idle(qtbot, window)
    assert path.exists()
    if suffix == ".npy":
        data = np.load(path)
    elif suffix == ".mat":
        mat = scipy.io.loadmat(path)
        data = mat["hr_hsi"]
        assert mat["endmembers"].shape == result.endmembers.shape
    else:
        with h5py.File(path, "r") as f:
            data = f["hr_hsi"][...]
            assert f["abundances"].shape == result.alle.shape
    assert data.shape == result.hr_hsi.shape
    np.testing.assert_allclose(data, result.hr_hsi, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []   # no temp file left


def test_export_figures(qtbot, window, tmp_path):
    run_to_end(qtbot, window, epochs=5)
    paths = {("endmembers", ".png"), ("abundances", ".jpg")}
    for which, suffix in paths:
        window.export_panel.export_figure(which, str(tmp_path / f"{which}{suffix}"))
    wait_idle(qtbot, window)
    for which, suffix in paths:
        image = QImage(str(tmp_path / f"{which}{suffix}"))
        assert not image.isNull() and image.width() > 100


def test_failed_export_keeps_the_earlier_file(qtbot, window, tmp_path, errors, monkeypatch):
    result = run_to_end(qtbot, window, epochs=5)
    path = tmp_path / "result.npy"
    path.write_bytes(b"earlier export")
    window.export_panel.export_result(str(tmp_path / "no" / "such" / "folder" / "result.npy"))
    window.export_panel.export_result(str(tmp_path / "result.txt"))      # not a result type
    wait_idle(qtbot, window)
    assert len(errors) == 2
    assert any("does not exist" in e for e in errors) and any(".npy, .mat, .h5 or .tif" in e for e in errors)

    # a disk that fills up half-way through the write: the earlier file stays as it was
    def half_then_fail(file, arr, *a, **k):
        with open(file, "wb") as fh:
            fh.write(b"\x93NUMPY partial")
        raise OSError(28, "No space left on device", str(file))
    monkeypatch.setattr(np, "save", half_then_fail)
    window.export_panel.export_result(str(path))
    wait_idle(qtbot, window)
    assert len(errors) == 3 and "No space left" in errors[-1]
    assert path.read_bytes() == b"earlier export"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []   # no temp file
    monkeypatch.undo()
    # and the window still works: the same export now succeeds
    window.export_panel.export_result(str(path))
    wait_idle(qtbot, window)
    assert np.load(path).shape == result.hr_hsi.shape


# ---------------------------------------------------------------------------- configuration

def test_yaml_round_trip_restores_the_panels(qtbot, window, tmp_path):
    dp, psf, srf, tp = window.data_panel, window.psf_panel, window.srf_panel, window.training_panel
    _choose(psf.form.widget("psf_type"), "moffat")
    psf.form.widget("sigma").setValue(2.25)
    _choose(srf.form.widget("num_msi_bands"), 8)
    srf.form.widget("fwhm_factor").setValue(3.0)
    tp.form.widget("epochs").setValue(12)
    tp.form.widget("hidden_size").setValue(32)
    tp.form.widget("init_lr").setValue(2e-4)
    _choose(tp.form.widget("scheduler"), "flat")
    tp.form.bound["training_batch_size"].widget.check.setChecked(False)
    tp.form.bound["training_batch_size"].widget.spin.setValue(512)
    dp.synthetic_form.bound["snr_spatial"].widget.check.setChecked(True)      # no LR-HSI noise
    dp.synthetic_form.widget("downsample_ratio").setValue(2)
    saved = window.state.config
    assert (saved.psf_type, saved.training_batch_size, saved.snr_spatial) == ("moffat", 512, None)
    path = tmp_path / "run.yaml"
    window.export_panel.save_config(str(path))
    wait_idle(qtbot, window)
    on_disk = load_config(path)
    # The demo lives in memory: the YAML names a copy written beside it, so the CLI runs it as is.
    assert on_disk.mat_file and Path(on_disk.mat_file).exists()
    assert on_disk.replace(mat_file=None, wavelengths=None) == saved

    # back to defaults in a fresh window, then open the YAML
    from spectramorph_gui.panels.main_window import MainWindow
    other = MainWindow(demo_size=DEMO_SIZE)
    qtbot.addWidget(other)
    other.show()
    qtbot.waitUntil(lambda: other.state.prepared is not None, timeout=30000)
    assert other.state.config.psf_type == "gaussian"
    with qtbot.waitSignal(other.state.loadFinished, timeout=30000) as blocker:
        other.export_panel.open_config(str(path))
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: other.state.prepared is not None and not other.state.preparing, timeout=30000)
    cfg = other.state.config
    assert cfg == on_disk
    assert other.psf_panel.form.widget("psf_type").currentData() == "moffat"
    assert other.psf_panel.form.widget("sigma").value() == 2.25
    assert other.srf_panel.form.widget("num_msi_bands").currentData() == 8
    assert len(other.srf_panel.curves) == 8
    assert other.training_panel.form.widget("epochs").value() == 12
    assert other.training_panel.form.widget("init_lr").value() == pytest.approx(2e-4)
    assert other.training_panel.form.widget("scheduler").currentData() == "flat"
    assert other.training_panel.form.bound["training_batch_size"].value() == 512
    assert other.data_panel.synthetic_form.bound["snr_spatial"].value() is None
    assert other.state.prepared.ratio == 2
    np.testing.assert_allclose(other.state.truth.data, window.state.truth.data)
    other.close()

    # the CLI runs the saved file unchanged
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "spectramorph_engine", "run", "--config", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          preexec_fn=_one_core if hasattr(os, "sched_setaffinity") else None)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / on_disk.output_dir / "hr_hsi.npy"
    assert np.load(out).shape == window.state.prepared.truth.shape


def test_bad_config_file_is_a_dialog(qtbot, window, tmp_path, errors):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: -3\n")
    before = window.state.config
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.export_panel.open_config(str(path))
    assert blocker.args == [False]
    assert errors and "epochs" in errors[-1]
    assert window.state.config == before


# ---------------------------------------------------------------------------- bad data

def test_missing_file_is_a_dialog_and_keeps_the_data(qtbot, window, tmp_path, errors):
    before = window.state.prepared
    window.data_panel.open_file("truth", str(tmp_path / "nothing_here.mat"))
    assert errors and "nothing_here.mat" in errors[-1]
    assert window.state.prepared is before
    assert window.state.truth.label == "built-in demo scene"


def test_unreadable_file_is_a_dialog(qtbot, window, tmp_path, errors):
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"not a numpy file at all")
    before = window.state.prepared
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.data_panel.open_file("truth", str(bad))
    assert blocker.args == [False]
    assert errors and "broken.npy" in errors[-1]
    assert window.state.prepared is before and window.state.config.synthetic


def test_real_pair_and_mismatched_pair(qtbot, window, tmp_path, errors):
    prep = window.state.prepared
    hr, lr = tmp_path / "hr.npy", tmp_path / "lr.npy"
    np.save(hr, prep.hr_msi)
    np.save(lr, prep.lr_hsi)
    window.data_panel.real_radio.setChecked(True)
    assert not window.state.config.synthetic
    for role, path in (("hr_msi", hr), ("lr_hsi", lr)):
        with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
            window.data_panel.open_file(role, str(path))
        assert blocker.args == [True], errors
    real = window.state.prepared
    assert real is not None and real.mode == "real" and real.ratio == 4
    assert window.state.config.hr_msi_file == str(hr)
    assert window.data_panel.real_box.isVisible()

    bad = tmp_path / "lr_bad.npy"
    np.save(bad, np.random.default_rng(0).random((15, 15, 30), dtype=np.float32))
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.data_panel.open_file("lr_hsi", str(bad))
    assert blocker.args == [False]
    assert errors and "64" in errors[-1] and "15" in errors[-1]       # names both shapes
    assert window.state.prepared is real                               # previous pair kept
    assert window.state.lr_hsi.path == str(lr)
    assert window.state.config.lr_hsi_file == str(lr)


def test_variable_picker_for_files_with_several_arrays(qtbot, window, tmp_path, monkeypatch):
    from spectramorph_gui.panels import dialogs
    truth = window.state.truth.data
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"aaa_small": np.ones((3, 3)), "scene": truth * 2})
    asked = []

    def pick(parent, p, choices, **_kw):
        asked.append(list(choices))
        return next(c for c in choices if c.startswith("scene"))
    monkeypatch.setattr(dialogs, "pick_variable", pick)
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.data_panel.open_file("truth", str(path))
    assert blocker.args == [True]
    assert asked and len(asked[0]) == 2
    assert window.state.config.mat_key == "scene" and window.state.config.mat_file == str(path)
    assert window.state.truth.data.shape == truth.shape


# ---------------------------------------------------------------------------- settings

def test_layout_and_geometry_are_remembered(qtbot, window):
    window.resize(1234, 876)
    window.export_dock.close()                      # a user's own arrangement
    window.close()
    from spectramorph_gui.panels.main_window import MainWindow
    again = MainWindow(demo_size=DEMO_SIZE, load_demo=False)
    qtbot.addWidget(again)
    again.show()
    qtbot.waitUntil(lambda: again.isVisible())
    assert (again.width(), again.height()) == (1234, 876)
    assert not again.export_dock.isVisible()
    again.reset_layout()
    assert again.export_dock.isVisibleTo(again)
    again.close()


# ---------------------------------------------------------------------------- real-world mode

def _real_pair_files(window, tmp_path, name="pair"):
    """The demo's prepared pair written as two .npy files (no wavelengths in them)."""
    prep = window.state.prepared
    hr, lr = tmp_path / f"{name}_hr.npy", tmp_path / f"{name}_lr.npy"
    np.save(hr, prep.hr_msi)
    np.save(lr, prep.lr_hsi)
    return hr, lr, prep


def open_real_pair(qtbot, window, tmp_path, name="pair"):
    hr, lr, prep = _real_pair_files(window, tmp_path, name)
    window.data_panel.real_radio.setChecked(True)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(hr), str(lr))
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: window.state.srf_estimate is not None and window.state.workers.pending == 0,
                    timeout=60000)
    return prep


def test_real_world_srf_estimate_panel(qtbot, window, tmp_path, errors):
    prep = open_real_pair(qtbot, window, tmp_path)
    s, srf = window.state, window.srf_panel
    c, bands = prep.hr_msi.shape[2], prep.lr_hsi.shape[2]
    real = s.prepared
    assert real.mode == "real" and real.srf_estimate is not None        # auto -> estimated from the pair
    assert len(srf.curves) == c and srf.srf.shape == (c, bands)
    np.testing.assert_allclose(srf.srf, s.srf_estimate.srf_normalized)
    # fit quality per band: PSNR and R^2 of the estimate
    t = srf.fit_table
    assert t.rowCount() == c and t.columnCount() == 3
    for k in range(c):
        assert float(t.item(k, 1).text()) == pytest.approx(float(s.srf_estimate.psnr_db[k]), abs=0.05)
        assert float(t.item(k, 2).text()) == pytest.approx(float(s.srf_estimate.r2[k]), abs=5e-4)
    # which SRF and which training input the run will use
    use = srf.use_label.text()
    assert "estimated from the image pair" in use and real.training_input in use and "srf_source: auto" in use
    # no wavelengths in .npy files: the axis says so
    assert "unknown" in srf.wl_label.text()
    assert srf.plot.getPlotItem().getAxis("bottom").labelText.startswith("HSI band")

    # a preset instead: the estimate stays on screen, dashed, with both fits side by side
    _choose(srf.form.widget("srf_source"), "preset")
    qtbot.waitUntil(lambda: s.prepared is not None and s.prepared.srf_estimate is None
                    and s.srf_estimate is not None and not s.preparing, timeout=60000)
    assert len(srf.curves) == c and len(srf.estimate_curves) == c
    assert t.columnCount() == 5 and "preset" in t.horizontalHeaderItem(3).text()
    assert "preset" in srf.use_label.text()

    # save the estimate as a custom SRF file and read it back with the engine
    from spectramorph_engine.sensors import srf as srf_mod
    path = tmp_path / "estimated_srf.csv"
    srf.save_srf(str(path), which="estimate")
    wait_idle(qtbot, window)
    back = srf_mod.load_srf(str(path), bands)
    np.testing.assert_allclose(back, s.srf_estimate.srf_normalized, atol=1e-9)
    # ... and use it as the SRF file: the run will use it
    assert srf.choose_file(str(path))
    qtbot.waitUntil(lambda: s.prepared is not None and not s.preparing and "custom SRF" in s.prepared.srf_note,
                    timeout=30000)
    assert "custom SRF" in srf.use_label.text()
    assert not errors


def test_wavelengths_typed_validated_and_used(qtbot, window, tmp_path, errors):
    prep = open_real_pair(qtbot, window, tmp_path)
    s, dp = window.state, window.data_panel
    bands = prep.lr_hsi.shape[2]
    assert s.prepared.wavelengths is None and "Unknown" in dp.wl_status.text()
    before = s.config
    # refused, each with its sentence, and nothing changes
    for text, expected in (("400, 500, 600", f"{bands} bands"),
                           (", ".join(str(v) for v in range(bands, 0, -1)), "increase"),
                           ("400, abc", "'abc' is not a number")):
        assert not dp.apply_wavelengths(text)
        assert expected in errors[-1]
        assert s.config == before
    # pasted as a column, in micrometres: converted to nm
    values = np.linspace(0.4, 2.5, bands)
    assert dp.apply_wavelengths("\n".join(f"{v:.6f}" for v in values))
    qtbot.waitUntil(lambda: s.prepared is not None and s.prepared.wavelengths is not None, timeout=30000)
    np.testing.assert_allclose(s.config.wavelengths, values * 1000, rtol=1e-6)
    np.testing.assert_allclose(s.prepared.wavelengths, values * 1000, rtol=1e-6)
    assert "typed here" in dp.wl_status.text()
    # the SRF plot is now over wavelength
    qtbot.waitUntil(lambda: s.srf_estimate is not None and not s.preparing, timeout=60000)
    assert window.srf_panel.plot.getPlotItem().getAxis("bottom").labelText == "wavelength (nm)"
    np.testing.assert_allclose(window.srf_panel.x_axis, values * 1000, rtol=1e-6)
    # a range is enough too
    assert dp.apply_wavelengths("400..2500")
    np.testing.assert_allclose(s.config.wavelengths, np.linspace(400, 2500, bands))
    # carried into the run: the plots' axes are the wavelengths
    result = run_to_end(qtbot, window, epochs=5)
    np.testing.assert_allclose(result.prepared.wavelengths, np.linspace(400, 2500, bands))
    x, _ = window.results_panel.endmember_curves[0].getOriginalDataset()
    np.testing.assert_allclose(x, np.linspace(400, 2500, bands))
    assert window.results_panel.endmember_plot.getPlotItem().getAxis("bottom").labelText == "wavelength (nm)"
    # and into the YAML
    path = tmp_path / "real.yaml"
    window.export_panel.save_config(str(path))
    wait_idle(qtbot, window)
    np.testing.assert_allclose(load_config(path).wavelengths, np.linspace(400, 2500, bands))
    # Reset goes back to the file's own (none here)
    dp.wl_clear.click()
    assert s.config.wavelengths is None


def test_open_pair_replaces_a_pair_of_another_size(qtbot, window, tmp_path, errors):
    open_real_pair(qtbot, window, tmp_path)
    rng = np.random.default_rng(1)
    hr, lr = tmp_path / "big_hr.npy", tmp_path / "big_lr.npy"
    np.save(hr, rng.random((50, 50, 3), dtype=np.float32))
    np.save(lr, rng.random((10, 10, 20), dtype=np.float32))
    # one file at a time meets the old pair half-way: refused, with a hint
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.data_panel.open_file("hr_msi", str(hr))
    assert blocker.args == [False]
    assert "(50, 50, 3)" in errors[-1] and "Open pair" in errors[-1]
    # both together: accepted
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(hr), str(lr))
    assert blocker.args == [True]
    p = window.state.prepared
    assert p.hr_msi.shape == (50, 50, 3) and p.lr_hsi.shape == (10, 10, 20) and p.ratio == 5
    assert window.state.config.hr_msi_file == str(hr) and window.state.config.lr_hsi_file == str(lr)


def test_last_folder_is_remembered(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from spectramorph_gui.panels import dialogs
    folder = tmp_path / "my data"
    folder.mkdir()
    asked = []

    def fake_open(parent, title, start, filters):
        asked.append(start)
        return str(folder / "cube.npy"), ""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", fake_open)
    assert dialogs.ask_open_file(window, "Open", "*") == str(folder / "cube.npy")
    dialogs.ask_open_file(window, "Open", "*")
    assert asked[-1] == str(folder)          # the next dialog starts where the last one ended
    from spectramorph_gui.settings import last_folder, settings
    settings().sync()
    assert last_folder() == str(folder)      # kept in the settings (QSettings) between runs


def _open_pair_files(qtbot, window, hr, lr):
    """Real-world mode, the two files opened as a user would, and the pair prepared."""
    window.data_panel.real_radio.setChecked(True)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(hr), str(lr))
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: window.state.prepared is not None and window.state.prepared.mode == "real"
                    and not window.state.preparing and window.state.workers.pending == 0, timeout=60000)


def test_a_2d_pan_image_opens_as_a_one_band_msi(qtbot, window, tmp_path, errors):
    prep = window.state.prepared
    pan, lr = tmp_path / "pan.npy", tmp_path / "lr.npy"
    np.save(pan, prep.hr_msi.mean(axis=2))            # H x W: a panchromatic image as it comes
    np.save(lr, prep.lr_hsi)
    _open_pair_files(qtbot, window, pan, lr)
    assert window.state.prepared.hr_msi.shape[2] == 1
    assert "1 (the HR-MSI's)" in window.srf_panel.msi_label.text()
    assert not errors


def test_nodata_and_result_scale_are_editable_in_real_world_mode(qtbot, window):
    dp, s = window.data_panel, window.state
    dp.real_radio.setChecked(True)
    nodata = dp.real_form.bound["nodata"].widget
    assert s.config.nodata is None and nodata.check.isChecked()        # null: the file's own
    nodata.check.setChecked(False)
    nodata.spin.setValue(-9999.0)
    assert s.config.nodata == -9999.0
    scale = dp.real_form.widget("output_scale")
    _choose(scale, "normalized")
    assert s.config.output_scale == "normalized"
    nodata.check.setChecked(True)
    assert s.config.nodata is None


def test_pixels_without_data_are_counted_in_the_data_panel(qtbot, window, tmp_path, errors):
    prep = window.state.prepared
    hr, lr = tmp_path / "hr.npy", tmp_path / "lr.npy"
    lr_data = prep.lr_hsi.copy()
    lr_data[0, :2] = np.nan                       # two LR pixels without data
    np.save(hr, prep.hr_msi)
    np.save(lr, lr_data)
    _open_pair_files(qtbot, window, hr, lr)
    r = window.state.prepared.ratio
    text = window.data_panel.info_label.text()
    assert "No data</b> in 0 HR-MSI and 2 LR-HSI pixels" in text and f"{2 * r * r} result pixels" in text
    # a run: NaN where there is no data, the result, maps and spectra still shown
    result = run_to_end(qtbot, window, epochs=5)
    assert np.isnan(result.hr_hsi[:r, :2 * r]).all() and np.isfinite(result.hr_hsi[r:]).all()
    rp = window.results_panel
    rp.select_pixel(0, 0)
    rp.select_pixel(2 * r, 2 * r)
    assert np.isfinite(rp.spectrum_data()[1]).all()
    assert not errors


@pytest.mark.parametrize("first_bands, second_bands", [(3, 4), (4, 3)])
def test_srf_panel_never_shows_another_pairs_estimate(qtbot, window, tmp_path, errors,
                                                      first_bands, second_bands):
    """Opening a pair with another MSI band count: at every moment the state and the SRF panel
    show the estimate of the pair they are told about (or none yet), never the last pair's.
    (The estimate of a 3-band pair drawn over a 4-band pair indexed past its end.)"""
    rng = np.random.default_rng(7)
    truth = window.state.prepared.lr_hsi

    def pair(name, c):
        hr, lr = tmp_path / f"{name}_hr.npy", tmp_path / f"{name}_lr.npy"
        weights = rng.random((truth.shape[2], c))
        hsi = np.clip(truth + 0.01 * rng.random(truth.shape), 0, 1).astype(np.float32)
        hr_img = np.kron(hsi, np.ones((4, 4, 1))) @ (weights / weights.sum(0))
        np.save(hr, hr_img.astype(np.float32))
        np.save(lr, hsi)
        return hr, lr

    seen = []

    def check(prepared):
        est = window.state.srf_estimate
        if prepared is None or prepared.mode != "real" or est is None:
            return
        seen.append((prepared.hr_msi.shape[2], len(est.psnr_db)))
    window.state.preparedChanged.connect(check)
    window.state.srfEstimateChanged.connect(lambda _e: check(window.state.prepared))
    for name, c in (("first", first_bands), ("second", second_bands)):
        _open_pair_files(qtbot, window, *pair(name, c))
        qtbot.waitUntil(lambda: window.state.srf_estimate is not None and window.state.workers.pending == 0,
                        timeout=60000)
        assert window.state.prepared.hr_msi.shape[2] == c
        t = window.srf_panel.fit_table
        assert t.rowCount() == c
        for k in range(c):
            assert float(t.item(k, 1).text()) == pytest.approx(float(window.state.srf_estimate.psnr_db[k]), abs=0.05)
    assert seen and all(msi == est for msi, est in seen), seen
    assert not errors


def test_an_aligned_pair_says_what_was_done_in_the_data_panel(qtbot, window, tmp_path, errors):
    """GeoTIFFs whose LR-HSI starts one LR pixel east of the HR-MSI (its first column cut off):
    the HR-MSI cropped to the overlap, and the Data panel says how (issue 22)."""
    import rasterio
    from rasterio.transform import from_origin
    prep = window.state.prepared
    r = prep.ratio
    for name, cube, pixel, east in (("hr", prep.hr_msi, 10.0, 0.0), ("lr", prep.lr_hsi[:, 1:], 10.0 * r, 10.0 * r)):
        with rasterio.open(tmp_path / f"{name}.tif", "w", driver="GTiff", height=cube.shape[0],
                           width=cube.shape[1], count=cube.shape[2], dtype="float32", crs="EPSG:32633",
                           transform=from_origin(500000.0 + east, 4000000.0, pixel, pixel)) as ds:
            ds.write(np.moveaxis(cube.astype(np.float32), 2, 0))
    _open_pair_files(qtbot, window, tmp_path / "hr.tif", tmp_path / "lr.tif")
    p = window.state.prepared
    assert p.lr_hsi.shape[1] == prep.lr_hsi.shape[1] - 1 and p.hr_msi.shape[1] == prep.hr_msi.shape[1] - r
    assert not p.alignment["misregistration"]["corrected"]
    text = window.data_panel.info_label.text()
    assert f"<b>Alignment</b> ratio {r}; LR-HSI on a grid nested in the HR-MSI" in text
    assert f"from row 0, col {r} of" in text
    # align: off -- the strict check refuses the same pair, in the panel
    _choose(window.data_panel.real_form.widget("align"), "off")
    assert window.state.config.align == "off"
    qtbot.waitUntil(lambda: window.state.prepare_error is not None and not window.state.preparing, timeout=60000)
    assert "do not cover the same ground" in window.data_panel.info_label.text()
    assert not errors


def test_the_data_previews_of_a_big_pair_are_thumbnails_over_the_full_extent(qtbot):
    """A 2048^2 HR-MSI's preview is composed and stretched from every 4th pixel (it took 0.3-0.6 s
    of the GUI thread when taken whole), drawn over the image's full extent so that its pixel
    coordinates stay the image's."""
    from spectramorph_gui.panels.data_panel import PREVIEW_MAX_SIDE, _thumbnail
    from spectramorph_gui.panels.plotting import ImageView
    cube = np.random.default_rng(0).random((2048, 2048, 4), dtype=np.float32)
    thumb = _thumbnail(cube, [2, 1, 0])
    assert thumb.shape == (PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE, 3)
    np.testing.assert_array_equal(thumb[5, 7], cube[20, 28, [2, 1, 0]])
    view = ImageView("HR-MSI")
    qtbot.addWidget(view)
    view.set_image(thumb, levels=[[0, 1]] * 3, extent=cube.shape[:2])
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert (rect.width(), rect.height()) == (2048, 2048) and view.display_step == 4
