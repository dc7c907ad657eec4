"""Sub-pixel misregistration between an HR-MSI and an LR-HSI on nested grids (issue 22 item 2).

Georeferencing is rarely right to a fraction of an LR pixel, and a quarter-pixel offset between
the two images is read by every fusion method as spatial detail that is not there. The offset is
measured with the SRF fit itself: the HR-MSI brought to the LR grid (r x r block means) is
explained by the LR-HSI (its leading principal components, plus an offset: a preliminary SRF,
least squares per MSI band) shifted by d; the d that explains it best (least residual) is the
LR-HSI's displacement. Unlike phase correlation this needs no window and no periodic image, so
it works on small LR images, and the SRF need not be known yet (it is estimated after).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

__all__ = ["ShiftEstimate", "estimate_displacement", "MIN_LR_PIXELS"]

# Fewer valid LR pixels than this (inside the margin): no estimate (too few to fit the SRF).
MIN_LR_PIXELS = 40
SEARCH_LR_PX = 1.5          # displacements searched, each axis (LR pixels)
_MARGIN = 2                 # LR pixels at the border left out (a shifted image is guessed there)
_COMPONENTS = 8             # principal components of the LR-HSI in the preliminary SRF
_SMALL = 400               # fewer LR pixels: a margin of 1, fewer components
_MAX_SIDE = 192             # a bigger LR image is measured on its central window of this side


@dataclass(frozen=True)
class ShiftEstimate:
    displacement: Tuple[float, float]   # (cols, rows) in LR pixels: LR(x) ~ MSI-at-LR(x - d)
    fit_gain: float                     # residual at d=0 / residual at d (1: nothing gained)
    pixels: int                         # LR pixels the fit used


def _block_mean(hr: np.ndarray, r: int) -> np.ndarray:
    H, W, c = hr.shape
    return hr.reshape(H // r, r, W // r, r, c).mean(axis=(1, 3))


_PAD = int(np.ceil(SEARCH_LR_PX)) + 3      # the coefficients' edge padding: shifts within the search


def _cubic_weights(t: float) -> np.ndarray:
    """The cubic B-spline's weights of the coefficients at offsets -1, 0, 1, 2 from floor(x),
    for x's fractional part t."""
    return np.array([(1 - t) ** 3, 3 * t ** 3 - 6 * t ** 2 + 4, -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1, t ** 3]) / 6.0


def spline_shift(padded: np.ndarray, pad: int, rows: float, cols: float) -> np.ndarray:
    """What scipy.ndimage.shift(c, (rows, cols), order=3, mode="nearest", prefilter=False) gives
    for each channel of the spline coefficients c (h x w x k), from `padded` = c edge-padded by
    `pad` on both image axes. A constant shift is one 4-tap filter per axis: two passes of
    slices instead of ndimage's 16 taps per pixel and channel (30x faster on the 192 x 192 x 8
    coefficients of a big pair; the same values to round-off, tests/engine/test_coregistration.py).
    Shifts reaching past the padding are clamped as mode "nearest" clamps them."""
    out = padded
    for axis, s in ((0, rows), (1, cols)):
        n = out.shape[axis] - 2 * pad
        base = math.floor(-s)               # output i reads coefficients i + base - 1 .. i + base + 2
        weights = _cubic_weights(-s - base)
        acc = None
        for offset, wk in zip((-1, 0, 1, 2), weights):
            lo = pad + base + offset
            if 0 <= lo and lo + n <= out.shape[axis]:
                part = out[lo:lo + n] if axis == 0 else out[:, lo:lo + n]
            else:
                idx = np.clip(np.arange(n) + lo, 0, out.shape[axis] - 1)
                part = np.take(out, idx, axis=axis)
            acc = wk * part if acc is None else acc + wk * part
        out = acc                           # after the rows: h rows, the columns still padded
    return out


def _centre_window(h: int, w: int):
    r0, c0 = max(0, (h - _MAX_SIDE) // 2), max(0, (w - _MAX_SIDE) // 2)
    return slice(r0, r0 + min(h, _MAX_SIDE)), slice(c0, c0 + min(w, _MAX_SIDE))


def estimate_displacement(hr: np.ndarray, lr: np.ndarray, ratio: int,
                          valid: Optional[np.ndarray] = None) -> Optional[ShiftEstimate]:
    """The LR-HSI's displacement against the HR-MSI (see the module doc), or None when too few
    LR pixels are valid. `hr` H x W x c and `lr` h x w x C on nested grids (H = ratio * h);
    `valid` h x w bool (None: all); invalid pixels may hold anything finite."""
    from scipy import ndimage, optimize
    r = int(ratio)
    rows, cols = _centre_window(*lr.shape[:2])
    lr = np.asarray(lr[rows, cols], dtype=np.float64)
    hr_rows = slice(rows.start * r, rows.stop * r)
    hr_cols = slice(cols.start * r, cols.stop * r)
    msi = _block_mean(np.asarray(hr[hr_rows, hr_cols], dtype=np.float64), r)
    h, w, C = lr.shape
    ok = np.ones((h, w), bool) if valid is None else np.asarray(valid[rows, cols], bool).copy()
    ok &= np.isfinite(lr).all(axis=2) & np.isfinite(msi).all(axis=2)
    # a shifted pixel mixes its neighbours: those next to a hole or the border are left out too
    # (a margin of 1 on an image too small to spare 2: more pixels matter more there than a
    # little extrapolation at large trial shifts)
    kept = ndimage.binary_erosion(ok, np.ones((2 * _MARGIN + 1,) * 2), border_value=0)
    if kept.sum() < _SMALL:
        kept = ndimage.binary_erosion(ok, np.ones((3, 3)), border_value=0)
    ok = kept
    if ok.sum() < MIN_LR_PIXELS:
        return None
    fill = np.where(np.isfinite(lr), lr, 0.0)
    mean = fill[ok].mean(axis=0)
    centred = fill - mean
    k = int(min(_COMPONENTS, C, max(3, ok.sum() // 15)))     # ~15 pixels per fitted coefficient at least
    # the leading principal directions from the C x C Gram matrix (an SVD of the pixels took
    # 0.4 s on a big pair); only their span enters the fit below
    inside = centred[ok]
    _evals, evecs = np.linalg.eigh(inside.T @ inside)
    pcs = centred @ evecs[:, ::-1][:, :k]               # h x w x k
    # cubic-spline coefficients once (h x w x k, edge-padded); each trial shift only resamples them
    coeffs = np.stack([ndimage.spline_filter(pcs[:, :, i], order=3, mode="nearest") for i in range(k)], axis=2)
    padded = np.pad(coeffs, ((_PAD, _PAD), (_PAD, _PAD), (0, 0)), mode="edge")
    target = msi[ok]
    target = target - target.mean(axis=0)
    target_ss = float((target ** 2).sum()) or 1.0
    ones = np.ones((int(ok.sum()), 1))

    def residual(d):
        moved = spline_shift(padded, _PAD, -d[1], -d[0])[ok]
        X = np.hstack([moved, ones])
        gram = X.T @ X
        coef = np.linalg.solve(gram + 1e-9 * np.trace(gram) * np.eye(len(gram)), X.T @ target)
        return float(((X @ coef - target) ** 2).sum()) / target_ss

    # coarse grid, then refined from its best node
    grid = np.arange(-SEARCH_LR_PX, SEARCH_LR_PX + 1e-9, 0.5)
    best = min(((residual((dx, dy)), (dx, dy)) for dy in grid for dx in grid))
    res = optimize.minimize(residual, np.asarray(best[1]), method="Nelder-Mead",
                            options={"xatol": 0.005, "fatol": 1e-9, "initial_simplex":
                                     np.asarray(best[1]) + np.array([[0, 0], [0.25, 0], [0, 0.25]])})
    d = np.clip(res.x, -SEARCH_LR_PX, SEARCH_LR_PX)
    at_zero = residual((0.0, 0.0))
    return ShiftEstimate(displacement=(float(d[0]), float(d[1])),
                         fit_gain=float(at_zero / max(res.fun, 1e-12)), pixels=int(ok.sum()))
