"""Sensor-model previews, exports, configuration round trip, bad input, remembered layout."""
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from PySide6.QtGui import QImage

from spectramorph_engine import load_config

from .conftest import DEMO_SIZE, run_to_end, wait_idle


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
    form.widget("kernel_size").setValue(4)
    assert psf.kernel.shape == (9, 9)
    assert psf.kernel_view.image.image.shape == (9, 9)
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


def test_failed_export_keeps_the_earlier_file(qtbot, window, tmp_path, errors):
    run_to_end(qtbot, window, epochs=5)
    path = tmp_path / "result.npy"
    path.write_bytes(b"earlier export")
    window.export_panel.export_result(str(tmp_path / "no" / "such" / "folder" / "result.npy"))
    window.export_panel.export_result(str(tmp_path / "result.txt"))      # not a result type
    wait_idle(qtbot, window)
    assert len(errors) == 2
    assert path.read_bytes() == b"earlier export"


# ---------------------------------------------------------------------------- configuration

def test_yaml_round_trip_restores_the_panels(qtbot, window, tmp_path):
    dp, psf, srf, tp = window.data_panel, window.psf_panel, window.srf_panel, window.training_panel
    _choose(psf.form.widget("psf_type"), "moffat")
    psf.form.widget("sigma").setValue(2.25)
    _choose(srf.form.widget("num_msi_bands"), 8)
    srf.form.widget("fwhm_factor").setValue(3.0)
    tp.form.widget("epochs").setValue(123)
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
    assert other.training_panel.form.widget("epochs").value() == 123
    assert other.training_panel.form.widget("init_lr").value() == pytest.approx(2e-4)
    assert other.training_panel.form.widget("scheduler").currentData() == "flat"
    assert other.training_panel.form.bound["training_batch_size"].value() == 512
    assert other.data_panel.synthetic_form.bound["snr_spatial"].value() is None
    assert other.state.prepared.ratio == 2
    np.testing.assert_allclose(other.state.truth.data, window.state.truth.data)
    other.close()


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

    def pick(parent, p, choices):
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
