"""The arrays the user loaded, as the app keeps them: `DataSource` (the array, where it came
from, its wavelengths, value range and georeferencing) and the loaders that make one from a
file or from the built-in demo (on the task thread)."""
from __future__ import annotations

import inspect
from pathlib import Path
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class DataSource:
    """One array the user loaded, with where it came from (for the data panel and YAML)."""
    data: np.ndarray
    label: str
    path: Optional[str] = None
    key: Optional[str] = None
    wavelengths: Optional[np.ndarray] = None
    value_range: tuple = (0.0, 0.0)
    geo: object = None            # the file's georeferencing and nodata value (engine georef.GeoInfo)
    camera: Optional[str] = None  # a satellite product's named camera (engine Cube.camera)


# HDF5 cubes at least this big stay in their file (read when a pair is prepared): the app then
# holds the prepared pair only, not a second copy of what the user opened (issue 21's memory
# budget; at 2048 x 2048 x 200 the sources were 264 MB of the app's extra over the CLI)
LAZY_MIN_BYTES = 32 << 20


def source_from_cube(cube, label, path=None, key=None) -> DataSource:
    data = cube.data if _reads_from_file(cube.data) else np.asarray(cube.data)
    rng = _finite_range(data)
    wl = None if cube.wavelengths is None else np.asarray(cube.wavelengths, dtype=float)
    return DataSource(data=data, label=label, path=path, key=key, wavelengths=wl, value_range=rng,
                      geo=getattr(cube, "geo", None), camera=getattr(cube, "camera", None))


def _reads_from_file(data) -> bool:
    return not isinstance(data, np.ndarray) and hasattr(data, "shape") and hasattr(data, "__getitem__")


def _finite_range(data, rows: int = 128) -> tuple:
    """(min, max) of the finite values, a block of rows at a time (a file-backed cube is never
    read whole here; an in-memory one gets no full-size temporaries); NaNs when none is finite."""
    lo, hi = np.inf, -np.inf
    for a in range(0, int(data.shape[0]), rows):
        block = np.asarray(data[a:a + rows])
        if block.dtype.kind == "f":
            block = block[np.isfinite(block)]
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
    return (lo, hi) if lo <= hi else (float("nan"), float("nan"))


def load_demo_source(size: Optional[int] = None) -> DataSource:
    """The built-in demo scene (engine `demo.demo_scene`), optionally at a smaller size."""
    from spectramorph_engine.run import demo
    fn = demo.demo_scene
    if size is not None and "size" in inspect.signature(fn).parameters:
        truth, wl = fn(size=size)
    else:
        truth, wl = fn()
    from types import SimpleNamespace
    return source_from_cube(SimpleNamespace(data=truth, wavelengths=wl), "built-in demo scene")


def load_source(path: str, key: Optional[str] = None) -> DataSource:
    """A cube from its file. A big HDF5 dataset stays in its (open, read-only) file and is read
    when the pair is prepared; anything else is read into memory."""
    from spectramorph_engine import io
    cube = None
    if Path(path).suffix.lower() in io.H5_SUFFIXES:
        cube = io.load_cube(path, key=key, allow_invalid=True, lazy=True)
        nbytes = int(np.prod(cube.shape, dtype=np.int64)) * np.dtype(cube.data.dtype).itemsize
        if nbytes < LAZY_MIN_BYTES:
            cube.close()
            cube = None
    if cube is None:
        cube = io.load_cube(path, key=key, allow_invalid=True)    # NaN/nodata: masked in real-world runs
    label = path if key is None else f"{path} [{key}]"
    return source_from_cube(cube, label, path=path, key=key)


def leave_demo_folders(config):
    """`config` with the demo's own output and log folders (outputs/demo, logs/demo) back at the
    general defaults when it is a real pair's: they are not where its outputs belong."""
    from spectramorph_engine import FusionConfig
    from spectramorph_engine.run.demo import demo_config
    if config.synthetic:
        return config
    demo, plain = demo_config(), FusionConfig()
    changes = {k: getattr(plain, k) for k in ("output_dir", "log_dir")
               if getattr(config, k) == getattr(demo, k)}
    return config.replace(**changes) if changes else config
