"""The LR-HSI's sub-pixel displacement against the HR-MSI (sensors/coregistration.py), on real
data from ../shared/data (the Urban cube, the USGS library, the measured IKONOS responses)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spectramorph_engine.sensors import coregistration as co
from spectramorph_engine.sensors import scenarios as sc
from spectramorph_engine.sensors.psf_estimation import shifted_gaussian


@pytest.fixture(scope="module")
def urban(shared_data):
    """The real Urban cube (34 x 78 x 162) and the IKONOS responses on its bands."""
    truth = sc.load_truth(shared_data / "subimage_Urban_R162.mat")
    srf = sc.ikonos_srf(shared_data / "Ikonos_spec_resp.mat", sc.evenly_spaced_wavelengths(truth.shape[2]))
    return truth, srf


@pytest.mark.parametrize("rows, cols", [(0.0, 0.0), (0.3, -0.7), (-1.5, 1.5), (1.26, 0.49), (6.3, -7.9)])
def test_spline_shift_is_ndimage_shift_of_each_channel(urban, rows, cols):
    """The fast resampling gives scipy.ndimage.shift's values (cubic spline, "nearest" border,
    coefficients given) on every pixel, border included, also for shifts past its padding."""
    truth, _srf = urban
    coeffs = np.stack([ndimage.spline_filter(truth[:, :, b], order=3, mode="nearest") for b in (5, 60, 120)],
                      axis=2)
    padded = np.pad(coeffs, ((co._PAD, co._PAD), (co._PAD, co._PAD), (0, 0)), mode="edge")
    ours = co.spline_shift(padded, co._PAD, rows, cols)
    for i in range(coeffs.shape[2]):
        ref = ndimage.shift(coeffs[:, :, i], (rows, cols), order=3, mode="nearest", prefilter=False)
        np.testing.assert_allclose(ours[:, :, i], ref, rtol=0, atol=1e-12 * float(np.abs(ref).max()))


def test_a_sub_pixel_misregistration_is_measured(library_truth, shared_data):
    """LR-HSIs made with their blur centred off the pixel at ratio 4 (a misregistration of a
    fraction of an LR pixel) from a 128 x 128 USGS-library scene, measured IKONOS responses:
    the displacement is measured within 0.03 LR px and explains the pair 3x better than no
    shift; an aligned pair measures ~0 and gains nothing."""
    truth, wl = library_truth(128, 100)
    srf = sc.ikonos_srf(shared_data / "Ikonos_spec_resp.mat", wl)
    for centre in ((1.0, 2.0), (-0.6, 1.4), (0.0, 0.0)):          # (rows, cols) HR px
        hr, lr = sc.build_pair(truth, srf, shifted_gaussian(1.2, centre), 4, None, None)
        est = co.estimate_displacement(hr, lr, 4)
        assert est is not None
        np.testing.assert_allclose(est.displacement, (centre[1] / 4, centre[0] / 4), atol=0.03)
        assert est.fit_gain > 3.0 if any(centre) else est.fit_gain < 1.05
