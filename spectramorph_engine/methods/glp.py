"""GLP-HS: hypersharpening with the MTF-matched generalised Laplacian pyramid.

References
----------
- M. Selva, B. Aiazzi, F. Butera, L. Chiarantini, S. Baronti, "Hyper-sharpening: a first
  approach on SIM-GA data", IEEE JSTARS 8(6), 2015: one synthetic high-resolution band per
  hyperspectral band, regressed from the multispectral bands, sharpened GLP-style.
- B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli, M. Selva, "MTF-tailored multiscale fusion
  of high-resolution MS and Pan imagery", PE&RS 72(5), 2006 (MTF-GLP): the low-pass filter of
  the pyramid matches the sensor's MTF.

What it does, per hyperspectral band b
--------------------------------------
1. Low-pass + decimation ``D`` = blur with the pair's PSF (``prep.psf``: the known PSF in
   synthetic mode, the blur fitted on the pair in real mode) then the r x r block mean: the
   sensor model of the LR-HSI itself, so the filter is matched to the MTF by construction.
2. Synthetic band: ``P_b = sum_i w_bi MSI_i + a_b``, with (w_b, a_b) the least-squares fit of
   the LR-HSI band on the MSI bands brought to the LR grid by ``D`` (the intercept's regressor
   is ``D(1)``, so a zero-padded blur's dark border is modelled too).
3. Detail: ``P_b - U(D(P_b))`` with ``U`` cubic interpolation (Keys, a = -0.5, with the
   area-downsampling pixel-centre alignment); the low-pass version is "blur, decimate by r,
   interpolate back up" exactly as one level of GLP.
4. Injection: ``fused_b = U(HSI_b) + g_b * detail_b`` with the regression gain
   ``g_b = cov(U(HSI_b), U(D(P_b))) / var(U(D(P_b)))`` over the HR image.

Design choices (why)
--------------------
- Additive injection with the regression (covariance) gain, not the ratio / HPM model
  ``U(HSI_b) * P_b / U(D(P_b))``: the data are normalised to [0, 1] by percentiles, so dark
  (e.g. water-absorption) bands have low-pass values near zero where a ratio blows up noise;
  the additive model is linear, hence cheap and exactly checkable (an LR band that *is* the
  low-passed MSI gets gain 1 and the MSI's own detail). Since ``P_b`` is a least-squares fit,
  the gain stays close to 1 and only corrects what interpolation changes.
- Everything is linear in the c + 1 regressors (MSI bands and a constant), so only those c + 1
  images are ever blurred, decimated and interpolated: the detail of band b is the fixed
  combination ``(MSI_aug - U(D(MSI_aug))) @ w_b``. The gains' HR-grid statistics are computed
  exactly on the LR grid (``sum U(x) U(y) = <Gy x Gx, y>`` with ``G = U^T U``), so the HR-HSI is
  produced in one pass, a block of rows at a time (memory bounded by the block).
- Borders: in synthetic mode the LR-HSI was made with a zero-padded blur, and ``D`` uses the
  same; in real mode the low-pass mirrors the image at its edges (a real sensor sees past the
  frame), so no artificial border detail is injected.
- Ignores the SRF (the regression learns how MSI bands relate to each HSI band, offsets
  included) and every SpectraMorph training setting. numpy on the CPU; the `device` is unused.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from ..core import events as ev
from . import MethodOutput
from ._ops import (CubicUpsampler, Ticker, boundary_for, check_pair, cubic_matrix, degrade, new_output,
                   put_rows, rows_per_block)

log = logging.getLogger(__name__)

NAME = "glp"
TITLE = "GLP-HS (MTF-matched generalised Laplacian pyramid hypersharpening)"
USES = {
    "psf": "Uses the PSF (given, or the blur fitted on a real pair) as the pyramid's low-pass filter.",
    "srf": "Ignores the SRF: each hyperspectral band is regressed on the multispectral bands instead.",
    "ignores": "Ignores all SpectraMorph training settings (endmembers, network, epochs, learning rates, prior).",
}


def fuse(config, prep, *, device=None, progress=None, cancel=None, out_hsi=None) -> MethodOutput:
    """GLP-HS fusion of a prepared pair (see the module docstring)."""
    t0 = time.perf_counter()
    ev.check_cancel(cancel)
    msi, lr, r = check_pair(prep)
    H, W, c = msi.shape
    h, w, C = lr.shape
    boundary = boundary_for(prep)
    tick = Ticker(progress)
    tick(0.0, force=True)

    # 1. the regressors on the LR grid: D(MSI_i) and D(1)
    low = np.empty((h, w, c + 1), dtype=np.float32)
    for i in range(c):
        ev.check_cancel(cancel)
        low[:, :, i] = degrade(np.asarray(msi[:, :, i], dtype=np.float32), prep.psf, r, boundary)
    low[:, :, c] = degrade(np.ones((H, W), dtype=np.float32), prep.psf, r, boundary)
    ev.check_cancel(cancel)
    tick(0.1)

    # 2. per-band least squares of the LR-HSI on them (float64, tiny system)
    A = low.reshape(-1, c + 1).astype(np.float64)
    Y = np.asarray(lr, dtype=np.float64).reshape(-1, C)
    weights, *_ = np.linalg.lstsq(A, Y, rcond=None)                     # (c+1) x C
    fit = A @ weights
    ss_res = np.sum((Y - fit) ** 2, axis=0)
    ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
    r2 = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), 1.0)
    ev.check_cancel(cancel)

    # 3. injection gains from HR-grid statistics computed on the LR grid
    gains = _regression_gains(low.astype(np.float64), Y.reshape(h, w, C), weights, r)
    ev.check_cancel(cancel)
    tick(0.2)

    # 4. the HR-HSI, a block of rows at a time
    inject = (weights * gains[None, :]).astype(np.float32)              # (c+1) x C
    up = CubicUpsampler(h, w, r)
    lr32 = np.asarray(lr, dtype=np.float32)
    target, writer = new_output(out_hsi, (H, W, C))
    step = max(r, rows_per_block(W, C))
    for r0 in range(0, H, step):
        ev.check_cancel(cancel)
        r1 = min(H, r0 + step)
        aug = np.empty((r1 - r0, W, c + 1), dtype=np.float32)
        aug[:, :, :c] = msi[r0:r1]
        aug[:, :, c] = 1.0
        aug -= up.rows(low, r0, r1)                                     # detail of the regressors
        block = up.rows(lr32, r0, r1)
        block += (aug.reshape(-1, c + 1) @ inject).reshape(r1 - r0, W, C)
        np.clip(block, *prep.value_range, out=block)
        put_rows(target, writer, r0, block)
        tick(0.2 + 0.8 * r1 / H)
    tick(1.0, force=True)
    seconds = time.perf_counter() - t0
    log.info("GLP-HS: %d x %d x %d from %d MSI bands in %.2f s (gain %.3f..%.3f, regression R2 median %.4f)",
             H, W, C, c, seconds, gains.min(), gains.max(), float(np.median(r2)))
    info = {
        "method": NAME,
        "boundary": boundary,
        "interpolation": "Keys cubic (a = -0.5), area-downsampling alignment",
        "injection": "additive, regression gain cov/var per band",
        "gain_min": float(gains.min()), "gain_median": float(np.median(gains)), "gain_max": float(gains.max()),
        "regression_r2_median": float(np.median(r2)), "regression_r2_min": float(r2.min()),
        "seconds": round(seconds, 4),
    }
    return MethodOutput(hr_hsi=target, info=info, device="cpu")


def _regression_gains(low: np.ndarray, lr: np.ndarray, weights: np.ndarray, r: int) -> np.ndarray:
    """g_b = cov(U(lr_b), U(low @ w_b)) / var(U(low @ w_b)) over the HR grid, for all bands.

    U = Uy . Ux (separable), so sum_HR U(x) U(y) = <Gy x Gx, y> with G = U^T U, and
    sum_HR U(x) = uy^T x ux with u = U^T 1: the HR statistics without an HR image."""
    h, w, k = low.shape
    C = lr.shape[2]
    uy_m, ux_m = cubic_matrix(h, r), cubic_matrix(w, r)
    gy, gx = uy_m.T @ uy_m, ux_m.T @ ux_m
    uy, ux = uy_m.sum(axis=0), ux_m.sum(axis=0)
    n = float(h * r * w * r)
    t = np.einsum("ij,jkl,km->iml", gy, low, gx, optimize=True).reshape(-1, k)
    cross = t.T @ lr.reshape(-1, C)                 # k x C: sum U(low_i) U(lr_b)
    gram = t.T @ low.reshape(-1, k)                 # k x k: sum U(low_i) U(low_j)
    mean_low = np.einsum("i,ijl,j->l", uy, low, ux) / n
    mean_lr = np.einsum("i,ijl,j->l", uy, lr, ux) / n
    m_p = mean_low @ weights                        # mean of U(D(P_b)), per band
    var = np.einsum("kb,kl,lb->b", weights, gram, weights) / n - m_p ** 2
    cov = np.einsum("kb,kb->b", weights, cross) / n - mean_lr * m_p
    tiny = 1e-12 * max(1.0, float(np.max(np.abs(var))))
    # a band whose synthetic band is flat gets no detail to scale: keep the natural gain 1
    return np.where(var > tiny, cov / np.where(var > tiny, var, 1.0), 1.0)
