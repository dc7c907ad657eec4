"""THE spatial sensor model (issue 18): blur with the PSF, then the mean of each r x r block,
its adjoint, its Fourier form, and the rule for what the blur sees past the frame.

Every place that degrades a cube spatially takes it from here: degradation.degrade_spatial /
blur / area_downsample (the synthetic pair), consistency._degrade (the figures), methods._ops
(GLP-HS's low-pass, HySure's decimation kernel), srf_estimation.msi_to_lr_grid (the SRF/blur
fit), hysure.FourierGrid (the padded transfer function) and the refinement's torch operator
(the kernel's orientation).

Conventions (held to a written-out matrix in tests/engine/test_adjoints.py):
- the blur is a true convolution with the kernel centred (kernel[k//2, k//2] acts at offset 0),
  'same' size; the PSF is 2-D with odd sides;
- LR pixel (i, j) is the mean of HR pixels r*i .. r*i + r - 1 (rows) x r*j .. r*j + r - 1 (cols);
- border rules (BOUNDARIES): "zero" -- zeros past the frame (how a synthetic pair is made, so
  its border pixels darken); "edge" -- the edge pixel replicated (np.pad "edge"; what the
  consistency figures call "free"); "symmetric" -- the image mirrored with its edge pixel
  repeated (np.pad "symmetric"; GLP-HS's low-pass and detect_boundary on a real pair).

numpy, float32 in -> float32 out (float64 stays float64); heavy steps go a few bands at a time.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..core.errors import InputError

__all__ = ["SpatialModel", "BOUNDARIES", "canonical_boundary", "blur", "area_downsample", "area_upsample_adjoint",
           "check_psf", "decimation_kernel", "padded_kernel", "transfer_function", "torch_kernels"]

# Bands processed together: big enough for vectorised FFTs, small enough that the
# temporaries stay a fraction of the cube.
BAND_CHUNK = 16

BOUNDARIES = ("zero", "edge", "symmetric")
_ALIASES = {"zero": "zero", "edge": "edge", "free": "edge", "symmetric": "symmetric"}


def canonical_boundary(boundary: str) -> str:
    """One of BOUNDARIES for a rule's name ("free", the consistency figures' name, is "edge")."""
    try:
        return _ALIASES[boundary]
    except (KeyError, TypeError):
        raise InputError(f"a border rule must be one of {', '.join(sorted(_ALIASES))}, got {boundary!r}") from None


# ---------------------------------------------------------------------------
# argument checks (degradation re-exports these names)

def float_cube(cube, what: str = "the cube", ndims=(2, 3)) -> np.ndarray:
    a = np.asarray(cube)
    if a.ndim not in ndims:
        raise InputError(f"{what} must be rows x cols{' [x bands]' if 2 in ndims else ' x bands'}, "
                         f"got shape {a.shape}")
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) \
            or np.iscomplexobj(a):
        raise InputError(f"{what} must hold real numbers, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float32)
    return a


def check_ratio(r) -> int:
    try:
        ri = int(r)
    except (TypeError, ValueError):
        raise InputError(f"the ratio must be an integer >= 1, got {r!r}") from None
    if ri != r or ri < 1:
        raise InputError(f"the ratio must be an integer >= 1, got {r!r}")
    return ri


def bands_view(a: np.ndarray) -> Tuple[np.ndarray, bool]:
    """(H, W, C) view of a 2-D or 3-D array, and whether it was 2-D."""
    return (a[:, :, None], True) if a.ndim == 2 else (a, False)


def check_psf(psf) -> np.ndarray:
    """The PSF as a float64 2-D kernel with odd sides, finite (None = no blur: a 1 x 1 delta)."""
    if psf is None:
        return np.ones((1, 1))
    k = np.asarray(psf, dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise InputError(f"a PSF must be a 2-D kernel with odd sides, got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise InputError(f"the PSF (shape {k.shape}) holds NaN or Inf values")
    return k


def _centred_delta(k: np.ndarray):
    """k's centre value when k is zero everywhere else (a scaling, done exactly), else None."""
    nz = np.argwhere(k != 0)
    centre = (k.shape[0] // 2, k.shape[1] // 2)
    if len(nz) == 1 and tuple(nz[0]) == centre:
        return k[centre]
    return None


# ---------------------------------------------------------------------------
# the two halves of the operator, and their adjoints

def blur(cube, psf, boundary: str = "zero") -> np.ndarray:
    """Each band convolved with `psf`, 'same' size, past the frame by `boundary`. (H, W) or
    (H, W, C); float32 for float32 input. FFT convolution (scipy.signal.fftconvolve over axes
    0, 1, a few bands at a time); a centred delta is an exact scaling (no FFT round-off)."""
    from scipy.signal import fftconvolve
    a = float_cube(cube)
    k = check_psf(np.asarray(psf, dtype=np.float64))     # (None is refused here, unlike check_psf's delta)
    mode = canonical_boundary(boundary)
    x, flat = bands_view(a)
    scale = _centred_delta(k)
    if scale is not None:
        out = x * x.dtype.type(scale)
        return out[:, :, 0] if flat else out
    kk = k.astype(x.dtype)[:, :, None]
    py, px = k.shape[0] // 2, k.shape[1] // 2
    out = np.empty_like(x)
    for s in range(0, x.shape[2], BAND_CHUNK):
        chunk = x[:, :, s:s + BAND_CHUNK]
        if mode == "zero":
            out[:, :, s:s + BAND_CHUNK] = fftconvolve(chunk, kk, mode="same", axes=(0, 1))
        else:
            padded = np.pad(chunk, ((py, py), (px, px), (0, 0)), mode=mode)
            out[:, :, s:s + BAND_CHUNK] = fftconvolve(padded, kk, mode="valid", axes=(0, 1))
    return out[:, :, 0] if flat else out


def blur_adjoint(cube, psf, boundary: str = "zero") -> np.ndarray:
    """The adjoint of `blur` (same shapes): correlation with the kernel over the padded grid,
    the margin folded back onto the pixels the border rule copied there."""
    from scipy.signal import fftconvolve
    a = float_cube(cube)
    k = check_psf(psf)
    mode = canonical_boundary(boundary)
    x, flat = bands_view(a)
    scale = _centred_delta(k)
    if scale is not None:
        out = x * x.dtype.type(scale)
        return out[:, :, 0] if flat else out
    kk = k[::-1, ::-1].astype(x.dtype)[:, :, None]
    H, W = x.shape[:2]
    py, px = k.shape[0] // 2, k.shape[1] // 2
    out = np.empty_like(x)
    if mode != "zero":
        rows = np.pad(np.arange(H), py, mode=mode)
        cols = np.pad(np.arange(W), px, mode=mode)
    for s in range(0, x.shape[2], BAND_CHUNK):
        chunk = x[:, :, s:s + BAND_CHUNK]
        if mode == "zero":
            out[:, :, s:s + BAND_CHUNK] = fftconvolve(chunk, kk, mode="same", axes=(0, 1))
        else:
            full = fftconvolve(chunk, kk, mode="full", axes=(0, 1)).astype(np.float64)   # the padded grid
            folded = np.zeros((H, full.shape[1], full.shape[2]))
            np.add.at(folded, rows, full)
            back = np.zeros((H, W, full.shape[2]))
            np.add.at(back, (slice(None), cols), folded)
            out[:, :, s:s + BAND_CHUNK] = back
    return out[:, :, 0] if flat else out


def area_downsample(cube, r: int) -> np.ndarray:
    """Mean over non-overlapping r x r blocks. H and W must be multiples of r."""
    a = float_cube(cube)
    r = check_ratio(r)
    H, W = a.shape[:2]
    if H % r or W % r:
        raise InputError(f"a cube of shape {a.shape} cannot be area-downsampled by {r}: "
                         f"its height and width must be multiples of {r}")
    x, flat = bands_view(a)
    if r == 1:
        out = x.copy()
    else:
        blocks = x.reshape(H // r, r, W // r, r, x.shape[2])
        # float64 accumulation, stored back in the cube's precision
        out = blocks.mean(axis=(1, 3), dtype=np.float64).astype(a.dtype)
    return out[:, :, 0] if flat else out


def area_upsample_adjoint(cube, r: int) -> np.ndarray:
    """The adjoint of area_downsample: each LR value spread as value / r^2 over its block."""
    a = float_cube(cube)
    r = check_ratio(r)
    up = np.repeat(np.repeat(a, r, axis=0), r, axis=1)
    up *= up.dtype.type(1.0 / (r * r))
    return up


# ---------------------------------------------------------------------------
# the operator

class SpatialModel:
    """D = area_downsample(blur(., psf, boundary), ratio) and its adjoint, numpy.

    psf None (or a centred delta) = no blur. forward: (H, W[, C]) -> (H/r, W/r[, C]), H and W
    multiples of r; adjoint: the other way. The Fourier form (`decimation_kernel`,
    `transfer_function`) is the zero-border operator as one convolution sampled every r-th pixel."""

    def __init__(self, psf, ratio: int, boundary: str = "zero"):
        self.kernel = check_psf(psf)
        self.r = check_ratio(ratio)
        self.boundary = canonical_boundary(boundary)

    def _check(self, a, what):
        H, W = a.shape[:2]
        if H % self.r or W % self.r:
            raise InputError(f"a cube of shape {a.shape} cannot be downsampled by {self.r}: "
                             f"its height and width must be multiples of {self.r}")

    def forward(self, cube) -> np.ndarray:
        a = float_cube(cube)
        self._check(a, "the cube")
        x, flat = bands_view(a)
        H, W = x.shape[:2]
        out = np.empty((H // self.r, W // self.r, x.shape[2]), dtype=x.dtype)
        for s in range(0, x.shape[2], BAND_CHUNK):   # the full blurred cube is never held
            out[:, :, s:s + BAND_CHUNK] = area_downsample(blur(x[:, :, s:s + BAND_CHUNK], self.kernel,
                                                               self.boundary), self.r)
        return out[:, :, 0] if flat else out

    def adjoint(self, lr) -> np.ndarray:
        a = float_cube(lr)
        x, flat = bands_view(a)
        out = np.empty((x.shape[0] * self.r, x.shape[1] * self.r, x.shape[2]), dtype=x.dtype)
        for s in range(0, x.shape[2], BAND_CHUNK):
            out[:, :, s:s + BAND_CHUNK] = blur_adjoint(area_upsample_adjoint(x[:, :, s:s + BAND_CHUNK], self.r),
                                                       self.kernel, self.boundary)
        return out[:, :, 0] if flat else out

    def decimation_kernel(self):
        return decimation_kernel(self.kernel, self.r)

    def transfer_function(self, shape):
        return transfer_function(self.kernel, self.r, shape)


# ---------------------------------------------------------------------------
# the Fourier form (zero border; HySure embeds the frame in a larger periodic grid)

def decimation_kernel(psf, r: int) -> Tuple[np.ndarray, Tuple[int, int]]:
    """(kernel, origin) of the zero-border operator as one convolution followed by sampling
    every r-th pixel.

    The operator computes y[i] = mean_{t=0..r-1} (x * psf)[r*i + t] (per axis), i.e.
    (x * psf * b)[r*i] with b the r-tap box over offsets -(r-1)..0. The returned kernel is
    psf * (r x r box); entry [a, b] acts at offset (a - origin[0], b - origin[1])."""
    from scipy.signal import convolve2d
    k = check_psf(psf)
    kernel = convolve2d(k, np.full((r, r), 1.0 / (r * r)), mode="full")
    return kernel, (k.shape[0] // 2 + r - 1, k.shape[1] // 2 + r - 1)


def padded_kernel(psf, r: int, shape) -> np.ndarray:
    """The decimation kernel on a periodic grid of `shape` (float64), its origin at [0, 0]: the
    rfft2 of this is the operator's transfer function there (a grid whose margin is at least
    the kernel's reach keeps the blur from wrapping the frame onto itself)."""
    kernel, origin = decimation_kernel(psf, r)
    kpad = np.zeros(tuple(shape))
    kpad[:kernel.shape[0], :kernel.shape[1]] = kernel
    return np.roll(kpad, (-origin[0], -origin[1]), axis=(0, 1))


def transfer_function(psf, r: int, shape) -> np.ndarray:
    """np.fft.rfft2 of padded_kernel(psf, r, shape) (complex128)."""
    return np.fft.rfft2(padded_kernel(psf, r, shape))


def torch_kernels(psf):
    """(forward, adjoint) kernels for torch.nn.functional.conv2d, which correlates: the kernel
    flipped makes it convolve (the forward blur), the kernel itself is the adjoint. None, None
    for no blur. float64 numpy, (kh, kw)."""
    if psf is None or np.asarray(psf).size <= 1:
        return None, None
    k = check_psf(psf)
    return k[::-1, ::-1].copy(), k
