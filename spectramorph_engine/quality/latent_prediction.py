"""What the two sensors would see of a result clip(A E), without making the result.

The fusion's result is the latent maps A (H x W x K) mixed by E (K x C) and clipped to the
pair's value range. Its scores need it degraded back to the LR grid (blur, block mean) and seen
through the SRF, band by band: on a 2048^2 x 200 scene that meant making every band and
blurring it. Both sensors are linear, so without the clip D B (A E) = (D B A) E and
(A E) S^T = A (E S^T): K latent maps are blurred, and one small product gives the MSI. The clip
is not linear; where it changes a value (rare: a real pair's result is clipped only below the
LR-HSI's floor) the change is kept, sparse, and seen by the sensors too. The predictions equal
those of the clipped result's bands to float32 rounding (tests/engine/test_consistency.py).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..core import events as ev

# Beyond this share of values changed by the clip, keeping the changes costs more than making
# the bands: the caller then makes them (consistency_by_bands)
MAX_CLIPPED_FRACTION = 0.01
ROW_BLOCK_BYTES = 16 << 20     # one block of rows of the mixed result, all bands (float32)
# latent maps degraded together: the blur of one 2048^2 map holds ~6 of it (FFT buffers); with
# all 14 (K + P) at once the scores took 1386 MiB over their inputs at 2048^2 with a 7 x 7 blur,
# 584 now (`python -m bench.pieces scores-memory --psf-sigma 1`; the FFTs are per map anyway)
MAPS_PER_BLUR = 1


class LatentPrediction:
    """The LR prediction of bands b0..b1 (`lr`), and the MSI prediction `msi` (H x W x c
    float64, before the SRF's offset) of a result clip(A E)."""

    def __init__(self, latent_lr, E, shape, r, degrade, msi, changes):
        self.latent_lr, self.E, self.shape, self.r, self.degrade = latent_lr, E, shape, r, degrade
        self.msi = msi
        pixels, bands, values = changes
        order = np.argsort(bands, kind="stable")
        self.pixels, self.bands, self.values = pixels[order], bands[order], values[order]

    def lr(self, b0: int, b1: int) -> np.ndarray:
        H, W, _ = self.shape
        h, w = H // self.r, W // self.r
        pred = (self.latent_lr @ self.E[:, b0:b1]).reshape(h, w, b1 - b0)
        lo, hi = np.searchsorted(self.bands, [b0, b1])
        if hi > lo:
            bands = self.bands[lo:hi]
            touched = np.unique(bands)
            change = np.zeros((H * W, touched.size), dtype=np.float32)
            change[self.pixels[lo:hi], np.searchsorted(touched, bands)] = self.values[lo:hi]
            pred[:, :, touched - b0] += self.degrade(change.reshape(H, W, -1))
        return pred


def _all_finite(flat: np.ndarray, block: int = 1 << 20) -> bool:
    """np.isfinite(flat).all() a block of rows at a time (whole, its mask was 59 MB at 2048^2)."""
    return all(np.isfinite(flat[i:i + block]).all() for i in range(0, flat.shape[0], block))


def predict_from_latents(alle, E, srf, value_range, r: int, degrade: Callable[[np.ndarray], np.ndarray],
                         cancel=None) -> Optional[LatentPrediction]:
    """A LatentPrediction of clip(alle @ E) for the sensor `degrade` (HR cube -> LR grid) and
    `srf` (c x C); None when the maps hold non-finite values, do not fit the ratio, or the clip
    changes too many values."""
    A = np.asarray(alle, dtype=np.float32)
    E = np.asarray(E, dtype=np.float32)
    H, W, K = A.shape
    C = E.shape[1]
    if H % r or W % r or not _all_finite(A.reshape(-1, K)):
        return None
    lo, hi = value_range
    srf = np.asarray(srf, dtype=np.float64)
    flat = A.reshape(-1, K)
    to_msi = E.astype(np.float64) @ srf.T                              # K x c
    msi = np.empty((H * W, srf.shape[0]), dtype=np.float64)            # (H W) x c
    limit = MAX_CLIPPED_FRACTION * H * W * C
    parts, count = [], 0
    rows = max(1, ROW_BLOCK_BYTES // (4 * W * C))
    for a in range(0, H, rows):
        ev.check_cancel(cancel)
        start = a * W
        # a block at a time: the maps in float64 whole were ~0.5 GB more at 2048^2 (K + P = 14)
        np.matmul(flat[start:start + rows * W].astype(np.float64), to_msi, out=msi[start:start + rows * W])
        block = flat[start:start + rows * W] @ E
        out = np.zeros(block.shape, dtype=bool)
        if lo is not None:
            out |= block < lo
        if hi is not None:
            out |= block > hi
        if not out.any():
            continue
        px, band = np.nonzero(out)
        values = block[px, band]
        change = np.clip(values, lo, hi) - values
        count += px.size
        if count > limit:
            return None
        np.add.at(msi, start + px, change[:, None].astype(np.float64) * srf[:, band].T)
        parts.append((start + px, band, change.astype(np.float32)))
    changes = tuple(np.concatenate(p) for p in zip(*parts)) if parts else \
        (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
    ev.check_cancel(cancel)
    # a few maps at a time: the sensor's blur of all K + P maps at once held ~6 copies of them
    latent_lr = np.concatenate([np.asarray(degrade(np.ascontiguousarray(A[:, :, k:k + MAPS_PER_BLUR])),
                                           dtype=np.float32) for k in range(0, K, MAPS_PER_BLUR)],
                               axis=2).reshape(-1, K)
    return LatentPrediction(latent_lr, E, (H, W, C), r, degrade, msi.reshape(H, W, -1), changes)
