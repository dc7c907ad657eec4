"""Result figures: endmember spectra and the grid of ALLE maps.

Figures are built on `matplotlib.figure.Figure` directly, never through
pyplot, so no GUI backend (and no global figure registry) is ever touched:
the engine stays usable on servers and inside the Qt app's worker thread.
Saving goes through matplotlib's Agg renderer.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from ..io.atomic import atomic_open
from ..core.errors import InputError

# Suffix -> matplotlib format name for save_figure.
FIGURE_FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}

# ALLE maps are drawn at most this many pixels on a side: a 2048 x 2048 map
# shown in a thumbnail needs no more, and drawing stays fast.
_MAX_MAP_SIDE = 512


def endmember_figure(endmembers, wavelengths=None) -> Figure:
    """Line plot of the K endmember spectra (K x C), one coloured curve each, with a legend.

    The x axis is "Wavelength (nm)" when `wavelengths` (C values) is given,
    otherwise "Band" (1-based band numbers).
    """
    e = np.asarray(endmembers, dtype=np.float64)
    if e.ndim != 2 or e.size == 0:
        raise InputError(f"endmembers must be a K x C matrix, got shape {e.shape}")
    k, c = e.shape
    if wavelengths is not None:
        x = np.asarray(wavelengths, dtype=np.float64).ravel()
        if x.shape != (c,):
            raise InputError(f"{x.size} wavelengths given for {c} bands (endmembers shape {e.shape})")
        xlabel = "Wavelength (nm)"
    else:
        x = np.arange(1, c + 1)
        xlabel = "Band"
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    # tab10 is distinguishable up to 10 curves; beyond that a continuous map
    # keeps neighbours apart instead of repeating colours.
    cmap = colormaps["tab10"] if k <= 10 else colormaps["turbo"]
    for i in range(k):
        colour = cmap(i) if k <= 10 else cmap(i / max(k - 1, 1))
        ax.plot(x, e[i], color=colour, linewidth=1.5, label=f"Endmember {i + 1}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Value")
    ax.set_title("Endmember spectra")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", ncols=1 if k <= 8 else 2, loc="best")
    return fig


def abundance_figure(alle) -> Figure:
    """Grid of the K ALLE maps (H x W x K), titled "ALLE 1".."ALLE K".

    All maps share ONE colour scale (the min and max over every map), shown
    by one colourbar, so their values can be compared across maps. Maps
    larger than 512 pixels on a side are drawn subsampled.
    """
    a = np.asarray(alle)
    if a.ndim != 3 or a.size == 0:
        raise InputError(f"ALLE must be an H x W x K array, got shape {a.shape}")
    h, w, k = a.shape
    step = max(1, math.ceil(max(h, w) / _MAX_MAP_SIDE))
    shown = a[::step, ::step, :]
    finite = shown[np.isfinite(shown)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmax <= vmin:  # a constant set of maps still needs a non-empty scale
        vmin, vmax = vmin - 0.5, vmax + 0.5
    norm = Normalize(vmin=vmin, vmax=vmax)
    ncols = math.ceil(math.sqrt(k))
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(2.6 * ncols + 1.2, 2.6 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        if i >= k:
            ax.set_axis_off()
            continue
        image = ax.imshow(shown[:, :, i], cmap="viridis", norm=norm, interpolation="nearest")
        ax.set_title(f"ALLE {i + 1}", fontsize="medium")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.85, label="ALLE value")
    return fig


def save_figure(fig: Figure, path) -> Path:
    """Write `fig` to `path` atomically, as PNG or JPEG by the suffix (.png, .jpg, .jpeg).

    The image goes to a temporary file in the same folder, which then replaces
    `path` in one rename (spectramorph_engine.io.atomic); on any error, a cancel
    included, `path` is left as it was.
    """
    path = Path(path)
    fmt = FIGURE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot save figure {path}: unknown image type {path.suffix!r}; "
                         f"allowed: {', '.join(FIGURE_FORMATS)}")
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format=fmt, dpi=120)
    return path
