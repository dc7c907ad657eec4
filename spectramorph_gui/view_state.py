"""What the results view shows, and what it keeps when the scene under it changes (Qt-free).

`ResultsViewState` holds the view's own choices -- the image on screen (a `Scene`), what it
shows (result, truth, an error or misfit map), the bands, the display levels and their
preset, the comparison mode, the pinned pixels and the regions (plain records: number, kind,
corners, colour). The widgets of the results panel write it on user input and read it when
they draw; the pyqtgraph ROI of a region stays in the widget layer and maps to its record by
number. Which run is shown and what it is compared with belong to the application
(`AppState.shown_run`, `AppState.comparison`), not to this view.

Pins and regions are drawn on one result; the next run may be a smaller image or another
band count. `fit_to_scene` decides, from plain numbers, which of them still fit the new
image: kept where they do, dropped with a note where they do not. `scene_changed` applies
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




DISPLAYS = ("result", "truth", "err_rmse", "err_sam", "misfit_pair", "misfit_result")
COMPARE_MODES = ("side", "swipe", "diff_rmse", "diff_sam")
DEFAULT_PRESET = (1.0, 99.0)
# no red among the first: the reconstructed spectrum is drawn red
REGION_COLOURS = ("#3cb44b", "#4363d8", "#f58231", "#911eb4", "#00a3a3", "#9a6324", "#f032e6", "#e6194b")


@dataclass
class RegionRecord:
    """One region of interest as numbers: what is kept, fitted and drawn again."""
    number: int                           # shown as R<number>; numbers restart when all are cleared
    kind: str                             # rectangle | polygon | freehand
    vertices: np.ndarray                  # (n, 2) (row, col) corners in image coordinates
    colour: str                           # outline, label and curve colour

    @property
    def name(self) -> str:
        return f"R{self.number}"


@dataclass
class ResultsViewState:
    """What the results view shows; every choice a widget makes is written here first."""
    scene: Optional[Scene] = None                  # the image on screen (None before the first result)
    display: str = "result"                        # what the main view shows: one of DISPLAYS
    mode: str = "rgb"                              # "rgb" (a composite of three bands) or "band" (one, grey)
    rgb_bands: Tuple[int, ...] = (0, 0, 0)         # the composite's red, green and blue bands
    band: int = 0                                  # the band shown in single-band mode
    levels: Optional[np.ndarray] = None            # display levels of the result's image: (2,) or (3, 2)
    levels_spec: Optional[tuple] = None            # the band spec the levels were taken for
    preset: Tuple[float, float] = DEFAULT_PRESET   # percentiles of the stretch new levels are taken with
    compare_mode: str = "side"                     # how a comparison is shown: one of COMPARE_MODES
    pins: List[Tuple[int, int]] = field(default_factory=list)     # pinned pixels; the first is "the" pixel
    regions: List[RegionRecord] = field(default_factory=list)     # the regions, in the order drawn
    regions_made: int = 0                          # region numbers handed out since the last clear

    # -- what is drawn ---------------------------------------------------------
    @property
    def band_spec(self) -> tuple:
        """("rgb", (r, g, b)) or ("band", b): the bands the main image is made of."""
        return ("rgb", tuple(self.rgb_bands)) if self.mode == "rgb" else ("band", int(self.band))

    def needs_levels(self, spec) -> bool:
        """No levels yet, or they were taken for other bands."""
        return self.levels is None or self.levels_spec != spec

    def set_levels(self, levels, spec=None) -> None:
        self.levels = None if levels is None else np.asarray(levels, dtype=float)
        if spec is not None:
            self.levels_spec = spec

    def set_preset(self, percentiles) -> None:
        self.preset = tuple(float(p) for p in percentiles)

    def limit_display(self, available) -> bool:
        """Back to the result when the shown choice is not available (True when it changed)."""
        if self.display in available:
            return False
        self.display = "result"
        return True

    # -- pins --------------------------------------------------------------------
    @property
    def pixel(self) -> Optional[Tuple[int, int]]:
        """The pinned pixel whose spectra the plots show (None before any)."""
        return self.pins[0] if self.pins else None

    def pin(self, row: int, col: int) -> None:
        """Pin this pixel alone."""
        self.pins = [(int(row), int(col))]

    def add_pin(self, row: int, col: int) -> bool:
        """Pin another pixel beside the others (False when it was pinned already)."""
        p = (int(row), int(col))
        if p in self.pins:
            return False
        self.pins.append(p)
        return True

    def pins_inside(self) -> None:
        """Pins outside the scene dropped (the centre pinned when none is left)."""
        if self.scene is None:
            return
        h, w = self.scene.rows, self.scene.cols
        self.pins = [(r, c) for r, c in self.pins if r < h and c < w] or [(h // 2, w // 2)]

    # -- regions -------------------------------------------------------------------
    def add_region(self, kind: str, vertices) -> RegionRecord:
        self.regions_made += 1
        record = RegionRecord(self.regions_made, kind, np.asarray(vertices, dtype=float),
                              REGION_COLOURS[(self.regions_made - 1) % len(REGION_COLOURS)])
        self.regions.append(record)
        return record

    def region(self, number: int) -> Optional[RegionRecord]:
        return next((g for g in self.regions if g.number == number), None)

    def move_region(self, number: int, vertices) -> None:
        record = self.region(number)
        if record is not None:
            record.vertices = np.asarray(vertices, dtype=float)

    def remove_region(self, number: int) -> bool:
        record = self.region(number)
        if record is None:
            return False
        self.regions.remove(record)
        return True

    def clear_regions(self) -> None:
        self.regions = []
        self.regions_made = 0

    # -- a new image under the view ------------------------------------------------
    def scene_changed(self, scene: Scene, rgb_bands: Optional[Sequence[int]] = None) -> List[str]:
        """A new result on screen: its levels are taken afresh; on another scene the pins and
        regions that still fit are kept and the rest dropped (the notes say which), and on
        another spectral axis the bands are reset (`rgb_bands`: the new scene's default
        composite; the single band is its first). Returns the notes."""
        previous, self.scene = self.scene, scene
        self.levels = self.levels_spec = None
        if scene.spectral_axis_changed(previous):
            last = max(scene.bands - 1, 0)
            bands = tuple(rgb_bands) if rgb_bands is not None else \
                tuple(min(max(int(b), 0), last) for b in self.rgb_bands)
            self.rgb_bands = bands
            self.band = int(bands[0]) if bands else 0
        if scene == previous:
            return []
        fit = fit_to_scene(self.pins, [g.vertices for g in self.regions], [g.name for g in self.regions], scene)
        self.pins = list(fit.pins)
        self.regions = [g for i, g in enumerate(self.regions) if i in fit.keep_regions]
        return list(fit.notes)


__all__ = ["COMPARE_MODES", "DEFAULT_PRESET", "DISPLAYS", "REGION_COLOURS", "RegionRecord", "ResultsViewState",
           "Scene", "SceneFit", "fit_to_scene", "region_fits"]
