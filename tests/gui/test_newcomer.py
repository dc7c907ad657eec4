"""What a new user ran into (issue 11, part 8): errors that say what applies, the array picker,
previews, the PSF the run used, the SRF legend."""
import numpy as np
import pytest

from .test_panels import open_real_pair

PAIR_HINT = "Open pair"


def _open_one(qtbot, window, role, path):
    with qtbot.waitSignal(window.state.loadFinished, timeout=20000) as blocker:
        window.data_panel.open_file(role, str(path))
    return blocker.args == [True]


def test_the_open_pair_hint_comes_only_with_a_size_mismatch(qtbot, window, tmp_path, errors):
    open_real_pair(qtbot, window, tmp_path)
    rng = np.random.default_rng(2)
    # a 4-D array: wrong shape, nothing to do with the pair's sizes
    bad_shape = tmp_path / "four_d.npy"
    np.save(bad_shape, rng.random((4, 4, 4, 4), dtype=np.float32))
    assert not _open_one(qtbot, window, "hr_msi", bad_shape)
    assert "four_d.npy" in errors[-1] and PAIR_HINT not in errors[-1]
    # an unreadable file
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"this is not an array at all" * 20)
    assert not _open_one(qtbot, window, "lr_hsi", garbage)
    assert "garbage.npy" in errors[-1] and PAIR_HINT not in errors[-1]
    # a truncated .mat says so, without the hint
    import scipy.io
    whole = tmp_path / "whole.mat"
    scipy.io.savemat(str(whole), {"cube": rng.random((8, 8, 20), dtype=np.float32)})
    cut = tmp_path / "cut.mat"
    cut.write_bytes(whole.read_bytes()[:900])
    count = len(errors)
    window.data_panel.open_file("lr_hsi", str(cut))      # the variable list is read first: it fails there
    qtbot.waitUntil(lambda: len(errors) > count, timeout=20000)
    assert "cut.mat" in errors[-1] and "truncated or corrupted" in errors[-1] and PAIR_HINT not in errors[-1]
    # an image whose size does not fit the other one: the hint applies
    other = tmp_path / "other_size.npy"
    np.save(other, rng.random((50, 50, 3), dtype=np.float32))
    assert not _open_one(qtbot, window, "hr_msi", other)
    assert "(50, 50, 3)" in errors[-1] and PAIR_HINT in errors[-1]


# ---------------------------------------------------------------------------- the array picker

def _two_role_file(tmp_path):
    """One .mat holding an HR-MSI, an LR-HSI and a name that sorts first (as a user's might)."""
    import scipy.io
    rng = np.random.default_rng(3)
    path = tmp_path / "scene.mat"
    scipy.io.savemat(str(path), {"a_mask": np.ones((64, 64), dtype=np.float32),
                                 "hsi": rng.random((16, 16, 30), dtype=np.float32),
                                 "msi": rng.random((64, 64, 4), dtype=np.float32)})
    return path


def test_the_picker_says_which_image_it_asks_for_and_suggests_the_fitting_array(qtbot, window, tmp_path,
                                                                                 monkeypatch):
    from spectramorph_gui.panels import dialogs
    path = _two_role_file(tmp_path)
    asked = []

    def pick(parent, p, choices, role="", suggested=None):
        asked.append((role, suggested, list(choices)))
        return suggested
    monkeypatch.setattr(dialogs, "pick_variable", pick)
    window.data_panel.real_radio.setChecked(True)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(path), str(path))
    assert blocker.args == [True]
    (hr_role, hr_pick, choices), (lr_role, lr_pick, _) = asked
    assert choices[0].startswith("a_mask")                    # alphabetically first, not suggested
    assert hr_role.startswith("HR-MSI") and hr_pick.startswith("msi")
    assert lr_role.startswith("LR-HSI") and lr_pick.startswith("hsi")
    p = window.state.prepared
    assert p.hr_msi.shape == (64, 64, 4) and p.lr_hsi.shape == (16, 16, 30)


def test_the_picker_dialog_names_the_image_and_preselects(qtbot):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialogButtonBox, QListWidget

    from spectramorph_gui.panels import dialogs
    choices = ["a_mask  (64x64, float32)", "hsi  (16x16x30, float32)", "msi  (64x64x4, float32)"]
    seen = {}

    def answer(ok=True):
        box = QApplication.activeModalWidget()
        if box is None:
            QTimer.singleShot(20, lambda: answer(ok))
            return
        listing = box.findChild(QListWidget, "variableList")
        seen["title"] = box.windowTitle()
        seen["selected"] = [i.text() for i in listing.selectedItems()]
        ok_button = box.findChild(QDialogButtonBox).button(QDialogButtonBox.Ok)
        seen["ok_enabled"] = ok_button.isEnabled()
        box.grab().save(str(seen.get("shot", "/dev/null")))
        if not listing.selectedItems():
            listing.setCurrentRow(2)
        ok_button.click()

    QTimer.singleShot(0, answer)
    got = dialogs.pick_variable(None, "/data/scene.mat", choices, role="LR-HSI (low-resolution hyperspectral image)",
                                suggested=choices[1])
    assert got == choices[1]
    assert seen["title"] == "Choose the LR-HSI" and seen["selected"] == [choices[1]] and seen["ok_enabled"]
    # no suggestion: nothing selected, OK waits for the user's choice
    seen.clear()
    QTimer.singleShot(0, answer)
    got = dialogs.pick_variable(None, "/data/scene.mat", choices, role="HR-MSI (high-resolution multispectral image)")
    assert seen["title"] == "Choose the HR-MSI" and seen["selected"] == [] and not seen["ok_enabled"]
    assert got == choices[2]


# ---------------------------------------------------------------------------- the PSF the run used

def test_psf_panel_shows_the_blur_fitted_on_a_real_pair(qtbot, window, tmp_path):
    from PySide6.QtGui import QTextDocument
    panel = window.psf_panel
    assert window.state.config.sigma == pytest.approx(3.4)          # the configured (synthetic) sigma
    open_real_pair(qtbot, window, tmp_path)
    p = window.state.prepared
    assert p.mode == "real" and p.psf_fitted_sigma is not None
    doc = QTextDocument()
    doc.setHtml(panel.note.text())
    note = doc.toPlainText()
    assert f"sigma {p.psf_fitted_sigma:g} px" in note
    # the demo's 15 x 15 Gaussian of sigma 3.4 lies between the scanned widths: a free-form kernel
    # estimated on the pair, or the fitted Gaussian where it predicts no better
    free = p.psf_estimate is not None and p.psf_estimate.form == "free-form"
    assert ("estimated on the pair" if free else "fitted on the pair") in note
    assert "3.4" not in note
    np.testing.assert_allclose(panel.kernel, p.psf)                  # the kernel drawn is the run's
    assert not panel.form.widget("sigma").isEnabled() and not panel.form.widget("psf_type").isEnabled()
    # back to synthetic mode: the configured kernel again, editable
    window.data_panel.synthetic_radio.setChecked(True)
    qtbot.waitUntil(lambda: window.state.config.synthetic, timeout=10000)
    assert panel.form.widget("sigma").isEnabled()
    assert "Synthetic mode" in panel.note.text()


def _open_blind_pair(qtbot, window, tmp_path, hr, lr):
    """Open hr / lr (written as .npy) in real-world mode, as a user would; the prepared inputs
    once the sensors are estimated."""
    np.save(tmp_path / "hr.npy", hr)
    np.save(tmp_path / "lr.npy", lr)
    window.data_panel.real_radio.setChecked(True)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(tmp_path / "hr.npy"), str(tmp_path / "lr.npy"))
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: window.state.workers.pending == 0, timeout=60000)
    return window.state.prepared


def test_psf_panel_shows_the_free_form_kernel_estimated_on_a_real_pair(qtbot, window, tmp_path, shared_data):
    """A real pair blurred by a rotated, elongated kernel: the panel draws the kernel the engine
    estimated (the run's), its profile beside the fitted Gaussian's, and its shape in numbers."""
    from PySide6.QtGui import QTextDocument
    from spectramorph_engine.sensors import scenarios as sc
    from tests.engine.test_psf_estimation import rotated_gaussian
    truth = sc.load_truth(shared_data / "subimage_Urban_R162.mat")[:32, :76]
    srf = sc.ikonos_srf(shared_data / "Ikonos_spec_resp.mat", sc.evenly_spaced_wavelengths(truth.shape[2]))
    hr, lr = sc.build_pair(truth, srf, rotated_gaussian(2.6, 1.3, 30.0), 4, None, None)
    p, panel = _open_blind_pair(qtbot, window, tmp_path, hr, lr), window.psf_panel
    assert p.psf_estimate is not None and p.psf_estimate.form == "free-form"
    np.testing.assert_allclose(panel.kernel, p.psf)
    assert panel.kernel_view.plot.titleLabel.text.startswith("Estimated kernel")
    doc = QTextDocument()
    doc.setHtml(panel.note.text())
    assert "estimated on the pair" in doc.toPlainText() and "better than the best Gaussian" in doc.toPlainText()
    doc.setHtml(panel.stats.text())
    stats = doc.toPlainText()
    assert "long axis at" in stats and "centre" in stats
    names = [label.text for _sample, label in panel.profile_legend.items]
    assert any("estimated kernel" in n for n in names) and any("fitted Gaussian" in n for n in names)
    gx, _gy = panel.gauss_curve.getOriginalDataset()
    assert gx is not None and len(gx) > 3
    panel.grab().save(str(tmp_path / "psf_panel.png"))


def test_psf_panel_shows_a_heavy_tailed_kernel_estimated_on_a_real_pair(qtbot, window, tmp_path, library_truth,
                                                                        shared_data):
    """A real pair blurred by a Moffat kernel reaching 3 LR pixels (25 x 25 at ratio 4): the panel
    draws the whole estimated kernel (its support was cut at 17 x 17 before), names the profile
    with its numbers and says how much better than the best Gaussian it predicts the pair."""
    from PySide6.QtGui import QTextDocument
    from spectramorph_engine.sensors import scenarios as sc
    from tests.engine.test_psf_estimation import moffat_kernel
    truth, wl = library_truth(96, 100)
    srf = sc.ikonos_srf(shared_data / "Ikonos_spec_resp.mat", wl)
    hr, lr = sc.build_pair(truth, srf, moffat_kernel(1.6, 1.5, 12), 4, None, None)
    p, panel = _open_blind_pair(qtbot, window, tmp_path, hr, lr), window.psf_panel
    assert p.psf_estimate is not None and p.psf_estimate.form == "moffat"
    assert panel.kernel.shape[0] >= 21 and panel.grid_label.text().startswith(f"{panel.kernel.shape[0]} ")
    np.testing.assert_allclose(panel.kernel, p.psf)
    doc = QTextDocument()
    doc.setHtml(panel.note.text())
    note = doc.toPlainText()
    alpha, beta = p.psf_estimate.moffat[:2]
    assert f"heavy-tailed Moffat profile, alpha {alpha:.2f} px, beta {beta:.2f}" in note
    assert f"{panel.kernel.shape[0]} × {panel.kernel.shape[1]} px" in note and "better than the best Gaussian" in note
    panel.grab().save(str(tmp_path / "psf_panel_moffat.png"))
    # on a log axis the tail shows: four decades below the peak, the kernel's outer radii inside them
    radius, weight = panel.profile_curve.getOriginalDataset()
    panel.log_check.setChecked(True)
    low, high = panel.profile_plot.getPlotItem().getViewBox().viewRange()[1]
    assert panel.profile_plot.getPlotItem().getAxis("left").logMode
    assert low == pytest.approx(np.log10(weight.max()) - 4) and high > np.log10(weight.max())
    assert weight[radius >= 8].max() > 10 ** low           # the halo past 2 LR pixels is on the plot
    panel.grab().save(str(tmp_path / "psf_panel_moffat_log.png"))
    panel.log_check.setChecked(False)
    assert not panel.profile_plot.getPlotItem().getAxis("left").logMode


# ---------------------------------------------------------------------------- data previews

def _title(view) -> str:
    return view.plot.titleLabel.text


def test_no_stale_shapes_above_empty_previews_in_real_world_mode(qtbot, window):
    dp = window.data_panel
    assert "64 × 64" in _title(dp.hr_view)
    dp.real_radio.setChecked(True)
    qtbot.waitUntil(lambda: not window.state.config.synthetic and window.state.prepared is None, timeout=10000)
    assert dp.hr_view.image.image is None and dp.lr_view.image.image is None
    assert _title(dp.hr_view) == "HR-MSI" and _title(dp.lr_view) == "LR-HSI composite"


def test_hr_preview_keeps_its_colours_when_wavelengths_are_typed(qtbot, window, tmp_path):
    dp = window.data_panel
    open_real_pair(qtbot, window, tmp_path)          # a 4-band HR-MSI, no wavelengths in the files

    def channels_differ():
        img = dp.hr_view.image.image
        return img is not None and img.ndim == 3 and not (
            np.allclose(img[..., 0], img[..., 1]) and np.allclose(img[..., 1], img[..., 2]))

    before = dp.msi_bands(window.state.prepared)
    assert len(set(before)) == 3 and channels_differ()
    assert dp.apply_wavelengths("400..2500")
    qtbot.waitUntil(lambda: window.state.prepared is not None and window.state.prepared.wavelengths is not None
                    and window.state.workers.pending == 0, timeout=30000)
    after = dp.msi_bands(window.state.prepared)
    assert after == [2, 1, 0] and channels_differ()           # red, green, blue of a B/G/R/NIR camera
    np.testing.assert_array_equal(dp.hr_view.image.image, window.state.prepared.hr_msi[:, :, after])
    assert "MSI bands 3/2/1 as R/G/B" in dp.hr_view.toolTip()


# ---------------------------------------------------------------------------- SRF legend colours

def _rgb(curve):
    c = curve.opts["pen"].color()
    return c.red(), c.green(), c.blue()


def test_srf_curves_are_drawn_in_the_colour_of_their_band(qtbot, window):
    """The demo's 4-band preset (blue, green, red, NIR on the true wavelengths): the blue band is
    drawn blue, the green green, the red red; the legend names each band's centre."""
    panel = window.srf_panel
    qtbot.waitUntil(lambda: len(panel.curves) == 4, timeout=10000)
    (r0, g0, b0), (r1, g1, b1), (r2, g2, b2) = (_rgb(panel.curves[i]) for i in range(3))
    assert b0 > r0 and b0 > g0 * 0.8                   # blue
    assert g1 > r1 and g1 > b1                         # green
    assert r2 > g2 and r2 > b2                         # red
    assert len({_rgb(c) for c in panel.curves}) == 4   # the NIR band has a colour of its own
    labels = [item.text for _sample, item in panel.legend.items]
    assert labels[0].startswith("MSI band 1 · 4") and "nm" in labels[0]
    # wavelengths unknown (a real pair without them): still blue to red along the spectrum
    from spectramorph_gui.panels.srf_panel import band_colours
    cols = band_colours([30.0, 5.0, 15.0], in_nm=False)
    assert cols[1][2] > cols[1][0] and cols[0][0] > cols[0][2]
