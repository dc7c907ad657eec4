"""(Geo)TIFF: tifffile for whole reads (axis rule in the package docstring), rasterio windows
for lazy reads of a georeferenced cube (`WindowedRaster`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .common import (Cube, WAVELENGTH_NAMES, _check_declared, _finish, _numeric_dtype, _reading, _to_nm,
                     three_axes)


def _band_first(shape) -> bool:
    """The TIFF axis rule: first axis smallest, <= 512, both others larger."""
    return len(shape) == 3 and shape[0] <= 512 and shape[0] < shape[1] and shape[0] < shape[2]


def _tif_guard(p: Path, series) -> None:
    """Refuse a TIFF whose pages declare more pixels than their strips / tiles can hold:
    tifffile allocates the whole declared array before it reads a byte."""
    size = p.stat().st_size
    dtype = _numeric_dtype(p, "TIFF", series.dtype)
    stored, compressed = 0, False
    for page in series.pages:
        if page is None:
            continue
        # a TiffFrame (a light page of a uniform series) keeps its compression on its keyframe
        compression = getattr(page, "compression", None)
        if compression is None:
            compression = page.keyframe.compression
        compressed = compressed or int(compression) != 1
        for off, n in zip(page.dataoffsets, page.databytecounts):
            if off < 0 or n < 0 or off + n > size:
                raise InputError(f"'{p}' cannot be read as TIFF: image data at byte {off} ({n} bytes) lies "
                                 f"beyond the end of the file ({size} bytes; truncated or damaged)")
            stored += n
    _check_declared(p, "TIFF", series.shape, dtype, min(stored, size), compressed=compressed)


def _read_tif(p: Path, header_only: bool = False):
    import tifffile
    with _reading(p, "TIFF"):   # tifffile raises TiffFileError, ValueError, struct.error...
        with tifffile.TiffFile(str(p)) as tf:
            if not tf.series:
                raise InputError(f"'{p}' cannot be read as TIFF: it holds no image")
            series = tf.series[0]
            axes, shape, dtype = series.axes, tuple(series.shape), str(series.dtype)
            _tif_guard(p, series)
            data = None if header_only else series.asarray()
            # tifffile's "shaped" JSON description is where save_cube puts the wavelengths.
            meta = (tf.shaped_metadata or ({},))[0] if tf.is_shaped else {}
            if not isinstance(meta, dict):
                meta = {}
    if data is not None:
        data = np.squeeze(data) if data.ndim > 3 else data
        shape = tuple(data.shape)
    else:
        shape = tuple(s for s in shape if s != 1) if len(shape) > 3 else shape
    contiguous = axes.endswith("S")
    if len(shape) == 3 and not contiguous and _band_first(shape):
        shape = (shape[1], shape[2], shape[0])
        if data is not None:
            data = np.ascontiguousarray(np.moveaxis(data, 0, -1))
    wl = next((meta[k] for k in WAVELENGTH_NAMES if k in meta), None)
    wl = _to_nm(wl, meta.get("wavelength_units")) if wl is not None else None
    return data, shape, dtype, wl


class WindowedRaster:
    """Lazy rows x cols x bands view of a GeoTIFF read through rasterio windows: indexing
    reads only the rows and columns asked for (`shape`, `dtype`, `ndim`, ints and slices of
    step 1 on the first two axes, anything on the band axis, `np.asarray`)."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = (dataset.height, dataset.width, dataset.count)
        self.dtype = np.dtype(dataset.dtypes[0])
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        from rasterio.windows import Window
        key = three_axes(key)
        spans, squeeze = [], []
        for axis, k in enumerate(key[:2]):
            n = self.shape[axis]
            if isinstance(k, (int, np.integer)):
                k = int(k) + n if k < 0 else int(k)
                if not 0 <= k < n:
                    raise IndexError(f"index {k} out of range for axis {axis} of size {n}")
                spans.append((k, k + 1))
                squeeze.append(axis)
            elif isinstance(k, slice) and k.step in (None, 1):
                start, stop, _ = k.indices(n)
                spans.append((start, max(start, stop)))
            else:
                raise TypeError("a windowed GeoTIFF takes ints and unit-step slices on rows and columns")
        (r0, r1), (c0, c1) = spans
        block = self.dataset.read(window=Window(c0, r0, c1 - c0, r1 - r0))       # bands x rows x cols
        out = np.moveaxis(block, 0, 2)[:, :, key[2]]
        for axis in reversed(squeeze):
            out = np.take(out, 0, axis=axis)
        return out

    def __array__(self, dtype=None, copy=None):
        a = np.moveaxis(self.dataset.read(), 0, 2)
        return a if dtype is None else a.astype(dtype, copy=False)

    def close(self) -> None:
        self.dataset.close()


def _load_tif_lazy(p: Path, cancel=None) -> Cube:
    """A (Geo)TIFF opened for windowed reading (rasterio), like .h5 and .npy with lazy=True."""
    import warnings
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    from .georef import read_tiff_meta
    _read_tif(p, header_only=True)      # the header checked against the file before anything is read
    with _reading(p, "TIFF"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(str(p))
        if len(set(ds.dtypes)) != 1:
            ds.close()
            raise InputError(f"'{p}' mixes band types {sorted(set(ds.dtypes))}: one type is needed")
    view = WindowedRaster(ds)
    geo, wl = read_tiff_meta(p, dataset=ds)
    with _reading(p, "TIFF"):     # the NaN check reads a few rows
        cube = _finish(p, view, None, wl, lazy=True, handle=view, cancel=cancel)
    cube.geo = geo
    return cube


def _load_tif(p: Path) -> Cube:
    from .georef import read_tiff_meta
    data, _, _, wl = _read_tif(p)
    geo, band_wl = read_tiff_meta(p)          # one more opening, for what tifffile does not read
    cube = _finish(p, data, None, band_wl if wl is None else wl, lazy=False)
    cube.geo = geo
    return cube
