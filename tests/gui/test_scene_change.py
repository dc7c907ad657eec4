"""A new scene under the results view (issue 21, items 1-3 and 6): pins, regions and library
targets of the last scene are kept where they fit the new image, dropped where they do not, and
nothing reads the old scene's pixels or bands; the region's spread is drawn; Open pair switches
to real-world mode."""
import numpy as np

from spectramorph_engine.run.demo import demo_scene
from spectramorph_gui.view_state import Scene, fit_to_scene

from .conftest import run_to_end, wait_idle, write_material_library


def _open_scene(qtbot, window, tmp_path, size, bands):
    """A smaller ground truth with another band count, its wavelengths typed as a user would."""
    truth, wl = demo_scene(size=size, num_bands=bands, seed=3)
    path = tmp_path / f"scene_{size}_{bands}.npy"
    np.save(path, truth)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_file("truth", str(path))
    assert blocker.args == [True]
    assert window.state.set_wavelengths(f"{wl[0]:.3f}..{wl[-1]:.3f}")
    qtbot.waitUntil(lambda: window.state.prepared is not None and not window.state.preparing
                    and window.state.prepared.truth.shape == truth.shape, timeout=30000)
    return truth


def test_a_smaller_scene_with_another_band_count_keeps_what_fits(qtbot, window, tmp_path, errors):
    rp = window.results_panel
    run_to_end(qtbot, window, epochs=5)
    loaded = []
    rp.library_tab.open_library(str(write_material_library(tmp_path / "materials.csv")), on_done=loaded.append)
    qtbot.waitUntil(lambda: bool(loaded), timeout=10000)
    rp.regions.pin(50, 60)                       # outside the next, 32 x 32 scene
    rp.regions.pin(5, 6, add=True)               # inside it
    inside = rp.regions.add_rectangle(2, 3, 10, 12)
    outside = rp.regions.add_rectangle(40, 40, 60, 60)
    wait_idle(qtbot, window)
    rp.library_tab.target_combo.setCurrentText(f"{outside.name} mean")
    old_bands = len(rp.region_stats[inside.number]["result"][0])

    truth = _open_scene(qtbot, window, tmp_path, 32, old_bands - 40)
    new_bands = truth.shape[2]
    result = run_to_end(qtbot, window, epochs=5)
    wait_idle(qtbot, window)
    assert not errors, errors                    # no IndexError, no band-count dialog
    # pins: the one inside kept, the one outside dropped
    assert rp.regions.pins == [(5, 6)] and rp.pixel == (5, 6)
    # regions: the one inside kept and measured on the new result, the other gone
    assert rp.regions.regions == [inside]
    mean, _std, n = rp.region_stats[inside.number]["result"]
    assert len(mean) == new_bands and n == 8 * 9
    np.testing.assert_allclose(mean, np.asarray(result.hr_hsi[2:10, 3:12], np.float64).mean(axis=(0, 1)),
                               rtol=1e-6)
    assert "72 px" in rp.regions_label.text()
    # its curves are drawn on the new axis
    for item in rp._region_items[inside.number]:
        if hasattr(item, "getOriginalDataset"):
            x, y = item.getOriginalDataset()
            assert len(x) == len(y) == new_bands
    # the library matches the new scene's spectra only
    labels = [label for label, _ in rp._match_targets()]
    assert labels and all("R2" not in label for label in labels)
    assert all(len(v) == new_bands for _, v in rp._match_targets())
    assert rp.library_tab.matches                # the pinned pixel matched against the library
    rp.select_pixel(1, 1)                        # a click later: still no dialog
    assert not errors


def test_region_spread_is_shaded(qtbot, window):
    rp = window.results_panel
    run_to_end(qtbot, window, epochs=5)
    region = rp.regions.add_rectangle(10, 12, 20, 30)
    wait_idle(qtbot, window)
    fills = [i for i in rp._region_items[region.number] if i.__class__.__name__ == "FillBetweenItem"]
    assert len(fills) == 1
    path = fills[0].path()
    assert not path.isEmpty()
    mean, std, _n = rp.region_stats[region.number]["result"]
    box = fills[0].boundingRect()       # what the plot's auto-range sees
    assert box.top() == np.float64(box.top())
    assert abs(box.top() - float((mean - std).min())) < 1e-5          # not pulled down to 0
    assert abs(box.bottom() - float((mean + std).max())) < 1e-5


def test_open_pair_switches_to_real_world_mode(qtbot, window, tmp_path):
    prep = window.state.prepared
    assert window.state.config.synthetic and window.data_panel.synthetic_radio.isChecked()
    hr, lr = tmp_path / "hr.npy", tmp_path / "lr.npy"
    np.save(hr, prep.hr_msi)
    np.save(lr, prep.lr_hsi)
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
        window.data_panel.open_pair(str(hr), str(lr))   # as File > Open pair does, mode untouched
    assert blocker.args == [True]
    qtbot.waitUntil(lambda: window.state.prepared is not None and not window.state.preparing, timeout=30000)
    assert not window.state.config.synthetic
    assert window.data_panel.real_radio.isChecked()
    assert window.state.prepared.mode == "real"
    assert window.training_panel.run_button.isEnabled()


def test_an_edit_just_before_opening_a_pair_does_not_unprepare_it(qtbot, window, tmp_path):
    """A setting changed a moment before File > Open pair schedules a preparation of the old
    (synthetic) configuration; it must not run once the pair is being opened and land after it
    (the new pair was shown with "synthetic mode needs a ground-truth cube")."""
    prep = window.state.prepared
    hr, lr = tmp_path / "hr.npy", tmp_path / "lr.npy"
    np.save(hr, prep.hr_msi)
    np.save(lr, prep.lr_hsi)
    window.state.set_config(window.state.config.replace(epochs=window.state.config.epochs + 1))
    with qtbot.waitSignal(window.state.loadFinished, timeout=30000):
        window.data_panel.open_pair(str(hr), str(lr))
    qtbot.wait(800)             # past the preparation delay of the edit
    qtbot.waitUntil(lambda: not window.state.preparing, timeout=30000)
    assert window.state.prepare_error is None
    assert window.state.prepared is not None and window.state.prepared.mode == "real"


def test_fit_to_scene_keeps_what_fits_without_qt():
    scene = Scene.of((32, 40, 10))
    fit = fit_to_scene([(50, 60), (5, 39)], [np.array([[0, 0], [0, 40], [32, 40], [32, 0]]),
                                             np.array([[10, 10], [10, 50], [20, 50], [20, 10]])],
                       ["R1", "R2"], scene)
    assert fit.pins == [(5, 39)] and fit.keep_regions == [0]
    assert any("R2" in n for n in fit.notes) and any("1 pinned pixel" in n for n in fit.notes)
    assert fit_to_scene([(40, 0)], [], [], scene).pins == [(16, 20)]     # none left: the centre


def test_a_big_hdf5_pair_stays_in_its_files_and_runs(qtbot, window, tmp_path, monkeypatch, errors):
    """An HDF5 pair above sources.LAZY_MIN_BYTES is not read into the app's memory a second time:
    its sources stay file-backed (read when the pair is prepared), the Data panel still shows
    their shapes and value ranges, an edit that prepares again reads them again, and the run's
    result is that of the same pair opened into memory."""
    import h5py
    from spectramorph_gui import sources
    prep = window.state.prepared
    hr_path, lr_path = tmp_path / "hr.h5", tmp_path / "lr.h5"
    for path, array in ((hr_path, prep.hr_msi), (lr_path, prep.lr_hsi)):
        with h5py.File(path, "w") as fh:
            fh["cube"] = np.asarray(array, dtype=np.float32)
    runs = []
    for lazy_from in (1 << 40, 0):                 # in memory, then file-backed
        monkeypatch.setattr(sources, "LAZY_MIN_BYTES", lazy_from)
        with qtbot.waitSignal(window.state.loadFinished, timeout=30000) as blocker:
            window.data_panel.open_pair(str(hr_path), str(lr_path))
        assert blocker.args == [True]
        qtbot.waitUntil(lambda: window.state.prepared is not None and not window.state.preparing, timeout=30000)
        lr_src = window.state.lr_hsi
        assert isinstance(lr_src.data, np.ndarray) == (lazy_from > 0)
        assert lr_src.value_range == (float(prep.lr_hsi.min()), float(prep.lr_hsi.max()))
        assert "×".join(map(str, prep.lr_hsi.shape)) in window.data_panel.lr_label.text().replace(" ", "")
        runs.append(run_to_end(qtbot, window, epochs=5))
    assert isinstance(window.state.hr_msi.data, h5py.Dataset)
    np.testing.assert_allclose(np.asarray(runs[1].hr_hsi), np.asarray(runs[0].hr_hsi), atol=1e-5)
    window.state.update_config(srf_source="preset")      # prepares again, from the files
    qtbot.wait(400)
    qtbot.waitUntil(lambda: not window.state.preparing, timeout=30000)
    assert window.state.prepare_error is None and window.state.prepared is not runs[1].prepared
    assert not errors
