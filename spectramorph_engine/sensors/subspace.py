"""How many spectral dimensions of a hyperspectral cube carry signal above its noise.

The idea is HySime's (Bioucas-Dias & Nascimento, "Hyperspectral subspace identification",
IEEE TGRS 46(8), 2008): estimate each band's noise, then keep the eigen-directions of the
signal correlation whose signal power exceeds the noise power projected on them (keeping a
direction removes its signal error and adds its noise; it pays when signal > noise). Written
here on the uncentred correlation of a strided pixel sample, with two changes for the small
LR-HSIs this project sees (a few hundred pixels for 200 bands):

- each band's noise comes from its energy outside the m leading principal components
  (corrected for the degrees of freedom they took), m the smallest rank whose count is at most
  m (signal_subspace), not from regressing the band on all the others, which needs many more
  pixels than bands;
- the cube is whitened by that noise, and each sample eigenvalue l (noise units) is mapped to
  the signal power it implies, undoing the sample's spread: a spike of power s over white noise
  shows as l = (1 + s)(1 + g / s), g = bands / pixels (the Baik-Ben Arous-Peche /
  Marchenko-Pastur result), and pure noise reaches up to (1 + sqrt g)^2. Without this, with
  g ~ 1, every noise direction reads as "twice the noise" and the count runs to dozens.

Measured: bench/README.md, "Estimated subspace".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

SAMPLE_PIXELS = 20000      # pixels of a strided sample: the estimate's cost does not grow with the scene
MAX_RANK = 40              # ranks tried for the noise estimate (signal_subspace)
SIGNAL_OVER_NOISE = 1.0    # keep a direction when its signal power exceeds this times its noise (HySime: 1)


@dataclass(frozen=True)
class SignalSubspace:
    """The estimate: `dim` directions above the noise; `signal_power` (descending, noise units)
    of each sample direction, NaN where the eigenvalue is inside the noise's spread;
    `band_noise` the noise variance per band."""
    dim: int
    signal_power: np.ndarray
    band_noise: np.ndarray
    pixels: int


def pixel_sample(cube: np.ndarray, limit: int = SAMPLE_PIXELS) -> np.ndarray:
    """At most about `limit` pixels (rows of a N x C float64 array), evenly strided."""
    x = np.asarray(cube).reshape(-1, np.asarray(cube).shape[-1])
    x = x[::max(1, -(-x.shape[0] // limit))]
    return x[np.all(np.isfinite(x), axis=1)].astype(np.float64)


def noise_by_rank(gram: np.ndarray, pixels: int, max_rank: int) -> np.ndarray:
    """Noise variance per band (max_rank x C: row m-1 for rank m) from the uncentred Gram matrix
    (C x C) of `pixels` pixels: each band's energy outside the m leading eigenvectors, divided by
    its degrees of freedom. For white noise over a signal of rank <= m the residual holds
    (N - m)(C - m) noise values, spread over the bands in proportion to their noise. One
    eigendecomposition gives every rank."""
    c = gram.shape[0]
    evals, evecs = np.linalg.eigh(gram)       # ascending: the tail sums are cumulative sums
    parts = (evecs ** 2) * np.clip(evals, 0.0, None)[None, :]
    tails = np.cumsum(parts, axis=1)[:, ::-1]            # column j: energy outside the j leading vectors
    ranks = np.arange(1, max_rank + 1)
    dof = np.maximum(1.0, (pixels - ranks) * (c - ranks) / c)
    floor = 1e-12 * max(float(np.trace(gram)) / (c * max(pixels, 1)), 1e-30)
    return np.maximum(tails[:, ranks].T / dof[:, None], floor)


def spike_power(eigenvalue: np.ndarray, ratio: float) -> np.ndarray:
    """The signal power s (noise units) whose spike gives the sample eigenvalue l = (1 + s)(1 + g / s)
    for g = `ratio` (bands / pixels); NaN at or below the noise's edge (1 + sqrt g)^2."""
    l = np.asarray(eigenvalue, dtype=np.float64)
    b = l - 1.0 - ratio
    disc = b * b - 4.0 * ratio
    out = np.full(l.shape, np.nan)
    above = (l > (1.0 + math.sqrt(ratio)) ** 2) & (disc >= 0)
    out[above] = 0.5 * (b[above] + np.sqrt(disc[above]))
    return out


def direction_power(gram: np.ndarray, noise: np.ndarray, pixels: int) -> np.ndarray:
    """Signal power of each eigen-direction of the noise-whitened correlation (descending)."""
    scale = 1.0 / np.sqrt(noise)
    white = gram * scale[:, None] * scale[None, :] / pixels
    evals = np.linalg.eigvalsh(white)[::-1]
    return spike_power(evals, gram.shape[0] / pixels)


def signal_subspace(cube: np.ndarray, *, threshold: Optional[float] = None,
                    sample: int = SAMPLE_PIXELS) -> SignalSubspace:
    """The number of spectral directions of `cube` (... x C) whose signal power exceeds
    `threshold` (None: SIGNAL_OVER_NOISE) times the noise projected on them.

    The noise is read outside the m leading components for m = 1, 2, ... and the first m whose
    count is at most m is kept: below the signal's rank the noise reads high but the signal left
    over still stands out (it is concentrated in a few directions, the excess noise spread over
    all); above it the extra components take noise from the noisiest bands first (with noise
    varying 6x across bands, 1/8 of theirs left: measured) and the count runs away."""
    threshold = SIGNAL_OVER_NOISE if threshold is None else float(threshold)
    x = pixel_sample(cube, sample)
    n, c = x.shape
    top = min(MAX_RANK, c - 1, n - 2)
    if top < 1:
        return SignalSubspace(dim=min(n, c), signal_power=np.full(min(n, c), np.nan),
                              band_noise=np.zeros(c), pixels=n)
    gram = x.T @ x
    noise = noise_by_rank(gram, n, top)
    for m in range(1, top + 1):
        power = direction_power(gram, noise[m - 1], n)
        dim = int(np.sum(power > threshold))
        if dim <= m:
            break
    return SignalSubspace(dim=dim, signal_power=power, band_noise=noise[m - 1], pixels=n)
