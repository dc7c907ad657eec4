"""Full-reference quality metrics for a fused cube against its ground truth.

Every function takes the ground truth first, then the estimate, both
H x W x C (a 2-D H x W array counts as one band), values meant to lie in
[0, 1]. The spec convention is computed by scores.score_cubes a chunk of bands at a
time (error sums in float64, SSIM / UIQI windows in float32), so a 2048 x 2048 x 200
cube never gets a whole-cube copy; `compute_many` scores several estimates (a result and
its bicubic baseline) in one pass, sharing what depends on the truth alone.

Two conventions
---------------
``"spec"`` (default) follows SPEC section 5 and the textbook definitions:
`rmse`, `psnr`, `ssim`, `uiqi`, `ergas`, `sam`.

``"original"`` reproduces what the original implementation
(SpectraMorph_python/compute_metrics.py, which calls the `sewar` package,
version 0.4.x) actually computes, so numbers can be compared with its
output. Facts found there, each re-implemented here from its definition:

* RMSE: sewar ``rmse`` on the float data in [0, 1], global over the cube --
  identical to the spec RMSE.
* PSNR: both cubes converted with ``clip(x*255, 0, 255).astype(uint8)``,
  i.e. *truncated* (not rounded) to 8 bits, then ONE global MSE over the
  whole cube, ``10 log10(255^2 / MSE)``; infinite when the MSE is 0.
  (Not a mean of per-band PSNRs.)
* SSIM: the same 8-bit truncation; a *uniform* 11 x 11 window (not
  Gaussian), 'valid' region only, C1 = (0.01*255)^2, C2 = (0.03*255)^2;
  mean of the map per band, then mean over bands.
* UIQI: on the float data (not quantised); local means from an 8 x 8 box
  filter (reflect padding), border of 4 pixels dropped, mean over bands.
  sewar's formula multiplies the local *means* by N = 64 where the
  Wang-Bovik formula uses local *sums*, so it is not exactly Q; a flat
  block with an offset scores (2 mx my / (mx^2 + my^2))^2 instead of
  2 mx my / (mx^2 + my^2).
* ERGAS: sewar ``ergas(GT, P)`` with its default ``r = 0.25`` (the original
  never passes the real ratio): ``100 * 0.25 * sqrt(mean over bands of
  RMSE_b^2 / mean_b^2)`` with global per-band RMSE and mean, i.e. the SPEC
  form at ratio 4, whatever the actual ratio (read from sewar 0.4.10's
  full_ref.py).
* SAM: the original's own function: per pixel
  ``arccos(min(<x,y> / (|x||y| + 1e-8), 1 - 1e-9))``, averaged over ALL
  pixels (a zero pixel counts as 90 degrees), in degrees.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter

from ..core.errors import InputError
from ..core.events import check_cancel
from .scores import PSNR_CAP_DB, score_cubes

CONVENTIONS = ("spec", "original")
METRIC_NAMES = ("RMSE", "PSNR", "SSIM", "UIQI", "ERGAS", "SAM")
WINDOWED_METRICS = ("SSIM", "UIQI")     # computed over windows of neighbouring pixels
SEWAR_ERGAS_RATIO = 4      # sewar's ergas() default r = 1/4, the factor 100 * r = 100 / 4

# Name -> (unit, higher_is_better, one-line description), for the GUI table.
METRIC_INFO = {
    "RMSE": ("", False, "Root mean squared error over all pixels and bands (data range 1)."),
    "PSNR": ("dB", True, "Peak signal-to-noise ratio, mean over bands, peak 1."),
    "SSIM": ("", True, "Structural similarity, Gaussian 11x11 window, mean over bands (1 = identical)."),
    "UIQI": ("", True, "Wang-Bovik universal image quality index, 8x8 blocks, mean over bands (1 = identical)."),
    "ERGAS": ("", False, "Relative dimensionless global error in synthesis, scaled by the resolution ratio."),
    "SAM": ("deg", False, "Mean spectral angle between true and estimated pixel spectra."),
}

# PSNR_CAP_DB (100 dB): the PSNR of a band reconstructed exactly, so one perfect band keeps
# the band mean finite (and metrics.json valid JSON).


def _check_pair(truth, est):
    """Both arrays as H x W x C views (2-D -> one band); shapes must match."""
    truth = np.asarray(truth)
    est = np.asarray(est)
    if truth.shape != est.shape:
        raise InputError(f"ground truth shape {truth.shape} and estimate shape {est.shape} differ")
    if truth.ndim == 2:
        truth, est = truth[:, :, None], est[:, :, None]
    if truth.ndim != 3 or truth.size == 0:
        raise InputError(f"metrics need H x W x C cubes, got shape {truth.shape}")
    return truth, est


def _band(cube, b):
    return np.asarray(cube[:, :, b], dtype=np.float64)


def _to_uint8_like_original(band):
    """The original's 8-bit conversion: clip(x*255) then astype(uint8), which truncates."""
    return np.clip(np.asarray(band, dtype=np.float32) * np.float32(255), 0, 255).astype(np.uint8).astype(np.float64)


# ---------------------------------------------------------------- spec convention

def _score(truth, est, name, cancel=None, ratio=None, **kw) -> float:
    truth, est = _check_pair(truth, est)
    return score_cubes(truth, [est], ratio, names=(name,), cancel=cancel, **kw)[0][name]


def rmse(truth, est, cancel=None) -> float:
    """Global root mean squared error: sqrt(mean over all pixels and bands of (t - e)^2)."""
    return _score(truth, est, "RMSE", cancel)


def psnr(truth, est, cancel=None) -> float:
    """Mean over bands of 10 log10(1 / MSE_b), data range 1, in dB.

    MSE_b is the mean squared error of band b. A band with MSE_b = 0 counts
    as PSNR_CAP_DB (100 dB) so the mean stays finite.
    """
    return _score(truth, est, "PSNR", cancel)


def _ssim_band(x, y, c1, c2, local_mean, crop):
    """Mean SSIM map of one band; `local_mean` is the windowed average, `crop` the border to drop.

    Only sx^2 + sy^2 enters SSIM, and the window average is linear, so it is
    filtered as one image (x^2 + y^2): four filter passes instead of five.
    """
    mx, my = local_mean(x), local_mean(y)
    var_sum = local_mean(x * x + y * y) - mx * mx - my * my
    sxy = local_mean(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (var_sum + c2))
    if crop and ssim_map.shape[0] > 2 * crop and ssim_map.shape[1] > 2 * crop:
        ssim_map = ssim_map[crop:-crop, crop:-crop]
    return float(np.mean(ssim_map, dtype=np.float64))


def ssim(truth, est, cancel=None) -> float:
    """Structural similarity (Wang et al. 2004), mean over bands.

    Per band: local means, variances and covariance with a Gaussian window
    of sigma 1.5 truncated at 3.5 sigma (radius 5, i.e. 11 x 11);
    SSIM = ((2 mx my + C1)(2 sxy + C2)) / ((mx^2 + my^2 + C1)(sx^2 + sy^2 + C2))
    with C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1. The map is averaged over the
    'valid' region only (pixels whose window lies inside the image: a 5-pixel
    border is dropped); images no larger than 10 pixels on a side use the
    whole map with reflect padding (scipy.ndimage's 'reflect', d c b a | a b c d).

    Computed in float32 (scores.py: the costly metric on big cubes); each band
    is first shifted by the true band's mean so the variance differences
    E[x^2] - E[x]^2 keep their precision, and C1, C2 bound the effect of the
    remaining rounding far below 1e-5.
    """
    return _score(truth, est, "SSIM", cancel)


def uiqi(truth, est, block=8, cancel=None) -> float:
    """Universal image quality index Q (Wang & Bovik 2002), mean over bands.

    Per band, every block x block window (stride 1, only windows fully
    inside the image) gives
    Q = 4 sxy mx my / ((sx^2 + sy^2)(mx^2 + my^2)),
    with the block's means, variances and covariance (population, 1/N).
    Degenerate blocks: flat in both images (no pixel differs from the block's
    others, in either image) score the luminance term 2 mx my / (mx^2 + my^2),
    which is 1 when the means are equal; both means zero (mx^2 + my^2 < 1e-12)
    scores the structure term 2 sxy / (sx^2 + sy^2); both at once (two all-zero
    blocks) scores 1. The band's value is the mean over blocks. Images smaller
    than the block use one block as large as fits. Float32 statistics of
    mean-shifted bands, as SSIM (scores.py).
    """
    return _score(truth, est, "UIQI", cancel, block=block)


def ergas(truth, est, ratio, cancel=None) -> float:
    """ERGAS = 100 / r * sqrt(mean over bands of MSE_b / mu_b^2).

    MSE_b is band b's mean squared error and mu_b the mean of the true band.
    SPEC writes the factor as 100/r with r the resolution ratio; in the usual
    form 100 * (d_h / d_l), d_h / d_l (high-res pixel size over low-res pixel
    size) equals 1 / ratio, so ``ratio`` here is the integer r = H / h.
    Bands whose true mean is 0 have no relative error and are skipped; with
    no band left the result is NaN.
    """
    if not (isinstance(ratio, (int, float, np.integer, np.floating)) and ratio > 0):
        raise InputError(f"ERGAS needs a positive resolution ratio, got {ratio!r}")
    return _score(truth, est, "ERGAS", cancel, ratio=ratio)


def _spectral_sums(truth, est, cancel=None):
    """Per pixel <x, y>, |x|^2, |y|^2 accumulated band by band in float64."""
    h, w, c = truth.shape
    dot = np.zeros((h, w))
    nx = np.zeros((h, w))
    ny = np.zeros((h, w))
    for b in range(c):
        check_cancel(cancel)
        x, y = _band(truth, b), _band(est, b)
        dot += x * y
        nx += x * x
        ny += y * y
    return dot, np.sqrt(nx), np.sqrt(ny)


def sam(truth, est, cancel=None) -> float:
    """Mean spectral angle mapper, in degrees.

    Per pixel, the angle arccos(<x, y> / (|x| |y|)) between the true spectrum
    x and the estimated spectrum y (cosine clipped to [-1, 1] against
    rounding); averaged over pixels. Pixels where either spectrum has zero
    norm have no angle and are skipped; with none left the result is NaN.
    """
    return _score(truth, est, "SAM", cancel)


# ------------------------------------------------------------ original convention

def original_psnr(truth, est) -> float:
    """PSNR as the original computes it: 8-bit truncated data, one global MSE, peak 255.

    10 log10(255^2 / MSE) with MSE over all pixels and bands of the cubes
    converted by clip(x*255, 0, 255) and truncation to integers; inf when
    the MSE is 0.
    """
    truth, est = _check_pair(truth, est)
    total = 0.0
    for b in range(truth.shape[2]):
        total += float(np.sum((_to_uint8_like_original(truth[:, :, b])
                               - _to_uint8_like_original(est[:, :, b])) ** 2))
    mse = total / truth.size
    return float("inf") if mse == 0.0 else 10.0 * math.log10(255.0 ** 2 / mse)


def original_ssim(truth, est) -> float:
    """SSIM as the original computes it (sewar): 8-bit truncated data, uniform 11x11 window.

    Local statistics are plain 11 x 11 averages over the 'valid' region,
    C1 = (0.01*255)^2, C2 = (0.03*255)^2; mean of the map per band, mean over
    bands. Images smaller than 11 pixels on a side use a reflect-padded
    window over the whole map instead (the original would fail there).
    """
    truth, est = _check_pair(truth, est)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def local_mean(a):
        # A centred 11-wide box average; cropping 5 pixels afterwards leaves
        # exactly the 'valid' convolution the original uses, at separable cost.
        return uniform_filter(a, size=11, mode="reflect")

    return float(np.mean([_ssim_band(_to_uint8_like_original(truth[:, :, b]),
                                     _to_uint8_like_original(est[:, :, b]), c1, c2, local_mean, 5)
                          for b in range(truth.shape[2])]))


def original_uiqi(truth, est, ws=8) -> float:
    """UIQI as the original computes it (sewar ``uqi``), on the float data.

    With m_* the ws x ws box-filter local means (reflect padding) and N = ws^2:
    num = 4 (N m_xy - m_x m_y) m_x m_y,
    den1 = N (m_xx + m_yy) - (m_x^2 + m_y^2), den = den1 (m_x^2 + m_y^2);
    q = num / den where den != 0, 2 m_x m_y / (m_x^2 + m_y^2) where only den1
    is 0, else 1. Mean of q without a round(ws/2)-pixel border, then over bands.
    """
    truth, est = _check_pair(truth, est)
    n = ws * ws
    s = int(round(ws / 2))
    values = []
    for b in range(truth.shape[2]):
        x, y = _band(truth, b), _band(est, b)
        mx, my = uniform_filter(x, ws), uniform_filter(y, ws)
        mxx, myy, mxy = uniform_filter(x * x, ws), uniform_filter(y * y, ws), uniform_filter(x * y, ws)
        prod = mx * my
        lum = mx * mx + my * my
        num = 4 * (n * mxy - prod) * prod
        den1 = n * (mxx + myy) - lum
        den = den1 * lum
        q = np.ones_like(mx)
        idx = (den1 == 0) & (lum != 0)
        q[idx] = 2 * prod[idx] / lum[idx]
        idx = den != 0
        q[idx] = num[idx] / den[idx]
        values.append(float(np.mean(q[s:-s, s:-s])))
    return float(np.mean(values))


def original_ergas(truth, est, ratio) -> float:
    """ERGAS as the original's metric library computes it: sewar 0.4 ``ergas(GT, P)`` with its
    default r = 1/4 (the original never passes the real ratio), i.e.
    100 / 4 * sqrt(mean_b(MSE_b / mu_b^2)) on the float data, whatever the actual ratio.

    `ratio` is accepted for the common signature and ignored. Equal to the SPEC form at
    ratio 4. Bands whose true mean is 0 are skipped.
    """
    return ergas(truth, est, SEWAR_ERGAS_RATIO)


def original_sam(truth, est) -> float:
    """SAM as the original computes it: every pixel counts, zero pixels as 90 degrees.

    Per pixel arccos(min(<x,y> / (|x||y| + 1e-8), 1 - 1e-9)), mean over all
    pixels, in degrees. The epsilon and the cap mean identical spectra score
    a small positive angle (0.0026 degrees at least, more for dim pixels).
    """
    truth, est = _check_pair(truth, est)
    dot, nx, ny = _spectral_sums(truth, est)
    cos = np.minimum(dot / (nx * ny + 1e-8), 1.0 - 1e-9)
    return float(np.degrees(np.mean(np.arccos(cos))))


# ------------------------------------------------------------------------ all six

def compute_all(truth, est, ratio, convention="spec", cancel=None) -> dict:
    """All six metrics as plain floats: keys RMSE, PSNR, SSIM, UIQI, ERGAS, SAM.

    `convention` is "spec" (SPEC section 5, the default) or "original" (the
    original implementation's numbers, see each ``original_*`` function).
    `cancel` (a threading.Event) is checked band by band (spec convention) or
    between metrics: scoring a 512 x 512 x 200 cube takes seconds.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown metrics convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
    truth, est = _check_pair(truth, est)
    if convention == "spec":
        return compute_many(truth, [est], ratio, cancel)[0]
    out = {}
    for name, fn in (("RMSE", lambda: rmse(truth, est, cancel)), ("PSNR", lambda: original_psnr(truth, est)),
                     ("SSIM", lambda: original_ssim(truth, est)), ("UIQI", lambda: original_uiqi(truth, est)),
                     ("ERGAS", lambda: original_ergas(truth, est, ratio)), ("SAM", lambda: original_sam(truth, est))):
        check_cancel(cancel)
        out[name] = fn()
    return out


def compute_many(truth, estimates, ratio, cancel=None, names=None, valid=None) -> list:
    """compute_all (spec convention) of each estimate against one truth, in one pass over the
    truth: a list of dicts, in the order of `estimates`. `names`: a subset of the six keys.

    `valid` (H x W bool, None: all): the pixels that count (a real pair's nodata left out).
    RMSE, PSNR, ERGAS and SAM are taken over those pixels alone. SSIM and UIQI are windowed
    and a window cannot skip pixels: there each estimate's left-out pixels are given the
    truth's values, so they count as agreeing and the windows around them are mostly scored
    on valid pixels."""
    checked = [_check_pair(truth, est) for est in estimates]
    if not (isinstance(ratio, (int, float, np.integer, np.floating)) and ratio > 0):
        raise InputError(f"ERGAS needs a positive resolution ratio, got {ratio!r}")
    truth = checked[0][0] if checked else _check_pair(truth, truth)[0]
    names = tuple(names or METRIC_NAMES)
    ests = [e for _, e in checked]
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != truth.shape[:2]:
            raise InputError(f"the valid-pixel mask {valid.shape} does not match the cubes {truth.shape[:2]}")
    if valid is None or valid.all():
        return score_cubes(truth, ests, ratio, names=names, cancel=cancel)
    if not valid.any():
        raise InputError("no valid pixel left to score")
    pixelwise = tuple(n for n in names if n not in WINDOWED_METRICS)
    windowed = tuple(n for n in names if n in WINDOWED_METRICS)
    out = [dict() for _ in ests]
    if pixelwise:      # the valid pixels as one column: per-pixel sums need no neighbours
        column = score_cubes(truth[valid][:, None, :], [np.asarray(e)[valid][:, None, :] for e in ests], ratio,
                             names=pixelwise, cancel=cancel)
        for o, c in zip(out, column):
            o.update(c)
    if windowed:
        filled = []
        for e in ests:
            e = np.array(e, dtype=np.float32)
            e[~valid] = truth[~valid]
            filled.append(e)
        for o, c in zip(out, score_cubes(truth, filled, ratio, names=windowed, cancel=cancel)):
            o.update(c)
    return [{n: o[n] for n in names} for o in out]
