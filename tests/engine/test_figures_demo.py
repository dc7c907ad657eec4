"""Result figures (Agg, no pyplot) and the built-in demo scene."""
import os

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from spectramorph_engine.run.demo import (DEMO_DESCRIPTION, MATERIALS, demo_abundances, demo_scene,
                                          material_spectra)
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.quality.figures import abundance_figure, endmember_figure, save_figure


# ------------------------------------------------------------------------- figures

def test_endmember_figure_one_line_per_endmember_and_wavelength_axis():
    e = np.random.default_rng(0).random((4, 30))
    fig = endmember_figure(e, wavelengths=np.linspace(400, 1000, 30))
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 4
    assert ax.get_xlabel() == "Wavelength (nm)"
    assert len(ax.get_legend().get_texts()) == 4
    assert len({to_hex(line.get_color()) for line in ax.get_lines()}) == 4
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata()[[0, -1]], [400, 1000])


def test_endmember_figure_without_wavelengths_uses_band_numbers():
    fig = endmember_figure(np.ones((2, 5)))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Band"
    np.testing.assert_array_equal(ax.get_lines()[1].get_xdata(), [1, 2, 3, 4, 5])
    with pytest.raises(InputError, match="3 wavelengths given for 5 bands"):
        endmember_figure(np.ones((2, 5)), wavelengths=[1, 2, 3])


def test_abundance_figure_shares_one_colour_scale():
    alle = np.random.default_rng(1).random((20, 24, 5))
    alle[:, :, 2] *= 3.0  # one map with a much larger range
    fig = abundance_figure(alle)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 5
    assert [ax.get_title() for ax in fig.axes if ax.get_images()] == [f"ALLE {i}" for i in range(1, 6)]
    clims = {im.get_clim() for im in images}
    assert len(clims) == 1
    lo, hi = clims.pop()
    assert lo == pytest.approx(alle.min()) and hi == pytest.approx(alle.max())
    # exactly one colourbar: an extra axes without images beyond the 3 x 2 grid
    assert len(fig.axes) == 6 + 1


def test_figures_module_never_loads_pyplot():
    import subprocess
    import sys
    code = ("import sys, spectramorph_engine.quality.figures as f, numpy as np; "
            "f.abundance_figure(np.ones((4, 4, 2))); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_save_figure_png_and_jpg_load_back(tmp_path):
    fig = endmember_figure(np.random.default_rng(2).random((3, 10)))
    for name in ("spectra.png", "spectra.jpg"):
        path = save_figure(fig, tmp_path / name)
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(os.listdir(tmp_path)) == ["spectra.jpg", "spectra.png"]
    assert (tmp_path / "spectra.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "spectra.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_save_figure_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    with pytest.raises(InputError, match="unknown image type"):
        save_figure(fig, tmp_path / "plot.bmp")
    assert os.listdir(tmp_path) == []

    # A failure while writing: the temp file is removed and an existing file is untouched.
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, target)
    assert os.listdir(tmp_path) == ["plot.png"]
    assert target.read_bytes() == b"old"


# ---------------------------------------------------------------------------- demo

def band(wl, nm):
    return int(np.argmin(np.abs(wl - nm)))


def test_demo_scene_shape_range_and_determinism():
    truth, wl = demo_scene()
    assert truth.shape == (128, 128, 120) and truth.dtype == np.float32
    assert wl.shape == (120,) and wl[0] == pytest.approx(400) and wl[-1] == pytest.approx(2500)
    assert truth.min() >= 0.0 and truth.max() <= 1.0
    again, wl2 = demo_scene()
    np.testing.assert_array_equal(truth, again)
    np.testing.assert_array_equal(wl, wl2)
    other, _ = demo_scene(seed=1)
    assert not np.array_equal(truth, other)
    small, wl_small = demo_scene(size=32, num_bands=40)
    assert small.shape == (32, 32, 40) and wl_small.shape == (40,)
    assert isinstance(DEMO_DESCRIPTION, str) and DEMO_DESCRIPTION
    with pytest.raises(InputError):
        demo_scene(size=4)


def test_demo_abundances_sum_to_one_and_cover_every_material():
    ab = demo_abundances(64, seed=0)
    assert ab.shape == (64, 64, len(MATERIALS))
    assert ab.min() >= 0.0
    np.testing.assert_allclose(ab.sum(axis=2), 1.0)
    assert all((ab[:, :, k] > 0.9).any() for k in (0, 2, 3, 4))  # vegetation, water, roof, road


def test_demo_materials_look_like_real_spectra():
    wl = np.linspace(400, 2500, 211)
    s = material_spectra(wl)
    veg = s["vegetation"]
    assert veg[band(wl, 860)] / veg[band(wl, 670)] > 3  # red edge
    assert veg[band(wl, 550)] > veg[band(wl, 480)] and veg[band(wl, 550)] > veg[band(wl, 670)]  # green bump
    assert veg[band(wl, 1450)] < veg[band(wl, 1250)] and veg[band(wl, 1940)] < veg[band(wl, 1650)]  # water dips
    assert s["water"][band(wl, 900):].max() < 0.02
    assert s["soil"][band(wl, 1600)] > s["soil"][band(wl, 450)]
    assert s["asphalt"].max() < 0.15 < s["roof"].min()


def test_demo_pixels_vegetation_water_edges_and_smooth_regions():
    truth, wl = demo_scene()
    ab = demo_abundances(128, seed=0)
    red, nir = band(wl, 670), band(wl, 860)
    vi, vj = np.unravel_index(np.argmax(ab[:, :, 0]), ab.shape[:2])
    assert truth[vi, vj, nir] / truth[vi, vj, red] > 3
    wi, wj = np.unravel_index(np.argmax(ab[:, :, 2]), ab.shape[:2])
    assert ab[wi, wj, 2] == 1.0 and truth[wi, wj, nir] < 0.1
    # Sharp edges: somewhere two neighbours differ by a lot (a roof next to the field).
    jump = np.abs(np.diff(truth, axis=1)).max(axis=2)
    assert jump.max() > 0.2
    # Smooth regions: most neighbour steps are tiny (texture only).
    assert np.median(jump) < 0.02
