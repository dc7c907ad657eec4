"""Inspection helpers on the real Urban cube (../shared/data): error maps and per-band scores
checked against direct numpy and against `metrics`, also through a memory-mapped .npy;
region statistics, masks, band choice by wavelength and display levels."""
import threading

import numpy as np
import pytest
import scipy.io

from spectramorph_engine.quality import metrics
from spectramorph_engine.core.errors import Cancelled, InputError
from spectramorph_engine.quality.inspection import (band_image, difference_map, nearest_band,
                                                    percentile_levels, per_band_scores, pixel_error_maps,
                                                    polygon_mask, rectangle_mask, rgb_by_wavelength,
                                                    roi_statistics)
from spectramorph_engine.sensors.scenarios import evenly_spaced_wavelengths


@pytest.fixture(scope="module")
def urban(shared_data):
    path = shared_data / "subimage_Urban_R162.mat"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return scipy.io.loadmat(str(path))["im"].astype(np.float64)       # 34 x 78 x 162, 0..0.635


@pytest.fixture(scope="module")
def perturbed(urban):
    rng = np.random.default_rng(3)
    est = urban * rng.uniform(0.9, 1.1, urban.shape[:2])[:, :, None] + rng.normal(0, 0.01, urban.shape)
    return est


def _direct_maps(a, b):
    rmse = np.sqrt(np.mean((a - b) ** 2, axis=2))
    cos = np.sum(a * b, axis=2) / (np.linalg.norm(a, axis=2) * np.linalg.norm(b, axis=2))
    return rmse, np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.mark.parametrize("block_rows", [None, 1, 5, 256])
def test_error_maps_equal_direct_numpy_and_metrics(urban, perturbed, block_rows):
    rmse_map, sam_map = pixel_error_maps(perturbed, urban, block_rows=block_rows)
    want_rmse, want_sam = _direct_maps(perturbed, urban)
    assert rmse_map.shape == sam_map.shape == urban.shape[:2]
    np.testing.assert_allclose(rmse_map, want_rmse, rtol=1e-12)
    np.testing.assert_allclose(sam_map, want_sam, rtol=1e-9, atol=1e-9)
    # The same figures as the whole-cube metrics: RMSE^2 averages, SAM is the map's mean.
    assert np.sqrt(np.mean(rmse_map ** 2)) == pytest.approx(metrics.rmse(urban, perturbed), rel=1e-12)
    assert np.nanmean(sam_map) == pytest.approx(metrics.sam(urban, perturbed), rel=1e-10)


def test_error_maps_through_a_memory_mapped_npy(tmp_path, urban, perturbed):
    np.save(tmp_path / "truth.npy", urban.astype(np.float32))
    np.save(tmp_path / "est.npy", perturbed.astype(np.float32))
    truth = np.load(tmp_path / "truth.npy", mmap_mode="r")
    est = np.load(tmp_path / "est.npy", mmap_mode="r")
    assert isinstance(truth, np.memmap)
    rmse_map, sam_map = pixel_error_maps(est, truth, block_rows=7)
    a, b = np.asarray(est, np.float64), np.asarray(truth, np.float64)
    want_rmse, want_sam = _direct_maps(a, b)
    np.testing.assert_allclose(rmse_map, want_rmse, rtol=1e-12)
    np.testing.assert_allclose(sam_map, want_sam, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(difference_map(est, truth, "sam", block_rows=7), sam_map)
    np.testing.assert_array_equal(difference_map(est, truth, block_rows=7), rmse_map)


def test_nan_and_zero_pixels_in_error_maps(urban, perturbed):
    est = perturbed.copy()
    truth = urban.copy()
    est[2, 3, 10] = np.nan                 # a pixel without data
    truth[5, 6, :] = 0.0                   # a zero spectrum has no angle
    rmse_map, sam_map = pixel_error_maps(est, truth)
    assert np.isnan(rmse_map[2, 3]) and np.isnan(sam_map[2, 3])
    assert np.isfinite(rmse_map[5, 6]) and np.isnan(sam_map[5, 6])
    assert np.isfinite(rmse_map).sum() == rmse_map.size - 1
    # metrics.sam skips zero pixels: the map's NaN-ignoring mean agrees once the NaN pixel goes.
    est[2, 3, 10] = perturbed[2, 3, 10]
    _, sam_map = pixel_error_maps(est, truth)
    assert np.nanmean(sam_map) == pytest.approx(metrics.sam(truth, est), rel=1e-10)
    with pytest.raises(InputError, match="differ"):
        pixel_error_maps(est[:, :-1], truth)
    with pytest.raises(InputError, match="kind"):
        difference_map(est, truth, kind="psnr")


def test_cancel_between_blocks(urban, perturbed):
    ev = threading.Event()
    ev.set()
    with pytest.raises(Cancelled):
        pixel_error_maps(perturbed, urban, cancel=ev)
    with pytest.raises(Cancelled):
        roi_statistics(urban, rectangle_mask(urban.shape, 0, 0, 5, 5), cancel=ev)


def test_per_band_scores_match_metrics(urban, perturbed):
    scores = per_band_scores(perturbed, urban, block_rows=4)
    c = urban.shape[2]
    for key in ("psnr", "rmse", "mae", "bias", "count"):
        assert scores[key].shape == (c,)
    d = perturbed - urban
    mse = np.mean(d ** 2, axis=(0, 1))
    np.testing.assert_allclose(scores["rmse"], np.sqrt(mse), rtol=1e-12)
    np.testing.assert_allclose(scores["psnr"], 10 * np.log10(1 / mse), rtol=1e-12)
    np.testing.assert_allclose(scores["mae"], np.mean(np.abs(d), axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(scores["bias"], np.mean(d, axis=(0, 1)), rtol=1e-10, atol=1e-15)
    assert (scores["count"] == urban.shape[0] * urban.shape[1]).all()
    assert scores["psnr"].mean() == pytest.approx(metrics.psnr(urban, perturbed), rel=1e-12)
    # A peak other than 1 shifts every band by 20 log10(peak); a perfect band hits the cap.
    scaled = per_band_scores(perturbed, urban, data_range=0.635)
    np.testing.assert_allclose(scaled["psnr"], scores["psnr"] + 20 * np.log10(0.635), rtol=1e-12)
    exact = perturbed.copy()
    exact[:, :, 7] = urban[:, :, 7]
    s = per_band_scores(exact, urban)
    assert s["psnr"][7] == metrics.PSNR_CAP_DB and s["rmse"][7] == 0.0
    assert s["psnr"].mean() == pytest.approx(metrics.psnr(urban, exact), rel=1e-12)
    # NaN pixels are left out band by band.
    exact[0, 0, 3] = np.nan
    s = per_band_scores(exact, urban)
    assert s["count"][3] == urban.shape[0] * urban.shape[1] - 1
    dd = (exact - urban)[:, :, 3].ravel()[1:]
    assert s["rmse"][3] == pytest.approx(np.sqrt(np.mean(dd ** 2)), rel=1e-12)


def test_roi_statistics_rectangle_and_polygon(tmp_path, urban):
    np.save(tmp_path / "u.npy", urban.astype(np.float32))
    cube = np.load(tmp_path / "u.npy", mmap_mode="r")
    flat = np.asarray(cube, dtype=np.float64)
    rect = rectangle_mask(urban.shape, 4, 10, 20, 31)
    assert rect.sum() == 16 * 21 and rect[4, 10] and rect[19, 30] and not rect[20, 30] and not rect[19, 31]
    poly = polygon_mask(urban.shape, [(2, 5), (30, 20), (8, 70)])
    for mask in (rect, poly):
        mean, std, n = roi_statistics(cube, mask, block_rows=3)
        px = flat[mask]
        assert n == mask.sum()
        np.testing.assert_allclose(mean, px.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(std, px.std(axis=0), rtol=1e-9)
    # Index arrays give the same as the mask; a single pixel has zero spread.
    rows, cols = np.nonzero(poly)
    mean_i, std_i, n_i = roi_statistics(cube, (rows, cols))
    np.testing.assert_allclose(mean_i, flat[poly].mean(axis=0), rtol=1e-12)
    assert n_i == poly.sum()
    mean1, std1, n1 = roi_statistics(cube, (np.array([7]), np.array([9])))
    np.testing.assert_allclose(mean1, flat[7, 9])
    assert n1 == 1 and np.all(std1 == 0)
    # NaN samples are ignored band by band; a pixel with no data at all is not counted.
    holes = urban.copy()
    holes[5, 12, :] = np.nan
    holes[6, 15, 40] = np.nan
    mean, std, n = roi_statistics(holes, rect)
    assert n == rect.sum() - 1
    np.testing.assert_allclose(mean, np.nanmean(holes[rect], axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, np.nanstd(holes[rect], axis=0), rtol=1e-9)
    empty = np.zeros(urban.shape[:2], dtype=bool)
    mean, std, n = roi_statistics(urban, empty)
    assert n == 0 and np.isnan(mean).all() and np.isnan(std).all()
    with pytest.raises(InputError, match="boolean"):
        roi_statistics(urban, np.ones((3, 3), dtype=bool))


def test_polygon_mask_matches_a_hand_drawn_triangle():
    # Right triangle (row, col) (0, 0), (0, 10), (10, 0) in pyqtgraph coordinates: pixel (i, j)
    # has its centre at (i + .5, j + .5), inside when i + j + 1 < 10, i.e. i + j <= 8.
    mask = polygon_mask((12, 14), [(0, 0), (0, 10), (10, 0)])
    ii, jj = np.mgrid[:12, :14]
    np.testing.assert_array_equal(mask, ii + jj <= 8)
    assert mask[0, 0] and mask[8, 0] and mask[0, 8] and mask[4, 4]
    assert not mask[9, 0] and not mask[5, 5] and not mask[0, 9]
    # With integer centres (offset 0) the same vertices take the pixels with i + j < 10.
    mask0 = polygon_mask((12, 14), [(0.5, 0.5), (0.5, 10.5), (10.5, 0.5)], offset=0.0)
    assert mask0[1, 1] and mask0[4, 4] and not mask0[6, 6] and not mask0[0, 0]
    # A polygon reaching past the image is clipped, not refused.
    big = polygon_mask((5, 5), [(-10, -10), (-10, 20), (20, 20), (20, -10)])
    assert big.all()
    with pytest.raises(InputError, match="3 finite"):
        polygon_mask((5, 5), [(0, 0), (1, 1)])


def test_bands_by_wavelength_on_urban(urban):
    wl = evenly_spaced_wavelengths(urban.shape[2])          # 400..2500 nm, 13.04 nm apart
    step = wl[1] - wl[0]
    assert nearest_band(wl, 400) == 0 and nearest_band(wl, 2500) == 161
    assert nearest_band(wl, 400 + 10 * step + 0.4 * step) == 10
    assert nearest_band(wl, 400 + 10 * step + 0.6 * step) == 11
    assert nearest_band(wl, 395) == 0                        # within half a band of the edge
    r, g, b = rgb_by_wavelength(wl)
    assert (r, g, b) == tuple(int(np.argmin(np.abs(wl - t))) for t in (650, 550, 450))
    assert (r, b) == (19, 4)                  # 550 nm is a tie between bands 11 and 12
    assert rgb_by_wavelength(wl, (650, 560, 450)) == (19, 12, 4)
    assert rgb_by_wavelength(wl, (860, 650, 560)) == (35, 19, 12)
    with pytest.raises(InputError, match="350 nm is outside"):
        rgb_by_wavelength(wl, (650, 550, 350))
    with pytest.raises(InputError, match="outside"):
        nearest_band(wl, 2600)
    img = band_image(urban, 19)
    assert img.dtype == np.float32 and img.shape == urban.shape[:2]
    np.testing.assert_array_equal(img, urban[:, :, 19].astype(np.float32))
    np.testing.assert_array_equal(band_image(urban, -1), urban[:, :, 161].astype(np.float32))
    with pytest.raises(InputError, match="162 bands"):
        band_image(urban, 162)


def test_percentile_levels(urban):
    img = urban[:, :, 30].copy()
    img[0, :5] = np.nan
    lo, hi = percentile_levels(img, 2, 98)
    assert (lo, hi) == pytest.approx(tuple(np.nanpercentile(img, [2, 98])), rel=1e-12)
    rgb = urban[:, :, [19, 12, 4]].copy()
    rgb[3, 3, 1] = np.nan
    lo, hi = percentile_levels(rgb, 1, 99)
    want = np.nanpercentile(rgb.reshape(-1, 3), [1, 99], axis=0)
    np.testing.assert_allclose(lo, want[0], rtol=1e-12)
    np.testing.assert_allclose(hi, want[1], rtol=1e-12)
    mask = rectangle_mask(img.shape, 10, 10, 20, 40)
    lo, hi = percentile_levels(img, 5, 95, mask=mask)
    assert (lo, hi) == pytest.approx(tuple(np.nanpercentile(img[mask], [5, 95])), rel=1e-12)
    # Subsampling is deterministic, takes every k-th pixel, and stays close on a smooth image.
    lo_s, hi_s = percentile_levels(img, 2, 98, sample=500)
    assert (lo_s, hi_s) == percentile_levels(img, 2, 98, sample=500)
    k = -(-img.size // 500)
    assert (lo_s, hi_s) == pytest.approx(tuple(np.nanpercentile(img.ravel()[k // 2::k], [2, 98])))
    # Degenerate channels still give usable levels.
    assert percentile_levels(np.full((4, 4), np.nan)) == (0.0, 1.0)
    lo, hi = percentile_levels(np.full((4, 4), 0.3))
    assert hi > lo == 0.3


def test_h5py_datasets_are_read_by_blocks(tmp_path, urban, perturbed):
    import h5py
    with h5py.File(tmp_path / "pair.h5", "w") as f:
        f["truth"] = urban.astype(np.float32)
        f["est"] = perturbed.astype(np.float32)
    with h5py.File(tmp_path / "pair.h5", "r") as f:
        truth, est = f["truth"], f["est"]
        rmse_map, sam_map = pixel_error_maps(est, truth, block_rows=6)
        want_rmse, want_sam = _direct_maps(est[()].astype(np.float64), truth[()].astype(np.float64))
        np.testing.assert_allclose(rmse_map, want_rmse, rtol=1e-12)
        np.testing.assert_allclose(sam_map, want_sam, rtol=1e-9, atol=1e-9)
        mask = polygon_mask(urban.shape, [(3, 3), (3, 60), (30, 30)])
        mean, std, n = roi_statistics(truth, mask, block_rows=4)
        px = truth[()].astype(np.float64)[mask]
        np.testing.assert_allclose(mean, px.mean(axis=0), rtol=1e-12)
        assert n == mask.sum()
        np.testing.assert_array_equal(band_image(truth, 5), truth[:, :, 5])
