"""Estimate the SRF (and the blur) from an HR-MSI / LR-HSI pair (real-world mode).

Why: a preset SRF that does not describe the real MSI camera makes SpectraMorph
fail silently: the network is trained on SRF(LR-HSI) but applied to the real
HR-MSI, two different inputs (SPEC 3, issue 5). The pair itself tells what
the MSI camera sees: bring the HR-MSI to the LR grid and explain each MSI band
as a combination of HSI bands.

Model, per MSI band k, on the LR grid (N = LR pixels, C = HSI bands):

    y_k = blur_sigma(HR-MSI_k) area-downsampled by r     (N,)
    A   = LR-HSI pixels                                    (N, C)
    minimise ||A s + b - y_k||^2 + lam ||D2 s||^2   over s >= 0, b free

D2 is the (C-2) x C second-difference matrix along bands (a smooth response).
The offset b is eliminated by centring A and y (b = mean(y) - mean(A) s) and
the problem solved exactly with `scipy.optimize.nnls` on the stacked system
[A_c; sqrt(lam) D2] s = [y_c; 0]. The row `s` keeps its gain (the fitted
scale); `SrfEstimate.srf_normalized` divides each row by its sum for display
and for code that wants rows summing to 1.

Choices (measured on the Urban / IKONOS scenarios of `scenarios.py`):
- lam = mu * trace(A_c^T A_c) / C (mu is scale free: it does not depend on the
  data's units or on N). mu is chosen per band by 2-fold hold-out over
  `SMOOTHNESS_GRID` (1e-6 .. 1): the LR pixels are split into a checkerboard of
  4 x 4-pixel blocks, fitted on one colour and scored on the other, both ways.
  The hold-out error is nearly flat in mu (a scene's spectra span few
  dimensions, so many responses explain it equally well); the rule takes the
  LARGEST mu whose held-out error is within 2% of the best (`SMOOTHNESS_TOLERANCE`),
  i.e. the smoothest response the data do not argue against, and the final fit
  uses all pixels. A fixed `smoothness=mu` skips the search.
- Rows span all HSI bands by default (`window=None`). Restricting each row to a
  window around its located centre gives more compact curves but, with a
  gamma camera, a worse fit (32 vs 37 dB) and a worse fusion (27.2 vs 28.0 dB).
  `located_centres` reports where each band lies regardless: the centre of
  the Gaussian response whose output RANK-correlates best with the band
  (rank correlation is blind to a monotone camera response such as gamma;
  within ~25 nm of the IKONOS centres on the scenario).
- The blur width: each candidate sigma in `psf_sigmas` (HR pixels; 0 = none)
  brings the HR-MSI to the LR grid (Gaussian blur, 'same' zero padding as in
  SPEC 1, then area downsampling); the fit is scored by hold-out with
  mu = `SIGMA_SCAN_SMOOTHNESS` and the sigma with the smallest held-out error
  over all bands wins (`sigma_scores` keeps the curve).
- Border LR pixels, where zero padding and the real scene beyond the edge
  disagree, are left out of every fit: a margin of ceil(3 sigma / r) LR pixels
  (the largest candidate sigma during the scan, the chosen sigma for the final
  fit), capped so at least half of each image side remains.
- Pixels clipped by the 1/99 percentile normalisation are kept by default
  (`exclude_clipped=False`): leaving them out raises the fit PSNR (fewer,
  duller pixels) but costs 2 dB in the fusion on the scenario.
- Fit quality per band: PSNR (data range 1, the inputs are in [0,1]) and R^2 of
  the final fit on its pixels (in-sample). A non-linear camera (e.g. gamma)
  cannot be explained exactly by any SRF: the fit is then imperfect, and these
  figures say by how much.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from scipy.optimize import nnls

from .degradation import as_cube
from ..core.errors import InputError
from ..core.events import check_cancel

log = logging.getLogger(__name__)

DEFAULT_PSF_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
SMOOTHNESS_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SIGMA_SCAN_SMOOTHNESS = 1e-3
SMOOTHNESS_TOLERANCE = 0.02   # held-out SSE within 2% of the best counts as as good
LOCATE_WIDTH_STEPS = 16     # candidate widths when locating each band
SUPPORT_WINDOW = 3.0        # a suggested estimate_srf(window=...): located centre +- 3 widths
MAX_FIT_PIXELS = 20000      # LR pixels a fit uses at most (evenly strided subsample)
MIN_FIT_PIXELS = 30         # fewest LR pixels a fit accepts before ignoring clipping
HOLDOUT_BLOCK = 4            # LR pixels per side of a hold-out checkerboard block

# choose_training_input (see there): "msi_lr" when the fit reaches this R^2 on every
# band, or when the best blur width is an interior minimum beating the others by this margin.
BLUR_TRUSTED_MIN_R2 = 0.95
BLUR_IDENTIFIED_MARGIN = 0.10


# ---------------------------------------------------------------------------
# helpers

def gaussian_kernel(sigma: float) -> np.ndarray:
    """Gaussian PSF exp(-r^2 / (2 sigma^2)) on a (2k+1)^2 grid, k = max(1, ceil(3 sigma)),
    normalised to sum 1; sigma 0 gives the 1 x 1 identity kernel."""
    if sigma < 0 or not np.isfinite(sigma):
        raise InputError(f"a blur width must be a finite number >= 0, got {sigma}")
    if sigma == 0:
        return np.ones((1, 1))
    k = max(1, int(math.ceil(3.0 * sigma)))
    y, x = np.mgrid[-k:k + 1, -k:k + 1]
    g = np.exp(-(x * x + y * y) / (2.0 * sigma * sigma))
    return g / g.sum()


def _check_pair(hr_msi, lr_hsi, ratio: int):
    hr = as_cube(hr_msi, "the HR-MSI")
    lr = as_cube(lr_hsi, "the LR-HSI")
    ratio = int(ratio)
    if ratio < 1 or hr.shape[0] != ratio * lr.shape[0] or hr.shape[1] != ratio * lr.shape[1]:
        raise InputError(f"HR-MSI {hr.shape} and LR-HSI {lr.shape} are not {ratio}x apart "
                         f"(need H = {ratio}*h and W = {ratio}*w)")
    return hr, lr, ratio


def msi_to_lr_grid(hr_msi, ratio: int, psf_sigma: float) -> np.ndarray:
    """The HR-MSI brought to the LR grid: Gaussian blur of `psf_sigma` HR pixels
    ('same', zero padding, as the SPEC sensor model), then area downsampling by
    `ratio` (spatial.SpatialModel, "zero" border). This is the training input under
    `training_input: msi_lr`. (h, w, c) float32."""
    from .spatial import SpatialModel
    hr = as_cube(hr_msi, "the HR-MSI").astype(np.float32, copy=False)
    ratio = int(ratio)
    H, W = hr.shape[:2]
    if ratio < 1 or H % ratio or W % ratio:
        raise InputError(f"HR-MSI {hr.shape} cannot be downsampled by {ratio}: its size is not a multiple")
    kernel = gaussian_kernel(float(psf_sigma)) if psf_sigma and psf_sigma > 0 else None
    return SpatialModel(kernel, ratio, "zero").forward(hr)


def _to_lr_grid(hr, ratio: int, sigma: float, kernel=None) -> np.ndarray:
    """The HR-MSI on the LR grid (float64) through `kernel`, or the Gaussian of `sigma`."""
    if kernel is None:
        return msi_to_lr_grid(hr, ratio, sigma).astype(np.float64)
    from .spatial import SpatialModel
    return SpatialModel(kernel, ratio, "zero").forward(np.asarray(hr, dtype=np.float32)).astype(np.float64)


def _unclipped_lr_pixels(hr: np.ndarray, lr: np.ndarray, ratio: int, sigma: float) -> np.ndarray:
    """(h, w) bool: LR pixels where no LR-HSI band and no HR-MSI value under the pixel's
    blur footprint sits at the data's minimum or maximum (clipped by the 1/99 percentile
    normalisation, or saturated by the camera): a linear SRF cannot explain clipped values."""
    lo, hi = float(lr.min()), float(lr.max())
    ok = ~(((lr <= lo) | (lr >= hi)).any(axis=2))
    lo_m, hi_m = float(hr.min()), float(hr.max())
    bad_hr = ((hr <= lo_m) | (hr >= hi_m)).any(axis=2).astype(np.float32)[:, :, None]
    bad_lr = msi_to_lr_grid(bad_hr, ratio, sigma)[:, :, 0] > 1e-3
    return ok & ~bad_lr


def _margin(sigma: float, ratio: int, h: int, w: int) -> int:
    m = int(math.ceil(3.0 * sigma / ratio)) if sigma > 0 else 0
    return max(0, min(m, (min(h, w) - 1) // 4))


def _interior(cube: np.ndarray, m: int) -> np.ndarray:
    h, w = cube.shape[:2]
    return cube[m:h - m, m:w - m] if m else cube


def _second_difference(C: int) -> np.ndarray:
    if C < 3:
        return np.zeros((0, C))
    D = np.zeros((C - 2, C))
    i = np.arange(C - 2)
    D[i, i], D[i, i + 1], D[i, i + 2] = 1.0, -2.0, 1.0
    return D


class _Fitter:
    """Nonnegative smooth fits with a free offset on the pixels of `A` (N x C).

    min ||A_c s - y_c||^2 + lam ||D2 s||^2, s >= 0, with A_c, y_c centred (the offset
    is b = mean(y) - mean(A) s). Solved exactly as an NNLS of size C x C: with
    G = A_c^T A_c + lam D2^T D2 = L L^T, the objective is ||L^T s - L^-1 A_c^T y_c||^2
    plus a constant, so the cost does not grow with N past one Gram matrix per pixel
    set and band support (cached here; fold 0/1 are the hold-out halves)."""

    def __init__(self, A: np.ndarray, fold0: np.ndarray):
        self.A = A
        self.sets = {"all": np.ones(A.shape[0], dtype=bool), 0: fold0, 1: ~fold0}
        self._moments = {}

    def moments(self, which, support):
        key = (which, None if support is None else support.tobytes())
        if key not in self._moments:
            A = self.A[self.sets[which]]
            if support is not None:
                A = A[:, support]
            mean = A.mean(axis=0)
            Ac = A - mean
            self._moments[key] = (mean, Ac.T @ Ac, A.shape[0])
        return self._moments[key]

    def fit(self, y: np.ndarray, mu: float, which="all", support=None):
        """(s, b) for the target y (N,) on pixel set `which` and bands `support`."""
        mean, G, n = self.moments(which, support)
        rows = self.sets[which]
        A = self.A[rows] if support is None else self.A[rows][:, support]
        yy = y[rows]
        y_mean = float(yy.mean())
        g = A.T @ yy - n * mean * y_mean
        C = G.shape[0]
        tr = float(np.trace(G))
        M = G.copy()
        if mu > 0 and C >= 3:
            D = _second_difference(C)
            M += (mu * tr / C) * (D.T @ D)
        M[np.diag_indices(C)] += 1e-10 * max(tr, 1e-300) / C + 1e-300
        L = np.linalg.cholesky(M)
        from scipy.linalg import solve_triangular
        z = solve_triangular(L, g, lower=True)
        s, _ = nnls(L.T, z, maxiter=50 * C)
        return s, y_mean - float(mean @ s)

    def holdout_sse(self, y: np.ndarray, mu: float, support=None) -> float:
        sse = 0.0
        for train, test in ((0, 1), (1, 0)):
            tr_rows, te_rows = self.sets[train], self.sets[test]
            if tr_rows.sum() < 2 or te_rows.sum() < 1:
                continue
            s_, b_ = self.fit(y, mu, train, support)
            A = self.A[te_rows] if support is None else self.A[te_rows][:, support]
            r = A @ s_ + b_ - y[te_rows]
            sse += float(r @ r)
        return sse


LOCATE_MAX_PIXELS = 1024


def _locate_bands(A: np.ndarray, Y: np.ndarray) -> list:
    """Where along the bands each MSI band lies: the (centre, width) in band-index units of
    the Gaussian response g whose A g correlates best (positively) with y. Two free
    parameters per candidate (gain, offset), so no over-fitting; a closed form for all
    candidates at once. Returns [(centre, width)] per MSI band."""
    if A.shape[0] > LOCATE_MAX_PIXELS:
        # The candidates' responses are N x (C * widths) in float64 (820 MB at 25,600 pixels);
        # a rank correlation is settled by a couple of thousand evenly spread pixels.
        keep = np.linspace(0, A.shape[0] - 1, LOCATE_MAX_PIXELS).round().astype(int)
        A, Y = A[keep], Y[keep]
    C = A.shape[1]
    widths = np.geomspace(0.75, max(1.0, C / 3.0), LOCATE_WIDTH_STEPS)
    idx = np.arange(C, dtype=np.float64)
    cands = [(c0, w0) for w0 in widths for c0 in idx]
    G = np.exp(-0.5 * ((idx[:, None] - np.array([c for c, _ in cands])[None, :])
                       / np.array([w for _, w in cands])[None, :]) ** 2)
    P = _ranks(A @ G)
    P -= P.mean(axis=0)
    Yc = _ranks(Y)
    Yc -= Yc.mean(axis=0)
    pn = np.linalg.norm(P, axis=0)
    yn = np.linalg.norm(Yc, axis=0)
    corr = (P.T @ Yc) / np.maximum(pn[:, None] * yn[None, :], 1e-300)
    return [cands[int(i)] for i in np.argmax(corr, axis=0)]


def _ranks(X: np.ndarray) -> np.ndarray:
    """Column-wise ranks (0..N-1; ties broken by order), as float."""
    r = np.empty(X.shape, dtype=np.float64)
    order = np.argsort(X, axis=0, kind="stable")
    np.put_along_axis(r, order, np.arange(X.shape[0], dtype=np.float64)[:, None].repeat(X.shape[1], 1), axis=0)
    return r


def _support(location, C: int, window: Optional[float]) -> np.ndarray:
    """Bands within `window` widths of the located centre (at least 3), or all when None."""
    if window is None:
        return np.ones(C, dtype=bool)
    c0, w0 = location
    idx = np.arange(C)
    half = max(1.5, window * w0)
    mask = np.abs(idx - c0) <= half
    if mask.sum() < min(3, C):
        mask = np.abs(idx - c0) <= np.sort(np.abs(idx - c0))[min(3, C) - 1]
    return mask


def _folds(h: int, w: int) -> np.ndarray:
    """Boolean (h*w,) mask of fold 0 of the block checkerboard (fold 1 = ~mask)."""
    i, j = np.mgrid[0:h, 0:w]
    return (((i // HOLDOUT_BLOCK) + (j // HOLDOUT_BLOCK)) % 2 == 0).ravel()


def _choose_smoothness(fitter: _Fitter, y, support) -> float:
    """The largest mu of SMOOTHNESS_GRID whose held-out SSE is within SMOOTHNESS_TOLERANCE
    of the best one (the smoothest response the data do not argue against)."""
    sse = {mu: fitter.holdout_sse(y, mu, support) for mu in SMOOTHNESS_GRID}
    best = min(sse.values())
    return max(mu for mu, v in sse.items() if v <= (1.0 + SMOOTHNESS_TOLERANCE) * best)


def _fit_stats(y: np.ndarray, yhat: np.ndarray):
    r = yhat - y
    mse = float(np.mean(r * r))
    psnr = 10.0 * math.log10(1.0 / max(mse, 1e-12))
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(r * r)) / sst if sst > 0 else float("nan")
    return psnr, r2


# ---------------------------------------------------------------------------
# the estimate

@dataclass(frozen=True)
class SrfEstimate:
    """An SRF (and blur) fitted to an image pair; see the module docstring."""
    srf: np.ndarray              # (c, C) nonnegative rows as fitted (gain included)
    offset: np.ndarray           # (c,)  additive offset per MSI band
    psf_sigma: float             # best-fitting Gaussian blur width, HR pixels
    psnr_db: np.ndarray          # (c,)  fit PSNR per band (dB, data range 1)
    r2: np.ndarray               # (c,)  fit R^2 per band
    smoothness: np.ndarray       # (c,)  mu chosen per band (lam = mu * trace(Ac^T Ac) / C)
    sigma_scores: dict = field(default_factory=dict)   # sigma -> held-out RMSE over all bands
    wavelengths: Optional[np.ndarray] = None
    pixels_used: int = 0         # LR pixels in the final fit
    located_centres: Optional[np.ndarray] = None   # (c,) best-correlating Gaussian centre per band
                                 # (nm when wavelengths are known, else band index): rank
                                 # correlation, so unaffected by a monotone camera response
    kernel: Optional[np.ndarray] = None   # the blur kernel the SRF was fitted with when not the
                                 # Gaussian of psf_sigma (psf_estimation: a free-form kernel)
    psf_estimate: Optional[object] = None  # psf_estimation.PsfEstimate behind `kernel`

    @property
    def psnr(self) -> float:
        """Overall fit PSNR: the mean of the per-band figures."""
        return float(np.mean(self.psnr_db))

    @property
    def gain(self) -> np.ndarray:
        """(c,) row sums of the fitted SRF (its scale relative to the LR-HSI)."""
        return self.srf.sum(axis=1)

    @property
    def srf_normalized(self) -> np.ndarray:
        """(c, C) rows divided by their sums (a row fitted as all zeros stays zero)."""
        g = self.gain
        return self.srf / np.where(g > 0, g, 1.0)[:, None]

    @property
    def psf(self) -> np.ndarray:
        """The blur kernel of the fit (sums to 1): the free-form kernel when one was estimated,
        else the best-fitting Gaussian."""
        return self.kernel if self.kernel is not None else gaussian_kernel(self.psf_sigma)

    def band_centres(self) -> Optional[np.ndarray]:
        """(c,) response-weighted centre of each row in nm (None without wavelengths)."""
        if self.wavelengths is None:
            return None
        n = self.srf_normalized
        return n @ np.asarray(self.wavelengths, dtype=np.float64)

    def summary(self) -> str:
        bands = ", ".join(f"{p:.1f} dB (R2 {r:.3f})" for p, r in zip(self.psnr_db, self.r2))
        return (f"SRF estimated from the pair: fit {self.psnr:.1f} dB PSNR [{bands}], "
                f"blur {self.blur_label()}")

    def blur_label(self) -> str:
        if self.kernel is None:
            return f"sigma {self.psf_sigma:g} px"
        form = self.psf_estimate.form if self.psf_estimate is not None else "free-form"
        return f"{form} {self.kernel.shape[0]} x {self.kernel.shape[1]} kernel (Gaussian fit sigma {self.psf_sigma:g} px)"


def _fit_pixels(hr, lr, ratio, sigma_margin, sigma_clip, exclude_clipped):
    """(h, w) bool mask of the LR pixels a fit uses: away from the border by the margin of
    `sigma_margin`, and (when asked) not clipped. Falls back to the border rule alone when
    clipping would leave fewer than a quarter of the pixels."""
    h, w = lr.shape[:2]
    m = _margin(sigma_margin, ratio, h, w)
    mask = np.zeros((h, w), dtype=bool)
    mask[m:h - m, m:w - m] = True
    if exclude_clipped:
        both = mask & _unclipped_lr_pixels(hr, lr, ratio, sigma_clip)
        if both.sum() >= max(MIN_FIT_PIXELS, mask.sum() // 4):
            return both
        log.info("SRF estimation: too many clipped pixels to leave out; using them all")
    return mask


def _cap_pixels(mask: np.ndarray) -> np.ndarray:
    """At most MAX_FIT_PIXELS of the True pixels of `mask`, evenly strided (deterministic)."""
    n = int(mask.sum())
    if n <= MAX_FIT_PIXELS:
        return mask
    keep = np.zeros(n, dtype=bool)
    keep[np.linspace(0, n - 1, MAX_FIT_PIXELS).astype(int)] = True
    out = np.zeros(mask.shape, dtype=bool)
    out[mask] = keep
    return out


MAX_ESTIMATION_LR_SIDE = 160


def central_crop(hr, lr, ratio: int, max_lr_side: int, valid=None):
    """The central part of a pair, at most max_lr_side LR pixels a side (views, no copies);
    with `valid` (h x w bool), also its crop (a third item)."""
    h, w = lr.shape[:2]
    ch, cw = min(h, max_lr_side), min(w, max_lr_side)
    r0, c0 = (h - ch) // 2, (w - cw) // 2
    out = (hr[r0 * ratio:(r0 + ch) * ratio, c0 * ratio:(c0 + cw) * ratio], lr[r0:r0 + ch, c0:c0 + cw])
    if valid is None:
        return out
    return out + (valid[r0:r0 + ch, c0:c0 + cw],)


def _usable(valid, sigma: float, ratio: int):
    """LR pixels with data whose blur footprint stays clear of pixels without (the valid mask
    eroded by the blur margin); None when every pixel holds data."""
    if valid is None or valid.all():
        return None
    from scipy import ndimage
    m = _margin(sigma, ratio, *valid.shape)
    eroded = ndimage.binary_erosion(valid, iterations=m) if m > 0 else valid
    return eroded if eroded.sum() >= MIN_FIT_PIXELS else valid


def _restrict(mask, usable):
    if usable is None:
        return mask
    both = mask & usable
    return both if both.sum() >= MIN_FIT_PIXELS else usable


def estimate_srf(hr_msi, lr_hsi, ratio: int, wavelengths=None, smoothness: Optional[float] = None,
                 psf_sigmas: Sequence[float] = DEFAULT_PSF_SIGMAS,
                 window: Optional[float] = None, exclude_clipped: bool = False,
                 max_lr_side: int = MAX_ESTIMATION_LR_SIDE, cancel=None, valid=None,
                 robust: int = 3, kernel=None) -> SrfEstimate:
    """Fit the SRF (c x C), an offset per band and the blur width to an image pair.

    Large pairs are fitted on their central `max_lr_side` x `max_lr_side` LR pixels (and the
    HR pixels over them): far more pixels than the few dozen unknowns per band need, and it
    keeps the fit's float64 work to ~100 MB whatever the scene size.

    hr_msi (H, W, c) or (H, W); lr_hsi (h, w, C) with H = ratio*h, W = ratio*w; both
    in [0,1]. `smoothness` None: mu chosen per band by hold-out over SMOOTHNESS_GRID;
    a number: that mu. `psf_sigmas`: candidate Gaussian blur widths in HR pixels.
    `window`: None fits each row over all HSI bands (the default: best fit, best fusion);
    a number restricts row k to its located centre +- window located widths (a compact,
    more physical-looking response at some cost in fit when the camera is not linear).
    `exclude_clipped`: leave out LR pixels touched by clipped values (see module doc).
    `cancel`: a threading.Event checked between candidate blurs and between bands.
    `valid`: h x w bool of the LR pixels with data (nodata masks): only those are fitted.
    `robust`: when some LR pixels disagree with the fit far more than the rest (a change between
    the two acquisitions, a cloud: ROBUST_FACTOR x the median residual, on at most
    ROBUST_MAX_SHARE of the pixels), fit again without them (blur and SRF), up to `robust` times
    (a first fit spoilt by the outliers finds only their worst part).
    `kernel`: a blur kernel to fit the SRF with instead of scanning Gaussian widths (the
    estimate keeps it as `kernel`; its psf_sigma is then the kernel's reach / 3).
    """
    from ..core.device import single_thread_blas
    with single_thread_blas():
        return _estimate_srf(hr_msi, lr_hsi, ratio, wavelengths, smoothness, psf_sigmas, window, exclude_clipped,
                             max_lr_side, cancel, valid, robust, kernel)


def _estimate_srf(hr_msi, lr_hsi, ratio, wavelengths, smoothness, psf_sigmas, window, exclude_clipped,
                  max_lr_side, cancel, valid, robust, kernel) -> SrfEstimate:
    check_cancel(cancel)
    hr, lr, ratio = _check_pair(hr_msi, lr_hsi, ratio)
    if valid is None:
        hr, lr = central_crop(hr, lr, ratio, max_lr_side)
    else:
        hr, lr, valid = central_crop(hr, lr, ratio, max_lr_side, np.asarray(valid, dtype=bool))
    h, w, C = lr.shape
    c = hr.shape[2]
    if kernel is not None:
        from .spatial import check_psf
        kernel = check_psf(kernel)
        psf_sigmas = (max(kernel.shape) // 2 / 3.0,)     # margins: the kernel's reach is "3 sigma"
    sigmas = sorted({float(s) for s in psf_sigmas})
    if not sigmas or min(sigmas) < 0:
        raise InputError(f"estimate_srf needs candidate blur widths >= 0, got {list(psf_sigmas)}")
    if smoothness is not None and not smoothness >= 0:
        raise InputError(f"the SRF smoothness must be >= 0, got {smoothness}")
    lr64 = lr.astype(np.float64)
    checker = _folds(h, w).reshape(h, w)

    # 1. blur width: held-out error of a fixed-mu fit, the same pixels for every candidate
    mask = _fit_pixels(hr, lr, ratio, max(sigmas), max(sigmas), exclude_clipped)
    mask = _cap_pixels(_restrict(mask, _usable(valid, max(sigmas), ratio)))
    scan = _Fitter(lr64[mask], checker[mask])
    mu_scan = SIGMA_SCAN_SMOOTHNESS if smoothness is None else smoothness
    lr_msi_by_sigma = {}
    scores = {}
    for sg in sigmas:
        check_cancel(cancel)
        y_lr = _to_lr_grid(hr, ratio, sg, kernel)
        lr_msi_by_sigma[sg] = y_lr
        Y = y_lr[mask]
        sse = 0.0
        for k in range(c):
            check_cancel(cancel)
            sse += scan.holdout_sse(Y[:, k], mu_scan)
        scores[sg] = math.sqrt(sse / Y.size)
    sigma = min(sigmas, key=lambda s: scores[s])
    log.info("SRF estimation: blur sigma %g px (held-out RMSE by sigma: %s)", sigma,
             ", ".join(f"{s:g}: {v:.4f}" for s, v in scores.items()))

    # 2. per band: where it lies, its smoothness by hold-out, then the fit on all pixels
    mask = _fit_pixels(hr, lr, ratio, sigma, sigma, exclude_clipped)
    mask = _cap_pixels(_restrict(mask, _usable(valid, sigma, ratio)))
    A = lr64[mask]
    fitter = _Fitter(A, checker[mask])
    Y = lr_msi_by_sigma[sigma][mask]
    locations = _locate_bands(A, Y)
    srf = np.zeros((c, C))
    offset = np.zeros(c)
    psnr_db = np.zeros(c)
    r2 = np.zeros(c)
    mus = np.zeros(c)
    for k in range(c):
        check_cancel(cancel)
        y = Y[:, k]
        support = None if window is None else _support(locations[k], C, window)
        if smoothness is None:
            mu = _choose_smoothness(fitter, y, support)
        else:
            mu = float(smoothness)
        s_k, b_k = fitter.fit(y, mu, "all", support)
        cols = slice(None) if support is None else support
        srf[k, cols], offset[k], mus[k] = s_k, b_k, mu
        psnr_db[k], r2[k] = _fit_stats(y, A[:, cols] @ s_k + b_k)
    wl = None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    located = np.array([loc[0] for loc in locations])
    if wl is not None and wl.size == C:
        located = np.interp(located, np.arange(C), wl)
    est = SrfEstimate(srf=srf, offset=offset, psf_sigma=sigma, psnr_db=psnr_db, r2=r2,
                      smoothness=mus, sigma_scores=scores, wavelengths=wl,
                      pixels_used=int(mask.sum()), located_centres=located, kernel=kernel)
    if robust:
        outliers = _outlier_pixels(lr64, lr_msi_by_sigma[sigma], srf, offset, mask)
        if outliers is not None:
            keep = ~outliers if valid is None else (valid & ~outliers)
            again = estimate_srf(hr, lr, ratio, wavelengths=wavelengths, smoothness=smoothness,
                                 psf_sigmas=psf_sigmas, window=window, exclude_clipped=exclude_clipped,
                                 max_lr_side=max_lr_side, cancel=cancel, valid=keep, robust=int(robust) - 1,
                                 kernel=kernel)
            # kept only when it explains the other pixels far better: the left-out area spoilt
            # the first fit (a change between acquisitions), not just a few hard pixels
            rest = mask & ~outliers
            before = _residual_rms(lr64, lr_msi_by_sigma[sigma], srf, offset, rest)
            after = _residual_rms(lr64, _to_lr_grid(hr, ratio, again.psf_sigma, kernel),
                                  again.srf, again.offset, rest)
            if after < ROBUST_GAIN * before:
                log.info("SRF estimation: %d LR pixels in areas that disagree with the fit (over %gx the median "
                         "residual) left out; the rest fit %.3g instead of %.3g (median RMS)", int(outliers.sum()),
                         ROBUST_FACTOR, after, before)
                return again
    log.info("%s", est.summary())
    return est


ROBUST_GAIN = 0.5           # a fit without the outlier areas is kept when it halves the rest's median residual


def _residual_rms(lr64, msi_lr, srf, offset, where) -> float:
    """The median over the pixels `where` of their RMS residual over MSI bands (a median: what
    is left of an outlier area must not decide)."""
    pred = lr64[where] @ srf.T + offset
    return float(np.median(np.sqrt(np.mean((msi_lr[where] - pred) ** 2, axis=1))))


ROBUST_FACTOR = 3.0         # an LR pixel whose residual exceeds this many times the median ...
ROBUST_MIN_SHARE = 0.005    # ... on at least this share of the fitted pixels ...
ROBUST_MAX_SHARE = 0.3      # ... and at most this share is left out, and the fit made again


def _outlier_pixels(lr64, msi_lr, srf, offset, mask):
    """h x w bool of the LR pixels whose RMS residual (over MSI bands) under the fitted SRF
    exceeds ROBUST_FACTOR x the median of the fitted pixels in clusters (and their neighbours),
    or None when they are too few or too many to call outliers."""
    h, w, C = lr64.shape
    pred = lr64.reshape(-1, C) @ srf.T + offset
    res = np.sqrt(np.mean((msi_lr.reshape(-1, srf.shape[0]) - pred) ** 2, axis=1)).reshape(h, w)
    median = float(np.median(res[mask]))
    if not median > 0:
        return None
    # Changes between acquisitions cover areas; lone high residuals (edges under a non-linear
    # camera) do not: only clusters of at least 2 x 2 LR pixels count, with a pixel of margin
    # for the blur's spill.
    from scipy import ndimage
    out = ndimage.binary_opening(res > ROBUST_FACTOR * median, structure=np.ones((2, 2), dtype=bool))
    if not out.any():
        return None
    out = ndimage.binary_dilation(out, iterations=1)
    share = float(out[mask].mean())
    if share < ROBUST_MIN_SHARE or share > ROBUST_MAX_SHARE:
        return None
    return out


def apply_estimated_srf(lr_hsi, est: SrfEstimate) -> np.ndarray:
    """The estimated SRF applied to the LR-HSI, plus the offset: the LR-grid MSI the
    network trains on under `srf_source: estimate`. (h, w, c) float32, not clipped."""
    lr = as_cube(lr_hsi, "the LR-HSI")
    if lr.shape[2] != est.srf.shape[1]:
        raise InputError(f"the LR-HSI has {lr.shape[2]} bands but the estimated SRF {est.srf.shape[1]}")
    out = lr.astype(np.float64) @ est.srf.T + est.offset
    return out.astype(np.float32)
