"""The bicubic baseline degraded back to the LR grid, without making it at full resolution.

The scores report how well bicubic upsampling of the LR-HSI reproduces the LR-HSI once
blurred and area-downsampled again (the baseline beside the fusion's LR consistency). Done
literally, every band is upsampled to the HR grid and blurred there: most of the scores' time
on a 2048^2 scene. The chain "upsample by r, blur, block-mean by r" is linear and commutes with
a shift of one LR pixel (r HR pixels), so away from the image border it is a convolution on
the LR grid with a small kernel, read off the chain's response to one LR pixel. Near the border
(where the upsampling repeats the edge and the blur meets the frame) the chain is run as it is,
on strips of a few LR pixels along each side. The result equals the literal chain to float32
rounding (tests/engine/test_consistency.py).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..sensors.degradation import bicubic_upsample


class BicubicDegraded:
    """`degrade(bicubic_upsample(lr, r))` for chunks of LR bands; `degrade` maps an HR cube
    (H x W x n) to the LR grid (consistency._degrade with the pair's PSF and border rule) and
    `psf_radius` is the blur's reach in HR pixels."""

    def __init__(self, r: int, psf_radius: int, degrade: Callable[[np.ndarray], np.ndarray]):
        self.r, self.degrade = int(r), degrade
        # LR reach of the chain: the cubic's 2 LR pixels, the blur's, the block, one spare
        self.reach = int(psf_radius) // self.r + 4
        self.strip = 2 * self.reach + 2         # rows of context a border strip needs
        self.kernel = self._kernel()

    def _chain(self, lr: np.ndarray) -> np.ndarray:
        return np.asarray(self.degrade(bicubic_upsample(lr, self.r)), dtype=np.float32)

    def _kernel(self) -> np.ndarray:
        R = self.reach
        n = 4 * R + 3
        delta = np.zeros((n, n, 1), dtype=np.float32)
        delta[n // 2, n // 2] = 1.0
        response = self._chain(delta)[:, :, 0]
        c = n // 2
        return np.ascontiguousarray(response[c - R:c + R + 1, c - R:c + R + 1])

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        """h x w x n float32: the chain applied to each band of `lr` (h x w x n)."""
        from scipy.signal import fftconvolve
        x = np.asarray(lr, dtype=np.float32)
        h, w = x.shape[:2]
        R, S = self.reach, self.strip
        if min(h, w) < 2 * S:           # a small image: its border is most of it
            return self._chain(x)
        out = fftconvolve(x, self.kernel[:, :, None], mode="same", axes=(0, 1)).astype(np.float32)
        # the border, where the upsampling and the blur see the frame: the chain itself
        out[:R] = self._chain(x[:S])[:R]
        out[h - R:] = self._chain(x[h - S:])[S - R:]
        out[:, :R] = self._chain(x[:, :S])[:, :R]
        out[:, w - R:] = self._chain(x[:, w - S:])[:, S - R:]
        return out
