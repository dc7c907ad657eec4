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

Choices (measured on the Urban / IKONOS scenario of `scenarios.py`):
- lam = mu * trace(A_c^T A_c) / C (mu is scale free: it does not depend on the
  data's units or on N). mu is chosen per band by 2-fold hold-out over
  `SMOOTHNESS_GRID` (1e-6 .. 1): the LR pixels are split into a checkerboard of
  4 x 4-pixel blocks, fitted on one colour and scored on the other, both ways;
  the mu with the smallest held-out squared error wins and the final fit uses
  all pixels. A fixed `smoothness=mu` skips the search.
- The blur width: each candidate sigma in `psf_sigmas` (HR pixels; 0 = none)
  brings the HR-MSI to the LR grid (Gaussian blur, 'same' zero padding as in
  SPEC 1, then area downsampling); the fit is scored by hold-out with
  mu = `SIGMA_SCAN_SMOOTHNESS` and the sigma with the smallest held-out error
  over all bands wins.
- Border LR pixels, where zero padding and the real scene beyond the edge
  disagree, are left out of every fit: a margin of ceil(3 sigma / r) LR pixels
  (the largest candidate sigma during the scan, the chosen sigma for the final
  fit), capped so at least half of each image side remains.
- Fit quality per band: PSNR (data range 1, the inputs are in [0,1]) and R^2 of
  the final fit on its pixels. A non-linear camera (e.g. gamma) cannot be
  explained exactly by any SRF: the fit is then imperfect, and these figures
  say by how much.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from scipy.optimize import nnls

from .errors import InputError

log = logging.getLogger(__name__)

DEFAULT_PSF_SIGMAS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
SMOOTHNESS_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SIGMA_SCAN_SMOOTHNESS = 1e-3
HOLDOUT_BLOCK = 4            # LR pixels per side of a hold-out checkerboard block

# choose_training_input: the estimated SRF is used when its fit reaches both
# figures on every band; otherwise the network trains on the HR-MSI brought to
# the LR grid (see choose_training_input for the measurements behind them).
TRAINING_INPUT_MIN_PSNR_DB = 30.0
TRAINING_INPUT_MIN_R2 = 0.95


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


def _as_cube(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"{what} must be rows x cols x bands, got shape {a.shape}")
    return a


def _check_pair(hr_msi, lr_hsi, ratio: int):
    hr = _as_cube(hr_msi, "the HR-MSI")
    lr = _as_cube(lr_hsi, "the LR-HSI")
    ratio = int(ratio)
    if ratio < 1 or hr.shape[0] != ratio * lr.shape[0] or hr.shape[1] != ratio * lr.shape[1]:
        raise InputError(f"HR-MSI {hr.shape} and LR-HSI {lr.shape} are not {ratio}x apart "
                         f"(need H = {ratio}*h and W = {ratio}*w)")
    return hr, lr, ratio


def msi_to_lr_grid(hr_msi, ratio: int, psf_sigma: float) -> np.ndarray:
    """The HR-MSI brought to the LR grid: Gaussian blur of `psf_sigma` HR pixels
    ('same', zero padding, as the SPEC sensor model), then area downsampling by
    `ratio`. This is the training input under `training_input: msi_lr`. (h, w, c) float32."""
    from .degradation import area_downsample, blur
    hr = _as_cube(hr_msi, "the HR-MSI").astype(np.float32, copy=False)
    ratio = int(ratio)
    H, W = hr.shape[:2]
    if ratio < 1 or H % ratio or W % ratio:
        raise InputError(f"HR-MSI {hr.shape} cannot be downsampled by {ratio}: its size is not a multiple")
    if psf_sigma and psf_sigma > 0:
        hr = np.asarray(blur(hr, gaussian_kernel(float(psf_sigma))), dtype=np.float32)
    return np.asarray(area_downsample(hr, ratio), dtype=np.float32)


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


def _fit_band(A: np.ndarray, y: np.ndarray, D: np.ndarray, mu: float):
    """Nonnegative smooth fit with free offset; returns (s, b)."""
    a_mean = A.mean(axis=0)
    y_mean = float(y.mean())
    Ac = A - a_mean
    yc = y - y_mean
    lam = mu * float(np.sum(Ac * Ac)) / A.shape[1]
    if lam > 0 and D.shape[0]:
        M = np.vstack([Ac, math.sqrt(lam) * D])
        rhs = np.concatenate([yc, np.zeros(D.shape[0])])
    else:
        M, rhs = Ac, yc
    s, _ = nnls(M, rhs, maxiter=50 * A.shape[1])
    b = y_mean - float(a_mean @ s)
    return s, b


def _folds(h: int, w: int) -> np.ndarray:
    """Boolean (h*w,) mask of fold 0 of the block checkerboard (fold 1 = ~mask)."""
    i, j = np.mgrid[0:h, 0:w]
    return (((i // HOLDOUT_BLOCK) + (j // HOLDOUT_BLOCK)) % 2 == 0).ravel()


def _holdout_sse(A, y, D, mu, fold0) -> float:
    sse = 0.0
    for train in (fold0, ~fold0):
        test = ~train
        if train.sum() < 2 or test.sum() < 1:
            continue
        s, b = _fit_band(A[train], y[train], D, mu)
        r = A[test] @ s + b - y[test]
        sse += float(r @ r)
    return sse


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
    pixels_used: int = 0

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
        """The best-fitting Gaussian PSF as a kernel (sums to 1)."""
        return gaussian_kernel(self.psf_sigma)

    def band_centres(self) -> Optional[np.ndarray]:
        """(c,) response-weighted centre of each row in nm (None without wavelengths)."""
        if self.wavelengths is None:
            return None
        n = self.srf_normalized
        return n @ np.asarray(self.wavelengths, dtype=np.float64)

    def summary(self) -> str:
        bands = ", ".join(f"{p:.1f} dB (R2 {r:.3f})" for p, r in zip(self.psnr_db, self.r2))
        return (f"SRF estimated from the pair: fit {self.psnr:.1f} dB PSNR [{bands}], "
                f"blur sigma {self.psf_sigma:g} px")


def estimate_srf(hr_msi, lr_hsi, ratio: int, wavelengths=None, smoothness: Optional[float] = None,
                 psf_sigmas: Sequence[float] = DEFAULT_PSF_SIGMAS) -> SrfEstimate:
    """Fit the SRF (c x C), an offset per band and the blur width to an image pair.

    hr_msi (H, W, c) or (H, W); lr_hsi (h, w, C) with H = ratio*h, W = ratio*w; both
    in [0,1]. `smoothness` None: mu chosen per band by hold-out over SMOOTHNESS_GRID;
    a number: that mu. `psf_sigmas`: candidate Gaussian blur widths in HR pixels.
    """
    hr, lr, ratio = _check_pair(hr_msi, lr_hsi, ratio)
    h, w, C = lr.shape
    c = hr.shape[2]
    sigmas = sorted({float(s) for s in psf_sigmas})
    if not sigmas:
        raise InputError("estimate_srf needs at least one candidate blur width")
    if smoothness is not None and not smoothness >= 0:
        raise InputError(f"the SRF smoothness must be >= 0, got {smoothness}")
    D = _second_difference(C)
    lr64 = lr.astype(np.float64)

    # 1. blur width: held-out error of a fixed-mu fit, same pixels for every candidate
    m_scan = _margin(max(sigmas), ratio, h, w)
    A_scan = _interior(lr64, m_scan).reshape(-1, C)
    fold_scan = _folds(h - 2 * m_scan, w - 2 * m_scan)
    mu_scan = SIGMA_SCAN_SMOOTHNESS if smoothness is None else smoothness
    lr_msi_by_sigma = {}
    scores = {}
    for sg in sigmas:
        y_lr = msi_to_lr_grid(hr, ratio, sg).astype(np.float64)
        lr_msi_by_sigma[sg] = y_lr
        Y = _interior(y_lr, m_scan).reshape(-1, c)
        sse = sum(_holdout_sse(A_scan, Y[:, k], D, mu_scan, fold_scan) for k in range(c))
        scores[sg] = math.sqrt(sse / (Y.size))
    sigma = min(sigmas, key=lambda s: scores[s])
    log.info("SRF estimation: blur sigma %g px (held-out RMSE by sigma: %s)", sigma,
             ", ".join(f"{s:g}: {v:.4f}" for s, v in scores.items()))

    # 2. per band: smoothness by hold-out, then the final fit on all interior pixels
    m = _margin(sigma, ratio, h, w)
    A = _interior(lr64, m).reshape(-1, C)
    Y = _interior(lr_msi_by_sigma[sigma], m).reshape(-1, c)
    fold = _folds(h - 2 * m, w - 2 * m)
    srf = np.zeros((c, C))
    offset = np.zeros(c)
    psnr_db = np.zeros(c)
    r2 = np.zeros(c)
    mus = np.zeros(c)
    for k in range(c):
        y = Y[:, k]
        if smoothness is None:
            mu = min(SMOOTHNESS_GRID, key=lambda v: _holdout_sse(A, y, D, v, fold))
        else:
            mu = float(smoothness)
        s, b = _fit_band(A, y, D, mu)
        srf[k], offset[k], mus[k] = s, b, mu
        psnr_db[k], r2[k] = _fit_stats(y, A @ s + b)
    est = SrfEstimate(srf=srf, offset=offset, psf_sigma=sigma, psnr_db=psnr_db, r2=r2,
                      smoothness=mus, sigma_scores=scores,
                      wavelengths=None if wavelengths is None else np.asarray(wavelengths, dtype=np.float64),
                      pixels_used=int(A.shape[0]))
    log.info("%s", est.summary())
    return est


def apply_estimated_srf(lr_hsi, est: SrfEstimate) -> np.ndarray:
    """The estimated SRF applied to the LR-HSI, plus the offset: the LR-grid MSI the
    network trains on under `srf_source: estimate`. (h, w, c) float32, not clipped."""
    lr = _as_cube(lr_hsi, "the LR-HSI")
    if lr.shape[2] != est.srf.shape[1]:
        raise InputError(f"the LR-HSI has {lr.shape[2]} bands but the estimated SRF {est.srf.shape[1]}")
    out = lr.astype(np.float64) @ est.srf.T + est.offset
    return out.astype(np.float32)


def preset_fit(hr_msi, lr_hsi, ratio: int, srf, psf_sigma: Optional[float] = None,
               psf_sigmas: Sequence[float] = DEFAULT_PSF_SIGMAS) -> dict:
    """How well a given SRF (e.g. the preset) explains the pair, used as is (no gain or
    offset: exactly what the network would be trained on).

    Compares SRF(LR-HSI) with the HR-MSI brought to the LR grid (blur `psf_sigma`, or the
    candidate in `psf_sigmas` that fits best) on the interior LR pixels.
    Returns dict(psnr (mean over bands, dB), psnr_per_band, r2_per_band, psf_sigma).
    """
    hr, lr, ratio = _check_pair(hr_msi, lr_hsi, ratio)
    srf = np.asarray(srf, dtype=np.float64)
    h, w, C = lr.shape
    c = hr.shape[2]
    if srf.shape != (c, C):
        raise InputError(f"the SRF is {srf.shape} but the pair needs {c} x {C}")
    sigmas = [float(psf_sigma)] if psf_sigma is not None else sorted({float(s) for s in psf_sigmas})
    m = _margin(max(sigmas), ratio, h, w)
    pred = _interior(lr.astype(np.float64) @ srf.T, m).reshape(-1, c)
    best = None
    for sg in sigmas:
        Y = _interior(msi_to_lr_grid(hr, ratio, sg).astype(np.float64), m).reshape(-1, c)
        mse = float(np.mean((pred - Y) ** 2))
        if best is None or mse < best[0]:
            best = (mse, sg, Y)
    _, sg, Y = best
    stats = [_fit_stats(Y[:, k], pred[:, k]) for k in range(c)]
    per_psnr = [float(p) for p, _ in stats]
    return {"psnr": float(np.mean(per_psnr)), "psnr_per_band": per_psnr,
            "r2_per_band": [float(r) for _, r in stats], "psf_sigma": sg}


def choose_training_input(hr_msi, lr_hsi, ratio: int, est: SrfEstimate):
    """Pick the network's training input for `training_input: auto` -> ("srf" | "msi_lr", reason).

    "srf" (the estimated SRF applied to the LR-HSI, with its offset) when the estimated
    SRF explains every MSI band well: fit PSNR >= TRAINING_INPUT_MIN_PSNR_DB and
    R^2 >= TRAINING_INPUT_MIN_R2 on every band. Otherwise "msi_lr" (the real HR-MSI
    brought to the LR grid with the estimated blur): with a poor fit the SRF-made input
    differs from what the network sees at inference, while the HR-MSI itself is by
    construction the right camera.
    `hr_msi`, `lr_hsi` and `ratio` are accepted for callers that want a data-driven
    rule; the current rule needs only the fit figures in `est`.
    """
    worst_psnr = float(np.min(est.psnr_db))
    worst_r2 = float(np.min(est.r2))
    if worst_psnr >= TRAINING_INPUT_MIN_PSNR_DB and worst_r2 >= TRAINING_INPUT_MIN_R2:
        return "srf", (f"the estimated SRF explains every MSI band well (worst band "
                       f"{worst_psnr:.1f} dB, R2 {worst_r2:.3f})")
    return "msi_lr", (f"the estimated SRF explains the HR-MSI only partly (worst band "
                      f"{worst_psnr:.1f} dB, R2 {worst_r2:.3f}; needs {TRAINING_INPUT_MIN_PSNR_DB:g} dB "
                      f"and R2 {TRAINING_INPUT_MIN_R2:g}): training on the HR-MSI brought to the LR grid")
