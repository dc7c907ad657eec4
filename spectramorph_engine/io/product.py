"""What the satellite-product readers share (`enmap`, `sentinel2`): telling a product from a plain
file (`product_kind`), reading its XML metadata (stdlib xml.etree.ElementTree, namespaces
ignored: the products' schemas change their namespace URIs between versions, their element
names far less), and `ScaledRaster`, a lazy rows x cols x bands view over one or several
rasterio datasets that turns stored counts into physical values (count * gain + offset,
NaN where the count is the product's nodata value).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..core.errors import InputError
from .common import TRUNCATED, Cube, _check_file, _finish, _read_blocks, _reading, _short, three_axes

log = logging.getLogger(__name__)

# Product metadata files are tens of kB (EnMAP) to a few MB (Sentinel-2 with its detector
# footprints listed); anything far larger is not one, and ElementTree would hold it all.
_MAX_XML_BYTES = 64 << 20

S2_L2A_METADATA = "MTD_MSIL2A.xml"
S2_L1C_METADATA = "MTD_MSIL1C.xml"
ENMAP_METADATA_END = "-METADATA.XML"
ENMAP_IMAGE_END = "-SPECTRAL_IMAGE"


# ----------------------------------------------------------------------------- detection
def product_kind(path) -> str:
    """'sentinel2', 'enmap' or '' (not a product: the plain readers take it).

    Sentinel-2 L2A: a folder named *.SAFE or holding MTD_MSIL2A.xml, or that XML itself.
    EnMAP L2A: a folder holding *-METADATA.XML or *-SPECTRAL_IMAGE.TIF, or either file.
    A Sentinel-2 L1C product is named too ('sentinel2' finds its metadata and refuses it)."""
    p = Path(path).expanduser()
    name = p.name.upper()
    try:
        is_dir = p.is_dir()
    except OSError:           # a name too long, a loop: the plain checks say so
        return ""
    if is_dir:
        if name.endswith(".SAFE") or _child(p, S2_L2A_METADATA) or _child(p, S2_L1C_METADATA):
            return "sentinel2"
        if _children_ending(p, ENMAP_METADATA_END) or _enmap_images(p):
            return "enmap"
        return ""
    if name in (S2_L2A_METADATA.upper(), S2_L1C_METADATA.upper()):
        return "sentinel2"
    if name.endswith(ENMAP_METADATA_END) or _is_enmap_image_name(name):
        return "enmap"
    return ""


def _is_enmap_image_name(name: str) -> bool:
    stem, dot, ext = name.upper().rpartition(".")
    return bool(dot) and stem.endswith(ENMAP_IMAGE_END) and ext in ("TIF", "TIFF")


def _child(folder: Path, name: str) -> Optional[Path]:
    """The entry of `folder` called `name`, in any letter case (products copied through
    case-folding file systems keep their names, not always their case)."""
    exact = folder / name
    if exact.exists():
        return exact
    want = name.upper()
    try:
        return next((c for c in folder.iterdir() if c.name.upper() == want), None)
    except OSError:
        return None


def _children_ending(folder: Path, end: str) -> List[Path]:
    try:
        return sorted(c for c in folder.iterdir() if c.name.upper().endswith(end) and c.is_file())
    except OSError:
        return []


def _enmap_images(folder: Path) -> List[Path]:
    try:
        return sorted(c for c in folder.iterdir() if _is_enmap_image_name(c.name) and c.is_file())
    except OSError:
        return []


# ----------------------------------------------------------------------------- XML
def read_xml(p: Path, label: str):
    """The root element of the XML file `p` (InputError naming it when missing, huge or not XML)."""
    import xml.etree.ElementTree as ET
    p = _check_file(p, label)
    size = p.stat().st_size
    if size > _MAX_XML_BYTES:
        raise InputError(f"{label} file '{p}' is {size} bytes: too large for product metadata")
    # expat (2.4 and later, as Python ships it) refuses entity-expansion bombs by itself
    with _reading(p, f"{label} (XML)"):
        return ET.parse(str(p)).getroot()


def local(tag: str) -> str:
    """An element's name without its namespace ('{uri}Product_Info' -> 'Product_Info')."""
    return tag.rsplit("}", 1)[-1]


def find_all(root, name: str) -> list:
    """Every element under `root` (at any depth) whose name is `name`, namespaces ignored."""
    return [e for e in root.iter() if local(e.tag) == name]


def child_text(elem, name: str) -> Optional[str]:
    """The stripped text of the first direct child of `elem` called `name`, or None."""
    for c in elem:
        if local(c.tag) == name:
            return (c.text or "").strip()
    return None


def number(text: Optional[str], p: Path, what: str) -> float:
    """`text` as a finite float; InputError naming the metadata file and the element otherwise."""
    shown = repr(text if text is None or len(text) <= 40 else text[:37] + "...")
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise InputError(f"'{p}': {what} is {shown}, not a number") from None
    if not np.isfinite(v):
        raise InputError(f"'{p}': {what} is {shown}, not a finite number")
    return v


# ----------------------------------------------------------------------------- pixels
def open_raster(p: Path, label: str):
    """A rasterio dataset for a product's image file, InputError naming it when it cannot be
    opened. A TIFF's header is checked against its size first (as the plain TIFF reader does),
    so a damaged one is refused before GDAL allocates what it declares."""
    import warnings
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning
    p = _check_file(p, label)
    if p.suffix.lower() in (".tif", ".tiff"):
        from .tiff import _read_tif
        _read_tif(p, header_only=True)
    with _reading(p, label), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(str(p))
    if len(set(ds.dtypes)) != 1 or np.dtype(ds.dtypes[0]).kind not in "iu":
        ds.close()
        raise InputError(f"{label} '{p}' holds {', '.join(sorted(set(ds.dtypes)))} values: "
                         f"the product stores integer counts")
    return ds


class ScaledRaster:
    """Lazy rows x cols x bands float32 view of stored counts: the bands of `datasets` (rasterio,
    all on one grid) side by side, each turned into count * gain + offset, NaN where the count is
    `nodata`. Indexing reads only the rows and columns asked for (ints and unit-step slices on
    the first two axes, anything on the band axis), like `tiff.WindowedRaster`."""

    def __init__(self, datasets: Sequence, gain, offset, nodata: Optional[float], names: Sequence[str]):
        from .tiff import WindowedRaster
        self.views = [WindowedRaster(ds) for ds in datasets]
        self.names = list(names)
        h, w = self.views[0].shape[:2]
        self.shape = (h, w, sum(v.shape[2] for v in self.views))
        self.dtype = np.dtype(np.float32)
        self.ndim = 3
        self.gain = np.asarray(gain, dtype=np.float32)
        self.offset = np.asarray(offset, dtype=np.float32)
        self.nodata = nodata

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        key = three_axes(key)
        parts = []
        for view, name in zip(self.views, self.names):
            try:
                parts.append(view[key[0], key[1], :])
            except (IndexError, TypeError):        # our indexing, not the file
                raise
            except Exception as exc:               # a damaged tile shows up only when read
                why = _short(exc.__cause__ or exc)   # rasterio's own text says "see previous exception"
                raise InputError(f"'{name}' cannot be read: {TRUNCATED} (GDAL: {why})") from None
        counts = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
        out = counts.astype(np.float32) * self.gain + self.offset
        if self.nodata is not None:
            out[counts == self.nodata] = np.nan
        return out[..., key[2]]

    def __array__(self, dtype=None, copy=None):
        a = self[:, :, :]
        return a if dtype is None else a.astype(dtype, copy=False)

    def close(self) -> None:
        for v in self.views:
            v.close()


def product_cube(p: Path, raster: ScaledRaster, wavelengths, geo, lazy: bool, cancel=None,
                 fwhm=None, camera: Optional[str] = None) -> Cube:
    """The Cube of a product: `raster` kept open (lazy) or read whole in row blocks (eager; the
    datasets closed after), its nodata pixels NaN. They are the product's, not damage, so the
    sentence `load_cube` refuses them with says so (a real-world pair masks them)."""
    try:
        data = raster if lazy else _read_blocks(raster, raster.shape, cancel, p=p)
    except BaseException:
        raster.close()
        raise
    if not lazy:
        raster.close()
    cube = _finish(p, data, None, wavelengths, lazy=lazy, handle=raster if lazy else None, cancel=cancel)
    cube.geo, cube.camera = geo, camera
    cube.fwhm = None if fwhm is None else np.asarray(fwhm, dtype=np.float64)
    if cube.nonfinite:
        n = cube.nonfinite[0]
        extra = " in a sample of rows" if lazy else ""
        cube.nonfinite = (n, f"'{p}' holds {n} values without data (the product's nodata value){extra}: "
                             f"only a real-world pair masks them")
    return cube


def product_geo(ds):
    """GeoInfo of a product's grid (its CRS and transform). The nodata value is left out: the
    counts equal to it come back NaN, which every consumer masks already."""
    from .georef import _tiff_geo
    return _tiff_geo(ds.crs, ds.transform, None)

