"""The SPEC 5 metrics of several estimates against one truth in one pass over band chunks.

`metrics.rmse` ... `metrics.sam` and `metrics.compute_all` (spec convention) are thin
wrappers around `score_cubes`; the definitions are documented there. This module is how
they are computed cheaply:

* the cubes are read a chunk of bands at a time (memory stays a few chunk-sized planes,
  whatever the band count), each chunk once for every metric instead of once per metric;
* what depends on the truth alone (band means, per-pixel |x|^2, the truth's windowed
  means and second moments) is computed once and shared by every estimate -- the fused
  result and its bicubic baseline are scored together;
* the windowed statistics of SSIM (Gaussian 11 x 11) and UIQI (8 x 8 box) are 'valid'
  depthwise convolutions in torch float32 on the chunk as it lies in memory (H x W x c is
  channels-last), each band of each image first shifted by its own mean so E[x^2] - E[x]^2
  keeps its precision; the windowed sums of scipy.ndimage in float64 cost ~10x more;
* the error sums (RMSE, PSNR, ERGAS) and SAM's per-pixel sums stay float64, exact
  for float32 inputs (SAM near 0 degrees needs cosines to 1e-12).

UIQI has no constants to bound the rounding: blocks whose float32 variance sum is near its
rounding noise (flat and nearly flat ones) or whose means are near zero are computed again
in float64 from their pixels, where the degenerate cases are told apart as in float64.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.events import check_cancel

NAMES = ("RMSE", "PSNR", "SSIM", "UIQI", "ERGAS", "SAM")
PSNR_CAP_DB = 100.0
_FLAT_TOL = 1e-12          # UIQI: below this a block's variance sum / mx^2 + my^2 counts as zero
_DOUBT = 1e-6             # UIQI: float32 variances this close to their rounding noise are redone in float64
_CHUNK_BYTES = 16 << 20    # one float32 band chunk; the temporaries are a dozen of these
# Chunks of this many bands or more are halved: at 256 x 256 a 16 MB chunk (64 bands) has float64
# temporaries of 32 MB, past glibc's mmap threshold, so they came fresh from the system (page
# faults) for every chunk; 32-band chunks were ~10-25% faster there and at 400 x 400. Fewer bands
# per chunk cost more at 1024 x 1024 (2 bands a chunk 1.4x the time of 4), so images of 4 bands a
# chunk and fewer keep them whole (`python -m bench.pieces score-chunks`, bench/README).
_HALVE_FROM_BANDS = 16
_SSIM_RADIUS, _SSIM_SIGMA = 5, 1.5
_C1, _C2 = 0.01 ** 2, 0.03 ** 2


def chunk_bands(pixels: int, budget_bytes: int = _CHUNK_BYTES) -> int:
    """Bands per chunk so that one float32 chunk of `pixels` pixels stays within the budget
    (half that when it still holds _HALVE_FROM_BANDS / 2 bands or more)."""
    bands = max(1, int(budget_bytes // (4 * max(1, pixels))))
    return bands // 2 if bands >= _HALVE_FROM_BANDS else bands


def _gauss_taps():
    t = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / _SSIM_SIGMA) ** 2)
    return g / g.sum()


class _Windows:
    """Depthwise 'valid' window averages of (H, W, c) float32 arrays, in torch."""

    def __init__(self, c: int, uiqi_k: int):
        import torch
        self.torch = torch
        self.F = torch.nn.functional
        g = torch.from_numpy(_gauss_taps().astype(np.float32))
        self.gv = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
        self.gh = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
        k = uiqi_k
        self.k = k
        self.bv = torch.full((c, 1, k, 1), 1.0 / k)
        self.bh = torch.full((c, 1, 1, k), 1.0 / k)

    def _t(self, a):
        # (H, W, c) -> (1, c, H, W) with channels-last strides: no copy, oneDNN's fast path
        # (which needs the batch stride of a true channels-last tensor, not permute's)
        h, w, c = a.shape
        return self.torch.from_numpy(np.ascontiguousarray(a)).as_strided((1, c, h, w), (h * w * c, 1, w * c, c))

    @staticmethod
    def _np(t):
        return t[0].permute(1, 2, 0).numpy()

    def gauss(self, a):
        t = self._t(a)
        c = t.shape[1]
        return self._np(self.F.conv2d(self.F.conv2d(t, self.gv[:c], groups=c), self.gh[:c], groups=c))

    def box(self, a):
        t = self._t(a)
        c = t.shape[1]
        return self._np(self.F.conv2d(self.F.conv2d(t, self.bv[:c], groups=c), self.bh[:c], groups=c))


def _ssim_sums(win, xc, mu, mx, vx, yc, nu):
    """Per band, the sum of the SSIM map over its region (valid, or whole when small)."""
    my = win.gauss(yc)
    vy = win.gauss(yc * yc) - my * my
    sxy = win.gauss(xc * yc) - mx * my
    mx = mx + mu
    my = my + nu
    num = (2 * mx * my + np.float32(_C1)) * (2 * sxy + np.float32(_C2))
    num /= (mx * mx + my * my + np.float32(_C1)) * (vx + vy + np.float32(_C2))
    return num.sum(axis=(0, 1), dtype=np.float64), num.shape[0] * num.shape[1]


def _uiqi_sums(win, xc, yc, x, y, mu, mx, ex2, nu):
    """Per band, the sum of the UIQI map over the blocks fully inside the image.

    Where the float32 variance sum of a block is under _DOUBT times E[xc^2] + E[yc^2] (the
    scale of its rounding error), or its means are near zero, the block is computed again in
    float64 from its pixels: flat blocks, and nearly flat ones float32 cannot resolve. On a
    smooth scene's bicubic baseline that is 0.4% of the blocks, and UIQI lands within 3e-6
    of float64 (1e-5: 2% of the blocks, 4e-7, but 1.5x the time).
    """
    my = win.box(yc)
    ey2 = win.box(yc * yc)
    sxy = win.box(xc * yc) - mx * my
    e2 = ex2 + ey2
    var_sum = e2 - mx * mx - my * my
    mx = mx + mu
    my = my + nu
    lum = mx * mx + my * my
    with np.errstate(divide="ignore", invalid="ignore"):
        q = 4 * sxy * mx * my / (var_sum * lum)
    doubt = np.nonzero((var_sum <= _DOUBT * e2 + _FLAT_TOL) | (lum < 1e3 * _FLAT_TOL))
    if doubt[0].size:
        q[doubt] = _uiqi_blocks(x, y, win.k, *doubt)
    return q.sum(axis=(0, 1), dtype=np.float64), q.shape[0] * q.shape[1]


def _uiqi_blocks(x, y, k, rows, cols, bands, batch=1 << 15):
    """Q of the k x k blocks with top-left corners (rows, cols) in `bands`, in float64, plainly."""
    out = np.empty(rows.size)
    d = np.arange(k)
    for s in range(0, rows.size, batch):
        r = rows[s:s + batch, None, None] + d[None, :, None]
        c = cols[s:s + batch, None, None] + d[None, None, :]
        b = bands[s:s + batch, None, None]
        bx = x[r, c, b].reshape(r.shape[0], -1)
        by = y[r, c, b].reshape(r.shape[0], -1)
        mx, my = bx.mean(axis=1), by.mean(axis=1)
        bx = bx - mx[:, None]
        by = by - my[:, None]
        var_sum = np.mean(bx * bx + by * by, axis=1)
        sxy = np.mean(bx * by, axis=1)
        lum = mx * mx + my * my
        flat, dark = var_sum < _FLAT_TOL, lum < _FLAT_TOL
        with np.errstate(divide="ignore", invalid="ignore"):
            out[s:s + batch] = np.where(flat, np.where(dark, 1.0, 2 * mx * my / lum),
                                        np.where(dark, 2 * sxy / var_sum, 4 * sxy * mx * my / (var_sum * lum)))
    return out


def _symmetric(a, r):
    """scipy.ndimage's 'reflect' border (d c b a | a b c d) of r pixels on both image axes."""
    return np.pad(a, ((r, r), (r, r), (0, 0)), mode="symmetric")


def score_cubes(truth, estimates, ratio=None, names=NAMES, cancel=None, chunk=None, block=8) -> list:
    """The metrics `names` of each estimate against `truth` -> one dict per estimate.

    `truth` and each estimate: H x W x C arrays (or memmaps) of the same shape, already checked
    (metrics._check_pair). `ratio`: ERGAS's r, needed only for ERGAS. `chunk`: bands per chunk
    (default: a 16 MB float32 chunk); the values do not depend on it beyond float rounding.
    `block`: UIQI's block size.
    `cancel` is checked chunk by chunk.
    """
    names = tuple(names)
    H, W, C = truth.shape
    n = len(estimates)
    step = int(chunk or chunk_bands(H * W))
    want = set(names)
    sse = np.zeros((n, C))
    mu = np.zeros(C)
    ssim_sum = np.zeros((n, C))
    uiqi_sum = np.zeros((n, C))
    ssim_count = uiqi_count = 1
    if "SAM" in want:
        nx = np.zeros((H, W))
        dot = np.zeros((n, H, W))
        ny = np.zeros((n, H, W))
    small = H <= 2 * _SSIM_RADIUS or W <= 2 * _SSIM_RADIUS
    k = max(1, min(int(block), H, W))
    win = _Windows(step, k) if want & {"SSIM", "UIQI"} else None
    for b0 in range(0, C, step):
        check_cancel(cancel)
        b1 = min(C, b0 + step)
        x = np.asarray(truth[:, :, b0:b1], dtype=np.float64)
        m = x.mean(axis=(0, 1))
        mu[b0:b1] = m
        if "SAM" in want:
            nx += np.einsum("ijk,ijk->ij", x, x)
        if win is not None:
            m32 = m.astype(np.float32)
            xc = (x - m).astype(np.float32)     # centred: E[x^2] - E[x]^2 without cancellation
            xs = _symmetric(xc, _SSIM_RADIUS) if small else xc
            if "SSIM" in want:
                gmx = win.gauss(xs)
                gvx = win.gauss(xs * xs) - gmx * gmx
            if "UIQI" in want:
                bmx = win.box(xc)
                bex2 = win.box(xc * xc)
        for i, est in enumerate(estimates):
            y = np.asarray(est[:, :, b0:b1], dtype=np.float64)
            d = x - y
            sse[i, b0:b1] = np.einsum("ijk,ijk->k", d, d)
            del d
            if "SAM" in want:
                dot[i] += np.einsum("ijk,ijk->ij", x, y)
                ny[i] += np.einsum("ijk,ijk->ij", y, y)
            if win is None:
                continue
            my = y.mean(axis=(0, 1))
            yc = (y - my).astype(np.float32)    # each image by its own band mean: flat bands stay exact
            my = my.astype(np.float32)
            if "SSIM" in want:
                ys = _symmetric(yc, _SSIM_RADIUS) if small else yc
                ssim_sum[i, b0:b1], ssim_count = _ssim_sums(win, xs, m32, gmx, gvx, ys, my)
            if "UIQI" in want:
                uiqi_sum[i, b0:b1], uiqi_count = _uiqi_sums(win, xc, yc, x, y, m32, bmx, bex2, my)
    out = []
    mse = sse / (H * W)
    for i in range(n):
        row = {}
        if "RMSE" in want:
            row["RMSE"] = math.sqrt(float(sse[i].sum()) / (H * W * C))
        if "PSNR" in want:
            with np.errstate(divide="ignore"):
                db = np.where(mse[i] == 0.0, PSNR_CAP_DB, np.minimum(PSNR_CAP_DB, -10.0 * np.log10(mse[i])))
            row["PSNR"] = float(np.mean(db))
        if "SSIM" in want:
            row["SSIM"] = float(np.mean(ssim_sum[i] / ssim_count))
        if "UIQI" in want:
            row["UIQI"] = float(np.mean(uiqi_sum[i] / uiqi_count))
        if "ERGAS" in want:
            keep = mu != 0.0
            row["ERGAS"] = (100.0 / float(ratio) * math.sqrt(float(np.mean(mse[i][keep] / mu[keep] ** 2)))
                            if np.any(keep) else float("nan"))
        if "SAM" in want:
            row["SAM"] = _sam(dot[i], np.sqrt(nx), np.sqrt(ny[i]))
        out.append({name: row[name] for name in names})
    return out


def _sam(dot, nx, ny) -> float:
    valid = (nx > 0) & (ny > 0)
    if not np.any(valid):
        return float("nan")
    cos = np.clip(dot[valid] / (nx[valid] * ny[valid]), -1.0, 1.0)
    return float(np.degrees(np.mean(np.arccos(cos))))
