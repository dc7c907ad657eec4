"""What the results view keeps when the scene under it changes (Qt-free).

Pins and regions are drawn on one result; the next run may be a smaller image or another
band count. `fit_to_scene` decides, from plain numbers, which of them still fit the new
image: kept where they do, dropped with a note where they do not. The results panel applies
the answer before anything reads a pin or a region of the new scene (the library's match
targets, region statistics), so nothing indexes the old scene's pixels or bands.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np


@dataclass(frozen=True)
class Scene:
    """The image the view shows: rows, columns, bands and the wavelength range (or None)."""
    rows: int
    cols: int
    bands: int
    wavelengths: Optional[Tuple[float, float]] = None

    @classmethod
    def of(cls, shape, wavelengths=None) -> "Scene":
        h, w, c = (int(v) for v in shape[:3])
        wl = None if wavelengths is None or len(wavelengths) == 0 else \
            (float(wavelengths[0]), float(wavelengths[-1]))
        return cls(h, w, c, wl)

    def spectral_axis_changed(self, other: Optional["Scene"]) -> bool:
        return other is None or (self.bands, self.wavelengths) != (other.bands, other.wavelengths)


@dataclass
class SceneFit:
    pins: List[Tuple[int, int]]           # the pins kept (at least one when the scene has pixels)
    keep_regions: List[int]               # indices of the regions kept
    notes: List[str] = field(default_factory=list)


def region_fits(vertices_rowcol: np.ndarray, scene: Scene) -> bool:
    """A region is kept when its outline lies inside the image (pixel (i, j) covers
    [i, i+1) x [j, j+1), so corners may sit on the far edge)."""
    v = np.asarray(vertices_rowcol, dtype=float)
    if v.size == 0:
        return False
    return bool(v[:, 0].min() >= 0 and v[:, 1].min() >= 0
                and v[:, 0].max() <= scene.rows and v[:, 1].max() <= scene.cols)


def fit_to_scene(pins: Sequence[Tuple[int, int]], region_vertices: Sequence[np.ndarray],
                 region_names: Sequence[str], scene: Scene) -> SceneFit:
    kept_pins = [(int(r), int(c)) for r, c in pins if 0 <= r < scene.rows and 0 <= c < scene.cols]
    notes = []
    dropped = len(pins) - len(kept_pins)
    if dropped:
        notes.append(f"{dropped} pinned pixel{'s' if dropped > 1 else ''} outside the new "
                     f"{scene.rows}×{scene.cols} image removed")
    if not kept_pins:
        kept_pins = [(scene.rows // 2, scene.cols // 2)]
    keep = [i for i, v in enumerate(region_vertices) if region_fits(v, scene)]
    gone = [region_names[i] for i in range(len(region_vertices)) if i not in keep]
    if gone:
        notes.append(f"region{'s' if len(gone) > 1 else ''} {', '.join(gone)} outside the new image removed")
    return SceneFit(kept_pins, keep, notes)


__all__ = ["Scene", "SceneFit", "fit_to_scene", "region_fits"]
