"""Metrics against values worked out by hand on tiny cubes."""
import math

import numpy as np
import pytest

from spectramorph_engine.quality import metrics as m
from spectramorph_engine.core.errors import InputError


def const(h, w, values):
    """An h x w cube whose band b is the constant values[b]."""
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (h, w, len(values))).copy()


def checkerboard(n, low, high):
    ii, jj = np.indices((n, n))
    return np.where((ii + jj) % 2 == 0, low, high).astype(np.float64)


# ------------------------------------------------------------------ spec convention

def test_rmse_is_global():
    truth = const(2, 2, [0.0, 0.0])
    est = const(2, 2, [0.1, 0.3])
    # (4 * 0.01 + 4 * 0.09) / 8 = 0.05
    assert m.rmse(truth, est) == pytest.approx(math.sqrt(0.05))


def test_psnr_is_the_mean_of_band_psnrs():
    truth = const(2, 2, [0.5, 0.5])
    est = const(2, 2, [0.6, 0.51])  # MSE 1e-2 -> 20 dB, 1e-4 -> 40 dB
    assert m.psnr(truth, est) == pytest.approx(30.0)


def test_psnr_caps_a_perfect_band_at_100_db():
    truth = const(2, 2, [0.5, 0.5])
    est = const(2, 2, [0.5, 0.6])  # 100 dB (capped) and 20 dB
    assert m.psnr(truth, est) == pytest.approx(60.0)
    assert m.psnr(truth, truth) == pytest.approx(100.0)


def test_sam_orthogonal_parallel_and_45_degrees():
    truth = np.array([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    est = np.array([[[0.0, 1.0], [2.0, 0.0], [1.0, 1.0]]])
    assert m.sam(truth[:, :1], est[:, :1]) == pytest.approx(90.0)
    assert m.sam(truth[:, 1:2], est[:, 1:2]) == pytest.approx(0.0, abs=1e-6)
    assert m.sam(truth[:, 2:], est[:, 2:]) == pytest.approx(45.0)
    assert m.sam(truth, est) == pytest.approx(45.0)  # mean of 90, 0, 45


def test_sam_skips_zero_pixels():
    truth = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    est = np.array([[[1.0, 1.0], [0.3, 0.2]]])
    assert m.sam(truth, est) == pytest.approx(45.0)
    assert math.isnan(m.sam(np.zeros((1, 1, 2)), np.ones((1, 1, 2))))


def test_ergas_by_hand():
    truth = const(2, 2, [0.5, 0.25])
    est = const(2, 2, [0.55, 0.30])
    # MSE/mu^2: 0.0025/0.25 = 0.01 and 0.0025/0.0625 = 0.04; mean 0.025
    expected = 100 / 4 * math.sqrt(0.025)
    assert m.ergas(truth, est, 4) == pytest.approx(expected)
    assert m.ergas(truth, est, 8) == pytest.approx(expected / 2)
    with pytest.raises(InputError):
        m.ergas(truth, est, 0)


def test_uiqi_identical_images_is_one():
    rng = np.random.default_rng(1)
    x = rng.random((10, 12, 3))
    assert m.uiqi(x, x) == pytest.approx(1.0)


def test_uiqi_offset_and_scale_on_one_8x8_block():
    x = checkerboard(8, 0.25, 0.75)[:, :, None]  # mean 0.5, variance 0.0625
    # Offset 0.1: covariance = variances, Q = 2*0.5*0.6 / (0.25 + 0.36)
    assert m.uiqi(x, x + 0.1) == pytest.approx(0.6 / 0.61)
    # Scale 0.5: cov 0.03125, var_y 0.015625, mean_y 0.25:
    # Q = 4*0.03125*0.5*0.25 / ((0.0625+0.015625)*(0.25+0.0625)) = 0.64
    assert m.uiqi(x, 0.5 * x) == pytest.approx(0.64)


def test_uiqi_flat_blocks():
    flat = const(9, 9, [0.5])
    assert m.uiqi(flat, flat) == pytest.approx(1.0)  # zero variance, equal means
    assert m.uiqi(flat, const(9, 9, [0.6])) == pytest.approx(0.6 / 0.61)  # luminance term only
    assert m.uiqi(np.zeros((8, 8, 1)), np.zeros((8, 8, 1))) == pytest.approx(1.0)


def test_uiqi_averages_blocks():
    # 8 x 9 image: two blocks (columns 0-7 and 1-8). Left column 0 differs.
    x = checkerboard(8, 0.25, 0.75)
    x = np.concatenate([x, x[:, :1]], axis=1)[:, :, None]
    y = x.copy()
    y[:, 0, 0] += 0.1
    block2 = 1.0  # columns 1..8 are identical
    xb, yb = x[:, :8, 0], y[:, :8, 0]
    mx, my = xb.mean(), yb.mean()
    sxy = ((xb - mx) * (yb - my)).mean()
    q1 = 4 * sxy * mx * my / ((xb.var() + yb.var()) * (mx ** 2 + my ** 2))
    assert m.uiqi(x, y) == pytest.approx((q1 + block2) / 2)


def test_ssim_identical_is_one_and_constant_offset_by_hand():
    rng = np.random.default_rng(2)
    x = rng.random((16, 16, 2))
    assert m.ssim(x, x) == pytest.approx(1.0)
    # Flat images: variances 0, so SSIM = (2 mx my + C1) / (mx^2 + my^2 + C1).
    truth, est = const(16, 16, [0.5]), const(16, 16, [0.7])
    assert m.ssim(truth, est) == pytest.approx((0.7 + 1e-4) / (0.74 + 1e-4), rel=1e-6)


def test_ssim_by_hand_on_an_11x11_image_is_the_gaussian_windows_value():
    """On an 11 x 11 image the valid SSIM map is the centre pixel alone, whose 11 x 11 window
    is the whole image: SSIM is one formula with Gaussian weights, worked out here term by
    term. The flipped outer rings make the window matter: a uniform 7 x 7 window never sees
    them (SSIM 1), a uniform 11 x 11 window weighs them as much as the centre (SSIM -0.18)."""
    i, j = np.mgrid[0:11, 0:11]
    x = 0.2 + 0.6 * ((3 * i + 5 * j) % 7) / 6          # a non-flat pattern, 7 grey levels
    ring = np.maximum(abs(i - 5), abs(j - 5)) >= 4      # the two outer rings...
    y = np.where(ring, 1.0 - x, x)                       # ...with their contrast flipped
    g = np.exp(-np.arange(-5, 6) ** 2 / (2 * 1.5 ** 2))   # sigma 1.5, radius 5
    w = np.outer(g, g) / np.outer(g, g).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * x * x).sum() - mx ** 2, (w * y * y).sum() - my ** 2
    cxy = (w * x * y).sum() - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    by_hand = (2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    assert by_hand == pytest.approx(0.932134, abs=1e-6)
    assert m.ssim(x[:, :, None], y[:, :, None]) == pytest.approx(by_hand, abs=1e-5)


def test_ssim_of_flipped_contrast_is_negative():
    x = checkerboard(16, 0.0, 1.0)[:, :, None]
    assert m.ssim(x, 1.0 - x) < -0.9


def test_ssim_averages_the_valid_region_of_an_11_wide_window():
    # One changed pixel in the middle of a flat image disturbs the SSIM map
    # only within 5 pixels of it. The mean over the valid region (the image
    # less a 5-pixel border) is then 1 - loss / (n - 10)^2 with the same total
    # loss for any image size n large enough to hold the disturbance.
    def one_pixel(n):
        truth = const(n, n, [0.5])
        est = truth.copy()
        est[n // 2, n // 2, 0] = 0.9
        return m.ssim(truth, est)

    loss31 = (1 - one_pixel(31)) * 21 ** 2
    loss41 = (1 - one_pixel(41)) * 31 ** 2
    assert loss31 > 0
    assert loss41 == pytest.approx(loss31, rel=1e-5)


# -------------------------------------------------------------- original convention

def test_original_psnr_quantises_to_8_bits_by_truncation():
    truth = const(2, 2, [0.5])  # 127.5 -> 127
    est = const(2, 2, [0.502])  # 128.01 -> 128: one level apart, MSE 1
    assert m.original_psnr(truth, est) == pytest.approx(20 * math.log10(255))
    assert m.psnr(truth, est) == pytest.approx(10 * math.log10(1 / 0.002 ** 2))
    # 0.5019 * 255 = 127.98 truncates to 127, the same level as the truth.
    assert m.original_psnr(truth, const(2, 2, [0.5019])) == math.inf


def test_original_psnr_uses_one_global_mse():
    truth = const(2, 2, [0.5, 0.5])  # 127, 127
    est = const(2, 2, [0.502, 0.51])  # 128 (1 level), 130.05 -> 130 (3 levels)
    assert m.original_psnr(truth, est) == pytest.approx(10 * math.log10(255 ** 2 / 5.0))


def test_original_ssim_on_8_bit_flat_images():
    truth, est = const(12, 12, [0.5]), const(12, 12, [0.7])  # 127 and 178
    c1 = (0.01 * 255) ** 2
    expected = (2 * 127 * 178 + c1) / (127 ** 2 + 178 ** 2 + c1)
    assert m.original_ssim(truth, est) == pytest.approx(expected)


def test_original_uiqi_squares_the_luminance_term_on_flat_blocks():
    truth, est = const(12, 12, [0.5]), const(12, 12, [0.6])
    assert m.original_uiqi(truth, est) == pytest.approx((0.6 / 0.61) ** 2)
    rng = np.random.default_rng(3)
    x = rng.random((12, 12, 2))
    assert m.original_uiqi(x, x) == pytest.approx(1.0)


def test_original_ergas_is_sewars_default_at_every_ratio():
    """sewar's ergas(GT, P) (the original's metric library) uses r = 1/4 unless told: 100/4 * ..."""
    truth, est = const(12, 12, [0.5, 0.25]), const(12, 12, [0.55, 0.2])
    # MSE / mean^2 per band: (0.05/0.5)^2 = 0.01 and (0.05/0.25)^2 = 0.04; mean 0.025
    for ratio in (2, 4, 8):
        assert m.original_ergas(truth, est, ratio) == pytest.approx(100 / 4 * math.sqrt(0.025))
    assert m.ergas(truth, est, 4) == pytest.approx(100 / 4 * math.sqrt(0.025))
    assert m.ergas(truth, est, 8) == pytest.approx(100 / 8 * math.sqrt(0.025))


def test_original_sam_counts_every_pixel():
    truth = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    est = np.array([[[1.0, 0.0], [0.3, 0.2]]])
    # identical unit spectra: cos = 1 / (1 + 1e-8), under the 1 - 1e-9 cap
    same = math.degrees(math.acos(1 / (1 + 1e-8)))
    assert m.original_sam(truth, est) == pytest.approx((same + 90.0) / 2)


# ----------------------------------------------------------------------- compute_all

@pytest.mark.parametrize("convention", ["spec", "original"])
def test_compute_all_keys(convention):
    rng = np.random.default_rng(4)
    truth = rng.random((16, 16, 3)).astype(np.float32)
    est = np.clip(truth + 0.02 * rng.standard_normal(truth.shape), 0, 1).astype(np.float32)
    out = m.compute_all(truth, est, 4, convention=convention)
    assert list(out) == ["RMSE", "PSNR", "SSIM", "UIQI", "ERGAS", "SAM"]
    assert all(type(v) is float and math.isfinite(v) for v in out.values())
    assert set(m.METRIC_INFO) == set(out)
    assert out["RMSE"] == pytest.approx(m.rmse(truth, est))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(InputError, match=r"\(4, 4, 3\).*\(4, 5, 3\)"):
        m.compute_all(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)), 2)
    with pytest.raises(InputError, match="spec, original"):
        m.compute_all(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), 2, convention="sewar")


# --------------------------------------------------- the fast path against plain float64

def _plain_scores(t, e, ratio):
    """SPEC 5 written plainly, band by band in float64 (scipy filters), as a reference."""
    from scipy.ndimage import gaussian_filter, uniform_filter
    t, e = t.astype(np.float64), e.astype(np.float64)
    H, W, C = t.shape
    mse = ((t - e) ** 2).mean(axis=(0, 1))
    ssim, uiqi = [], []
    for b in range(C):
        x, y = t[:, :, b], e[:, :, b]

        def g(a):
            return gaussian_filter(a, 1.5, truncate=3.5, mode="reflect")[5:-5, 5:-5]
        mx, my = g(x), g(y)
        vx, vy, sxy = g(x * x) - mx ** 2, g(y * y) - my ** 2, g(x * y) - mx * my
        c1, c2 = 1e-4, 9e-4
        ssim.append(np.mean((2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))))

        def box(a):
            return uniform_filter(a, 8, mode="reflect")[4:4 + H - 7, 4:4 + W - 7]
        mx, my = box(x), box(y)
        vs = box(x * x) - mx ** 2 + box(y * y) - my ** 2
        uiqi.append(np.mean(4 * (box(x * y) - mx * my) * mx * my / (vs * (mx ** 2 + my ** 2))))
    cos = (t * e).sum(2) / np.sqrt((t * t).sum(2) * (e * e).sum(2))
    mu = t.mean(axis=(0, 1))
    return {"RMSE": np.sqrt(mse.mean()), "PSNR": np.mean(-10 * np.log10(mse)), "SSIM": np.mean(ssim),
            "UIQI": np.mean(uiqi), "ERGAS": 100 / ratio * np.sqrt(np.mean(mse / mu ** 2)),
            "SAM": np.degrees(np.mean(np.arccos(np.clip(cos, -1, 1))))}


def _random_pair(shape, seed=5):
    rng = np.random.default_rng(seed)
    ii, jj = np.indices(shape[:2])
    smooth = 0.5 + 0.3 * np.sin(ii / 7.0)[:, :, None] * np.cos(jj[:, :, None] / 5.0 + np.arange(shape[2]))
    truth = np.clip(smooth + 0.05 * rng.random(shape), 0, 1).astype(np.float32)
    est = np.clip(truth + 0.03 * rng.standard_normal(shape), 0, 1).astype(np.float32)
    return truth, est


def test_fast_scores_equal_a_plain_float64_reference():
    truth, est = _random_pair((37, 29, 13))
    fast = m.compute_all(truth, est, 4)
    ref = _plain_scores(truth, est, 4)
    for name in ref:
        assert fast[name] == pytest.approx(ref[name], rel=1e-5, abs=1e-6), name


def test_chunking_and_scoring_together_do_not_change_the_scores():
    from spectramorph_engine.quality.scores import score_cubes
    truth, est = _random_pair((33, 41, 11), seed=6)
    other = np.clip(est[::-1].copy() * 0.9, 0, 1)
    whole = [m.compute_all(truth, e, 3) for e in (est, other)]
    for chunk in (1, 4, 11):
        together = score_cubes(truth, [est, other], 3, chunk=chunk)
        for a, b in zip(together, whole):
            for name in a:
                assert a[name] == pytest.approx(b[name], rel=1e-6, abs=1e-9), (chunk, name)


def test_scores_over_valid_pixels_ignore_what_is_left_out():
    """compute_many(valid=...): the reduced-resolution check of a pair with nodata scores only
    the pixels that hold data. An estimate exact on those and wild elsewhere scores as exact
    on the pixel-wise metrics; the same figures as scoring the valid pixels alone."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.1, 1.0, (24, 20, 6)).astype(np.float32)
    est = truth + rng.normal(0, 0.02, truth.shape).astype(np.float32)
    valid = np.ones((24, 20), dtype=bool)
    valid[:4] = False
    valid[10, 5:9] = False
    wild = est.copy()
    wild[~valid] = 5.0
    masked = m.compute_many(truth, [wild], 4, valid=valid)[0]
    alone = m.compute_many(truth[valid][:, None, :], [est[valid][:, None, :]], 4,
                                 names=("RMSE", "PSNR", "ERGAS", "SAM"))[0]
    for name in ("RMSE", "PSNR", "ERGAS", "SAM"):
        assert masked[name] == pytest.approx(alone[name], rel=1e-9)
    unmasked = m.compute_many(truth, [wild], 4)[0]
    assert masked["PSNR"] > unmasked["PSNR"] + 10           # the wild pixels would have dominated
    # windowed metrics: left-out pixels count as agreeing, never as the wild values
    assert masked["SSIM"] > unmasked["SSIM"] and 0 < masked["SSIM"] <= 1
    assert list(masked) == list(m.METRIC_NAMES)
    # all valid is the plain score; a mask of the wrong shape is named
    assert m.compute_many(truth, [est], 4, valid=np.ones((24, 20), bool)) == m.compute_many(truth, [est], 4)
    with pytest.raises(InputError, match=r"mask \(20, 24\)"):
        m.compute_many(truth, [est], 4, valid=np.ones((20, 24), bool))
