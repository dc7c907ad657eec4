"""The engine's display helpers the app uses (spectramorph_engine.quality.previews): no Qt needed."""
import numpy as np
import pytest

from spectramorph_engine import InputError
from spectramorph_engine.quality.previews import (composite, default_rgb_bands, display_levels,
                                                  format_wavelengths, msi_display_bands, parse_wavelengths,
                                                  shared_range)


def test_parse_wavelengths_accepts_lists_columns_ranges_and_micrometres():
    np.testing.assert_allclose(parse_wavelengths("400, 500,600", 3), [400, 500, 600])
    np.testing.assert_allclose(parse_wavelengths("400\n500\n600\n", 3), [400, 500, 600])       # a pasted column
    np.testing.assert_allclose(parse_wavelengths("400\t500;600", 3), [400, 500, 600])
    np.testing.assert_allclose(parse_wavelengths("400..2500", 4), [400, 1100, 1800, 2500])
    np.testing.assert_allclose(parse_wavelengths("400:700", 4), [400, 500, 600, 700])
    np.testing.assert_allclose(parse_wavelengths("0.4 0.5 0.6", 3), [400, 500, 600])           # micrometres
    wl = np.linspace(400, 2500, 120)
    np.testing.assert_allclose(parse_wavelengths(format_wavelengths(wl), 120), wl, rtol=1e-5)  # round trip


@pytest.mark.parametrize("text, bands, words", [
    ("", 3, "no wavelengths"),
    ("400, 500", 3, "2 wavelengths given but the hyperspectral cube has 3 bands"),
    ("400, 500, 450", 3, "band 2 is 500 and band 3 is 450"),
    ("400, 400, 500", 3, "increase"),
    ("400, x, 500", 3, "'x' is not a number"),
    ("-400, 0, 500", 3, "> 0"),
    ("nan, 1, 2", 3, "finite"),
])
def test_parse_wavelengths_refuses_with_a_sentence(text, bands, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        parse_wavelengths(text, bands)


def test_rgb_bands_composite_and_levels():
    wl = np.linspace(400, 2500, 120)
    r, g, b = default_rgb_bands(120, wl)
    assert abs(wl[r] - 640) < 10 and abs(wl[g] - 550) < 10 and abs(wl[b] - 460) < 10
    assert default_rgb_bands(120, None) == (66, 36, 9)
    assert default_rgb_bands(2, None) == (0, 0, 0)
    cube = np.random.default_rng(0).random((5, 6, 10)).astype(np.float32)
    rgb = composite(cube, (3, 2, 99))                       # out-of-range bands are clipped
    np.testing.assert_array_equal(rgb, cube[:, :, [3, 2, 9]])
    np.testing.assert_array_equal(composite(cube[:, :, :1], (0, 0, 0)), cube[:, :, 0])
    levels = display_levels(rgb)
    assert levels.shape == (3, 2) and np.all(levels[:, 1] > levels[:, 0])
    np.testing.assert_allclose(levels[0], np.percentile(rgb[:, :, 0], [1, 99]))
    flat = display_levels(np.ones((4, 4)))
    assert flat.shape == (2,) and flat[1] > flat[0]
    assert shared_range([np.zeros(3), np.array([2.0, -1.0])]) == (-1.0, 2.0)


def test_msi_display_bands_follow_the_srf():
    srf = np.zeros((4, 10))
    srf[0, 0:3] = 1
    srf[1, 3:6] = 1
    srf[2, 6:8] = 1
    srf[3, 8:] = 1
    assert msi_display_bands(srf, (7, 4, 1)) == [2, 1, 0]
    assert msi_display_bands(srf[:1], (7, 4, 1)) == [0, 0, 0]
