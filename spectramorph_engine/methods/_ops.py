"""Small array helpers shared by the classical fusion methods (GLP-HS, HySure).

Conventions are the pipeline's: cubes are rows x cols x bands, the LR grid is the
HR grid area-downsampled by r (LR pixel i covers HR pixels r*i .. r*i + r - 1), so
an LR pixel centre sits at HR coordinate r*i + (r - 1)/2.
"""
from __future__ import annotations

import time
from typing import Tuple

import numpy as np

from ..core import events as ev
from ..core.errors import InputError
from ..sensors import spatial

# Keys' cubic convolution parameter: -0.5 is the one that reproduces quadratics
# (third-order accurate; MATLAB imresize and degradation.bicubic_upsample use it).
KEYS_A = -0.5


def check_pair(prep) -> Tuple[np.ndarray, np.ndarray, int]:
    """(hr_msi H x W x c, lr_hsi h x w x C, ratio) of a PreparedInputs, shapes checked."""
    hr = np.asarray(prep.hr_msi)
    if hr.ndim == 2:
        hr = hr[:, :, None]
    lr = np.asarray(prep.lr_hsi)
    r = int(prep.ratio)
    if hr.ndim != 3 or lr.ndim != 3:
        raise InputError(f"the HR-MSI {hr.shape} and LR-HSI {lr.shape} must be rows x cols x bands")
    if hr.shape[0] != r * lr.shape[0] or hr.shape[1] != r * lr.shape[1]:
        raise InputError(f"HR-MSI {hr.shape} and LR-HSI {lr.shape} are not ratio {r} apart")
    return hr, lr, r


def psf_or_delta(psf) -> np.ndarray:
    """The PSF as a float64 2-D kernel with odd sides (None = no blur: a 1 x 1 delta)."""
    return spatial.check_psf(psf)


# ---------------------------------------------------------------------------
# cubic interpolation LR -> HR (no clipping: it is also applied to low-pass images
# and subspace coefficients, which are not confined to [0, 1])

def cubic_taps(n_in: int, r: int, a: float = KEYS_A) -> Tuple[np.ndarray, np.ndarray]:
    """(indices (n_in*r, 4), weights (n_in*r, 4)) of Keys cubic interpolation by r with the
    area-downsampling alignment: HR sample i sits at LR coordinate (i + 0.5)/r - 0.5.
    Out-of-range taps repeat the border sample."""
    pos = (np.arange(n_in * r) + 0.5) / r - 0.5
    base = np.floor(pos).astype(np.int64)
    offsets = np.arange(-1, 3)
    d = np.abs((pos - base)[:, None] - offsets[None, :])
    near = ((a + 2.0) * d - (a + 3.0)) * d * d + 1.0
    far = ((a * d - 5.0 * a) * d + 8.0 * a) * d - 4.0 * a
    w = np.where(d <= 1.0, near, np.where(d < 2.0, far, 0.0))
    idx = np.clip(base[:, None] + offsets[None, :], 0, n_in - 1)
    return idx, w


def cubic_matrix(n_in: int, r: int) -> np.ndarray:
    """The same interpolation as a dense (n_in*r) x n_in matrix (float64)."""
    idx, w = cubic_taps(n_in, r)
    m = np.zeros((n_in * r, n_in))
    np.add.at(m, (np.repeat(np.arange(n_in * r), 4), idx.ravel()), w.ravel())
    return m


class CubicUpsampler:
    """Separable cubic upsampling by r of an h x w x k cube, any block of HR rows at a time
    (memory follows the block, so a huge result can be produced row block by row block)."""

    def __init__(self, h: int, w: int, r: int):
        self.h, self.w, self.r = h, w, r
        self.iy, self.wy = cubic_taps(h, r)
        self.ix, self.wx = cubic_taps(w, r)

    def rows(self, cube: np.ndarray, r0: int, r1: int) -> np.ndarray:
        """HR rows r0..r1-1 of the upsampled cube (float32)."""
        x = np.asarray(cube, dtype=np.float32)
        iy = self.iy[r0:r1]
        wy = self.wy[r0:r1].astype(np.float32)
        col = wy[:, 0, None, None] * x[iy[:, 0]]
        for k in range(1, 4):
            col += wy[:, k, None, None] * x[iy[:, k]]
        wx = self.wx.astype(np.float32)
        out = wx[None, :, 0, None] * col[:, self.ix[:, 0]]
        for k in range(1, 4):
            out += wx[None, :, k, None] * col[:, self.ix[:, k]]
        return out

    def full(self, cube: np.ndarray) -> np.ndarray:
        return self.rows(cube, 0, self.h * self.r)


# ---------------------------------------------------------------------------
# the spatial degradation (blur with the PSF, then r x r block mean)

def degrade(cube: np.ndarray, psf, r: int, boundary: str = "zero") -> np.ndarray:
    """Blur with `psf` then area-downsample by r, float32 (H x W [x k] -> h x w [x k]):
    sensors.spatial.SpatialModel(psf, r, boundary).forward.

    boundary "zero": exactly degradation.degrade_spatial (the pipeline's forward model,
    zero padding, so borders darken as they do in a synthetic pair). "symmetric": the
    image mirrored at its edges before blurring (what a real sensor, which sees past
    the frame, resembles better)."""
    rule = "zero" if boundary == "zero" else "symmetric"      # any other name meant mirroring here
    return spatial.SpatialModel(psf, r, rule).forward(np.asarray(cube, dtype=np.float32))


# (kernel, origin) of `degrade` ("zero") as one convolution sampled every r-th pixel
decimation_kernel = spatial.decimation_kernel


# ---------------------------------------------------------------------------
# output and housekeeping

def rows_per_block(width: int, bands: int, budget_bytes: int = 32 << 20) -> int:
    return max(1, budget_bytes // max(1, 4 * width * bands))


def new_output(out_hsi, shape):
    """(target, writer): where result rows go (a new array when out_hsi is None)."""
    if out_hsi is None:
        out_hsi = np.empty(shape, dtype=np.float32)
    return out_hsi, getattr(out_hsi, "write_rows", None)


def put_rows(target, writer, r0: int, block: np.ndarray) -> None:
    if writer is not None:
        writer(r0, block)
    else:
        target[r0:r0 + block.shape[0]] = block


class Ticker:
    """StageProgress at most every `every` seconds (and always at the end)."""

    def __init__(self, progress, stage: str = "fuse", every: float = 0.1):
        self.progress, self.stage, self.every = progress, stage, every
        self._last = -np.inf

    def __call__(self, fraction: float, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._last >= self.every:
            self._last = now
            ev.emit(self.progress, ev.StageProgress(self.stage, float(min(1.0, max(0.0, fraction)))))


def boundary_for(prep) -> str:
    """Padding of the low-pass filter: the synthetic pair was blurred with zero padding;
    a real sensor saw the scene past the frame, which mirroring imitates better."""
    given = getattr(prep, "boundary", None)
    if given is not None:
        return "zero" if given == "zero" else "symmetric"
    return "zero" if getattr(prep, "mode", "synthetic") == "synthetic" else "symmetric"


def detect_boundary(hr_msi, lr_hsi, ratio: int, psf, srf, offset=None, margin: float = 0.02):
    """How the LR-HSI's blur treated the image border, read from the pair: "zero" (padding
    with zeros, so its border pixels darken -- a pair simulated with this engine's
    degrade_spatial or similar tools) or "free" (a real sensor saw the scene past the frame).

    The HR-MSI is degraded to the LR grid both ways (zeros / mirrored edges) and compared, on
    the ring of LR pixels the blur reaches past the border, with the LR-HSI seen through the
    SRF (lr_hsi @ srf.T + offset). "zero" only when it fits clearly (by `margin`, relative)
    better; otherwise "free", the physical default. Returns (boundary, {"zero": mse, "free": mse}).
    """
    from ..sensors.degradation import _ratio, as_cube
    msi = as_cube(hr_msi, "the HR-MSI").astype(np.float32, copy=False)
    lr = as_cube(lr_hsi, "the LR-HSI")
    r = _ratio(ratio)
    k = None if psf is None else np.asarray(psf, dtype=np.float64)
    h, w = lr.shape[:2]
    if k is None or k.size <= 1:
        return "free", {}
    reach = max(1, int(np.ceil((k.shape[0] // 2) / r)))
    if h <= 2 * reach or w <= 2 * reach:
        return "free", {}
    ring = np.ones((h, w), dtype=bool)
    ring[reach:h - reach, reach:w - reach] = False
    s = np.asarray(srf, dtype=np.float64)
    seen = lr[ring].astype(np.float64) @ s.T
    if offset is not None:
        seen = seen + np.asarray(offset, dtype=np.float64).reshape(1, -1)
    errors = {}
    for name, pad in (("zero", "zero"), ("free", "symmetric")):
        low = np.asarray(degrade(msi, k, r, pad), dtype=np.float64).reshape(h, w, -1)
        errors[name] = float(np.mean((low[ring] - seen) ** 2))
    choice = "zero" if errors["zero"] < (1.0 - margin) * errors["free"] else "free"
    return choice, errors


__all__ = ["check_pair", "psf_or_delta", "cubic_taps", "cubic_matrix", "CubicUpsampler", "degrade",
           "decimation_kernel", "rows_per_block", "new_output", "put_rows", "Ticker", "boundary_for",
           "detect_boundary", "KEYS_A"]
