"""The arrays the user loaded, as the app keeps them: `DataSource` (the array, where it came
from, its wavelengths, value range and georeferencing) and the loaders that make one from a
file or from the built-in demo (on the task thread)."""
from __future__ import annotations

import inspect
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


def source_from_cube(cube, label, path=None, key=None) -> DataSource:
    data = np.asarray(cube.data)
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    rng = (float(finite.min()), float(finite.max())) if finite.size else (float("nan"), float("nan"))
    wl = None if cube.wavelengths is None else np.asarray(cube.wavelengths, dtype=float)
    return DataSource(data=data, label=label, path=path, key=key, wavelengths=wl, value_range=rng,
                      geo=getattr(cube, "geo", None), camera=getattr(cube, "camera", None))


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
    from spectramorph_engine import io
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
