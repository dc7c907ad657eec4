"""What a kept run can be compared with: other runs, the truth, bicubic, the LR-HSI, the HR-MSI.

Each comparison is a cube on the shown run's HR grid, in the shown run's units, so the two
can be drawn with the same display levels and differenced. Nothing here is scientific: the
cubes come from the engine (the prepared inputs, `degradation.bicubic_upsample`); this only
resolves a key to one of them and says why one cannot be used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from spectramorph_engine import InputError

# Bicubic is interpolated into memory; past this size it is refused rather than swapping.
BICUBIC_LIMIT_BYTES = 1 << 30

FIXED_KEYS = (("truth", "Ground truth"), ("bicubic", "Bicubic (LR-HSI interpolated)"),
              ("lr_hsi", "LR-HSI (its pixels, enlarged)"), ("hr_msi", "HR-MSI (its own bands)"))


class NearestUpsampled:
    """The LR-HSI seen on the HR grid -- each LR pixel repeated ratio x ratio -- indexable like
    an H x W x C array (rows, columns, bands) without ever being made whole; values mapped by
    x * scale + offset (to the result's units)."""

    def __init__(self, lr, ratio: int, shape_hw, scale: float = 1.0, offset: float = 0.0):
        self.lr = lr
        self.ratio = int(ratio)
        self.shape = (int(shape_hw[0]), int(shape_hw[1]), int(lr.shape[2]))
        self.ndim = 3
        self.dtype = np.dtype(np.float32)
        self.scale, self.offset = float(scale), float(offset)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        rows = np.arange(self.shape[0])[key[0]]
        cols = np.arange(self.shape[1])[key[1]]
        # the bands first, on the small LR cube: enlarging all bands first made a full H x W x C
        # cube for a three-band composite (3.2 GB at 2048^2 x 200: the app's memory peak)
        bands = np.asarray(self.lr)[:, :, key[2]]
        out = bands[np.ix_(np.atleast_1d(rows) // self.ratio, np.atleast_1d(cols) // self.ratio)]
        out = out.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        if np.ndim(rows) == 0 and np.ndim(cols) == 0:
            return out[0, 0]
        if np.ndim(rows) == 0:
            return out[0]
        if np.ndim(cols) == 0:
            return out[:, 0]
        return out

    def __array__(self, dtype=None, copy=None):
        out = self[:, :, :]
        return out if dtype is None else out.astype(dtype)


@dataclass
class Comparison:
    key: object
    label: str
    cube: object                  # H x W x bands, in the shown run's units
    same_bands: bool = True       # False for the HR-MSI: no difference map, no shared levels


def unit_map(result) -> tuple:
    """(scale, offset) taking the engine's normalised scale to the result's units."""
    prep = result.prepared
    if result.units == "input" and prep.lr_units is not None:
        return float(prep.lr_units[1]), float(prep.lr_units[0])
    return 1.0, 0.0


def describe(state, key) -> str:
    if isinstance(key, tuple) and key[0] == "run":
        rec = state.run_record(key[1])
        return rec.name if rec is not None else f"Run {key[1]}"
    return dict(FIXED_KEYS).get(key, str(key))


def unavailable_reason(state, record, key) -> Optional[str]:
    """Why `key` cannot be compared with the shown run `record`, or None when it can."""
    prep = record.result.prepared
    shape = tuple(record.result.hr_hsi.shape)
    if key == "truth":
        return None if prep.truth is not None else "no ground truth: real-world mode"
    if key == "bicubic":
        nbytes = shape[0] * shape[1] * shape[2] * 4
        return None if nbytes <= BICUBIC_LIMIT_BYTES else \
            f"bicubic of {nbytes / 2**30:.1f} GB would not be held in memory"
    if key in ("lr_hsi", "hr_msi"):
        return None
    if isinstance(key, tuple) and key[0] == "run":
        other = state.run_record(key[1])
        if other is None:
            return "that run was removed"
        if other is record:
            return "it is the shown run"
        if tuple(other.result.hr_hsi.shape) != shape:
            return (f"its result is {' x '.join(map(str, other.result.hr_hsi.shape))}, the shown run's "
                    f"{' x '.join(map(str, shape))}")
        return None
    return "unknown comparison"


def resolve(state, record, key) -> Comparison:
    """The comparison cube for `key` against the shown run `record` (InputError if it has none)."""
    why = unavailable_reason(state, record, key)
    if why is not None:
        raise InputError(f"Cannot compare with {describe(state, key)}: {why}.")
    r = record.result
    prep = r.prepared
    scale, offset = unit_map(r)
    label = describe(state, key)
    if key == "truth":
        return Comparison(key, label, prep.truth)
    if key == "lr_hsi":
        return Comparison(key, label, NearestUpsampled(prep.lr_hsi, prep.ratio, r.hr_hsi.shape[:2], scale, offset))
    if key == "hr_msi":
        return Comparison(key, label, prep.hr_msi, same_bands=False)
    if key == "bicubic":
        cached = record.notes.get("bicubic")
        if cached is None:
            from spectramorph_engine.sensors.degradation import bicubic_upsample
            # clipped as the result is (and as its scores clip it): the same range on screen
            cached = bicubic_upsample(prep.lr_hsi, prep.ratio, value_range=prep.value_range).astype(np.float32)
            cached = cached[:r.hr_hsi.shape[0], :r.hr_hsi.shape[1]]
            if (scale, offset) != (1.0, 0.0):
                cached = cached * np.float32(scale) + np.float32(offset)
            record.notes["bicubic"] = cached
        return Comparison(key, label, cached)
    other = state.run_record(key[1])
    return Comparison(key, label, other.result.hr_hsi)
