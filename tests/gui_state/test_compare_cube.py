"""The LR-HSI as a comparison on the HR grid (compare.NearestUpsampled): the values of the
enlarged pixels, and a few bands read without making the whole enlarged cube (at 2048^2 x 200
that was 3.2 GB, the app's memory peak when comparing with the LR-HSI)."""
import tracemalloc

import numpy as np

from spectramorph_gui.compare import NearestUpsampled


def test_enlarged_pixels_in_the_result_units():
    lr = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    view = NearestUpsampled(lr, 3, (15, 18), scale=2.0, offset=1.0)
    full = np.repeat(np.repeat(lr, 3, axis=0), 3, axis=1) * 2 + 1
    for key in [(slice(None), slice(None), [0, 3, 5]), (slice(None), slice(None), 2), (4, slice(2, 9), 1),
                (4, 7, slice(None)), (slice(0, 10, 2), 3, [1, 2]), (2, 5, 3)]:
        np.testing.assert_allclose(view[key], full[key], rtol=1e-6)
        assert np.shape(view[key]) == np.shape(full[key])
    np.testing.assert_allclose(np.asarray(view), full, rtol=1e-6)


def test_a_composite_does_not_enlarge_every_band():
    lr = np.zeros((64, 64, 200), dtype=np.float32)           # enlarged x 8: 210 MB for all bands
    view = NearestUpsampled(lr, 8, (512, 512))
    tracemalloc.start()
    try:
        rgb = view[:, :, [10, 60, 120]]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rgb.shape == (512, 512, 3)
    assert peak < 20 * 2 ** 20, f"{peak / 2 ** 20:.0f} MiB for three bands"
