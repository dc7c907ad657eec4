"""The HR-MSI preview shows the HR-MSI's own bands as R/G/B, chosen by where the SRF in use puts
them -- never one band three times (grey) when it has three or more."""
import numpy as np

from spectramorph_engine.quality.previews import msi_band_centres, msi_rgb_bands


def _gauss_rows(centres, bands=120, width=4.0):
    x = np.arange(bands)
    rows = np.exp(-0.5 * ((x[None, :] - np.asarray(centres)[:, None]) / width) ** 2)
    return rows / rows.sum(axis=1, keepdims=True)


WL = np.linspace(400, 2500, 120)


def test_blue_green_red_nir_shows_red_green_blue():
    srf = _gauss_rows([5, 9, 15, 23])                       # ~490, 560, 665, 805 nm
    centres = msi_band_centres(srf, WL)
    np.testing.assert_allclose(centres, WL[[5, 9, 15, 23]], atol=18.0)   # within a band (an edge cuts band 0)
    assert msi_rgb_bands(centres, in_nm=True) == [2, 1, 0]
    # without wavelengths: the three shortest bands, longest as red
    assert msi_rgb_bands(msi_band_centres(srf), in_nm=False) == [2, 1, 0]


def test_an_estimated_srf_with_long_tails_uses_its_located_centres():
    # a fitted row can peak far from its band (here band 2 peaks at HSI band 0) and spread
    # into the NIR; the estimator's located centres are where the bands are
    srf = _gauss_rows([5, 9, 15, 23], width=6.0)
    srf[2, 0] = 1.0
    srf[2, 40:] += 0.02
    located = WL[[5, 9, 15, 23]]
    centres = msi_band_centres(srf, WL, located=located)
    np.testing.assert_allclose(centres, located)
    bands = msi_rgb_bands(centres, in_nm=True)
    assert bands == [2, 1, 0] and len(set(bands)) == 3


def test_three_different_bands_whenever_there_are_three():
    # every band answers most at the same HSI bands (the case that made the preview grey)
    srf = np.full((3, 120), 1.0 / 120)
    srf[1, 60] += 1.0
    bands = msi_rgb_bands(msi_band_centres(srf, WL), in_nm=True)
    assert sorted(bands) == [0, 1, 2]
    # an 8-band camera: the visible bands nearest 640 / 550 / 460 nm
    centres = np.array([425.0, 480, 545, 605, 660, 725, 830, 950])
    assert msi_rgb_bands(centres, in_nm=True) == [4, 2, 1]
    # infrared-only bands: still three different ones, false colour
    assert sorted(msi_rgb_bands(np.array([900.0, 1600, 2200, 1200]), in_nm=True)) == [0, 1, 3]
    # one or two bands: grey
    assert msi_rgb_bands(np.array([500.0, 600]), in_nm=True) == [0, 0, 0]
