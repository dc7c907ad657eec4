"""The built-in demo scene: a synthetic ground-truth cube made by code (SPEC 6).

No data file: five materials with analytic spectra shaped like real ones
(reflectance, 400..2500 nm) are mixed by a fixed map of a landscape:

* a field where green vegetation and dry soil mix smoothly (smooth regions),
* a winding river with a hard bank, a straight road crossing the scene and
  a few rectangular concrete roofs (sharp edges),
* a little texture and a gentle spatially varying brightness.

Abundances are nonnegative and sum to 1 in every pixel; the same arguments
always give the same cube.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import zoom

from ..core.errors import InputError

DEMO_DESCRIPTION = ("Built-in demo: a synthetic 400-2500 nm scene of a vegetation/soil field, "
                    "a river, a road and concrete roofs, with smooth and sharp-edged regions.")

MATERIALS = ("vegetation", "soil", "water", "roof", "asphalt")

# Roofs as (top, left, bottom, right) in fractions of the scene size: fixed so
# the demo always looks the same, placed east of the river and off the road.
_ROOFS = ((0.10, 0.55, 0.26, 0.78), (0.12, 0.84, 0.30, 0.95), (0.36, 0.60, 0.52, 0.72),
          (0.76, 0.58, 0.90, 0.88), (0.74, 0.40, 0.86, 0.50))


def _gauss(lam, centre, width):
    return np.exp(-0.5 * ((lam - centre) / width) ** 2)


def _sigmoid(lam, centre, width):
    return 1.0 / (1.0 + np.exp(-(lam - centre) / width))


def material_spectra(wavelengths) -> dict:
    """Reflectance of each demo material at `wavelengths` (nm): name -> (C,) float64 in [0, 1]."""
    lam = np.asarray(wavelengths, dtype=np.float64)

    # Green vegetation: chlorophyll keeps the visible low with a small green
    # peak near 550 nm and a dip at the red absorption (~670 nm); the red
    # edge (~700-740 nm) climbs to the NIR plateau; liquid water in the
    # leaves cuts the plateau at 970/1200 nm, deeply at 1450 and 1940 nm,
    # and lowers the whole SWIR.
    visible = 0.035 + 0.055 * _gauss(lam, 550, 30) - 0.015 * _gauss(lam, 670, 20)
    leaf_water = (0.05 * _gauss(lam, 970, 40) + 0.08 * _gauss(lam, 1200, 60)
                  + 0.9 * _gauss(lam, 1450, 90) + 1.6 * _gauss(lam, 1940, 110)
                  + 0.35 * _sigmoid(lam, 1400, 150) + 0.5 * _sigmoid(lam, 2000, 150))
    vegetation = visible + 0.48 * _sigmoid(lam, 715, 12) * np.exp(-leaf_water)

    # Dry soil: a slow, featureless rise from the blue into the SWIR, shallow
    # bound-water dips near 1415 and 1915 nm and a clay feature at 2205 nm.
    soil = (0.10 + 0.25 * (1 - np.exp(-(lam - 400) / 600))
            - 0.03 * _gauss(lam, 1415, 40) - 0.05 * _gauss(lam, 1915, 60)
            - 0.03 * _gauss(lam, 2205, 30) - 0.04 * _sigmoid(lam, 2300, 120))

    # Clear water: a little blue-green reflectance that falls to almost 0
    # beyond ~900 nm, where water absorbs nearly everything.
    water = 0.005 + 0.065 * _gauss(lam, 500, 120)

    # Concrete roof: bright, nearly flat grey with a small rise through the
    # visible and a weak carbonate dip at 2330 nm.
    roof = (0.24 + 0.08 * _sigmoid(lam, 500, 60) + 0.04 * (lam - 400) / 2100
            - 0.02 * _gauss(lam, 2330, 40))

    # Asphalt: dark and flat, slowly brighter with wavelength, weak
    # hydrocarbon dips at 1730 and 2310 nm.
    asphalt = (0.05 + 0.05 * (lam - 400) / 2100
               - 0.006 * _gauss(lam, 1730, 25) - 0.008 * _gauss(lam, 2310, 30))

    spectra = dict(vegetation=vegetation, soil=soil, water=water, roof=roof, asphalt=asphalt)
    return {name: np.clip(s, 0.0, 1.0) for name, s in spectra.items()}


def _smooth_field(rng, size, cells):
    """A smooth random field in about [-1, 1]: a cells x cells noise grid, cubic-upsampled."""
    coarse = rng.standard_normal((cells, cells))
    field = zoom(coarse, size / cells, order=3, mode="reflect")[:size, :size]
    return field / max(float(np.abs(field).max()), 1e-9)


def demo_abundances(size=128, seed=0) -> np.ndarray:
    """Abundances of the demo materials (size x size x 5, float64, rows sum to 1), in MATERIALS order."""
    rng = np.random.default_rng(seed)
    v, u = (np.mgrid[0:size, 0:size] + 0.5) / size  # v: row (north-south), u: column

    # Field: vegetation share varies smoothly (rows of crops, a few large
    # patches), never quite pure either way so soil shows through.
    veg = (0.5 + 0.4 * np.sin(2 * np.pi * (1.1 * u + 0.15)) * np.cos(2 * np.pi * 0.8 * v)
           + 0.15 * _smooth_field(rng, size, 6))
    veg = np.clip(veg, 0.03, 0.97)
    ab = np.zeros((size, size, len(MATERIALS)))
    ab[:, :, 0] = veg
    ab[:, :, 1] = 1.0 - veg

    def paint(mask, index):
        ab[mask] = 0.0
        ab[:, :, index][mask] = 1.0

    # River: a band of width 0.08 around a meandering centre line, hard banks.
    centre = 0.24 + 0.08 * np.sin(2 * np.pi * 1.2 * v + 0.5)
    paint(np.abs(u - centre) < 0.04, 2)
    # Road: a straight east-west strip with hard edges (it bridges the river).
    paint((v > 0.62) & (v < 0.67), 4)
    for top, left, bottom, right in _ROOFS:
        paint((v >= top) & (v < bottom) & (u >= left) & (u < right), 3)
    return ab


def demo_scene(size=128, num_bands=120, seed=0):
    """The demo ground truth and its wavelengths.

    Returns (truth, wavelengths): truth is size x size x num_bands float32
    in [0, 1], wavelengths the band centres in nm, evenly spread over
    400..2500 nm. The same arguments always give the same cube; `seed` only
    changes the texture and the smooth patterns, not the layout.
    """
    if int(size) < 16 or int(num_bands) < 2:
        raise InputError(f"demo_scene needs size >= 16 and num_bands >= 2, got {size}, {num_bands}")
    size, num_bands = int(size), int(num_bands)
    wavelengths = np.linspace(400.0, 2500.0, num_bands)
    spectra = material_spectra(wavelengths)
    endmembers = np.stack([spectra[name] for name in MATERIALS])  # 5 x C
    ab = demo_abundances(size, seed)
    # Separate generator stream from the layout so the texture can be
    # changed without moving the fields.
    rng = np.random.default_rng([seed, 1])
    # Gentle illumination/topography change across the scene (about +-8%)
    # and a fine per-pixel texture (about 1.5%).
    brightness = (1.0 + 0.08 * _smooth_field(rng, size, 4)
                  + 0.015 * rng.standard_normal((size, size)))
    truth = (ab.reshape(-1, len(MATERIALS)) @ endmembers).reshape(size, size, num_bands)
    truth *= brightness[:, :, None]
    return np.clip(truth, 0.0, 1.0).astype(np.float32), wavelengths


def demo_config(**changes):
    """The configuration the demo runs with: defaults, outputs under outputs/demo.

    Five materials are in the scene, so five endmembers; everything else is
    the documented default, which is what a new user should see first.
    """
    from .config import FusionConfig
    base = dict(num_endmembers=5, output_dir="outputs/demo", log_dir="logs/demo")
    base.update(changes)
    return FusionConfig(**base)


def demo_inputs(size=128, num_bands=120, seed=0):
    """The demo scene as pipeline inputs (ground truth and wavelengths)."""
    from .results import FusionInputs
    truth, wavelengths = demo_scene(size, num_bands, seed)
    return FusionInputs(truth=truth, wavelengths=wavelengths)
