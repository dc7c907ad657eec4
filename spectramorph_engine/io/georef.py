"""Georeferencing: where on the ground an image's pixels are, read from and written to files.

A `GeoInfo` holds a CRS (as WKT, or None when the file names none), the affine geotransform of
the pixel grid (x = c + a * col + b * row, y = f + d * col + e * row, as GDAL and rasterio
write it) and the file's nodata value. Read from GeoTIFF (rasterio) and from ENVI headers
(`map info`, `coordinate system string`, `data ignore value`); written to GeoTIFF results and
ENVI headers. `check_same_ground` says, in one sentence, how an HR-MSI and an LR-HSI fail to
cover the same ground. rasterio is imported only here.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from ..core.errors import InputError

log = logging.getLogger(__name__)

# How far (in LR pixels) the two grids' origins may differ: a small fraction of an LR pixel,
# the half-pixel conventions of some tools and rounding in text headers.
ORIGIN_TOLERANCE_LR_PX = 0.1
# How far (relative) the LR pixel size may differ from ratio x the HR pixel size.
PIXEL_SIZE_TOLERANCE = 1e-3

__all__ = ["GeoInfo", "read_tiff_meta", "read_tiff_geo", "read_tiff_band_wavelengths", "envi_geo", "envi_map_info", "check_same_ground", "write_geotiff",
           "describe_extent"]


@dataclass(frozen=True)
class GeoInfo:
    crs: Optional[str]                                   # WKT, or None (the file names no CRS)
    transform: Optional[Tuple[float, ...]]               # (a, b, c, d, e, f), or None
    nodata: Optional[float] = None
    crs_name: Optional[str] = None                       # short, for messages ("EPSG:32633")

    @property
    def georeferenced(self) -> bool:
        return self.transform is not None and not _is_identity(self.transform)

    def pixel_size(self) -> Tuple[float, float]:
        a, b, _c, d, e, _f = self.transform
        return math.hypot(a, d), math.hypot(b, e)

    def scaled(self, factor: float) -> "GeoInfo":
        """The same ground with pixels `factor` times larger (origin kept)."""
        a, b, c, d, e, f = self.transform
        return GeoInfo(self.crs, (a * factor, b * factor, c, d * factor, e * factor, f), self.nodata,
                       self.crs_name)


def _is_identity(t) -> bool:
    return tuple(float(v) for v in t) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _crs_name(crs) -> Optional[str]:
    if crs is None:
        return None
    from rasterio.errors import CRSError
    try:
        epsg = crs.to_epsg()
    except CRSError:        # a CRS PROJ cannot match to a code is still a CRS
        epsg = None
    return f"EPSG:{epsg}" if epsg else (crs.to_string()[:60] or None)


# ---------------------------------------------------------------------------------- reading
def read_tiff_meta(path, dataset=None):
    """(GeoInfo or None, band wavelengths in nm or None) of a TIFF, read in one opening (or from
    the rasterio `dataset` already open): the GeoInfo when it carries a geotransform, a CRS or a
    nodata value; the wavelengths from its band descriptions ('492.4 nm', 'B2 (0.49 um)') or its
    'wavelength' metadata item, as other tools write them.

    A nodata tag that is not a number is an InputError naming the file and the tag (GDAL would
    read 'abc' as 0 and every 0 pixel would be taken for nodata). A TIFF GDAL cannot open (its
    pixels were read by tifffile) has no metadata but its nodata tag; if it carries GeoTIFF tags,
    a warning says they are not used. Anything else that fails is an InputError."""
    import warnings
    import rasterio
    from rasterio.errors import RasterioIOError
    from .common import _reading
    p = Path(path)
    tags = _tiff_tags(p)
    nodata = _tiff_nodata(p, tags.get(NODATA_TAG))        # checked before GDAL reads it its way
    with warnings.catch_warnings(), _reading(p, "TIFF metadata"):
        warnings.simplefilter("ignore")          # NotGeoreferencedWarning and kin
        try:
            if dataset is None:
                with rasterio.open(str(p)) as ds:
                    crs, transform, nodata, descriptions, band_tags = _tiff_fields(ds)
            else:
                crs, transform, nodata, descriptions, band_tags = _tiff_fields(dataset)
        except RasterioIOError as exc:     # GDAL cannot open what tifffile read: no GDAL metadata
            geo_tags = sorted(GEOTIFF_TAGS[c] for c in tags if c in GEOTIFF_TAGS)
            if geo_tags:
                log.warning("'%s': its georeferencing (%s) cannot be read (GDAL: %s); the result is not "
                            "georeferenced and the two images' ground is not checked", p,
                            ", ".join(geo_tags), str(exc).splitlines()[0][:160])
            return (None if nodata is None else GeoInfo(None, None, nodata)), None
    return _tiff_geo(crs, transform, nodata), _tiff_wavelengths(descriptions, band_tags)


# TIFF tags (first IFD) read here: GDAL_NODATA holds the nodata value as text; the GeoTIFF tags
# hold the georeferencing.
NODATA_TAG = 42113
GEOTIFF_TAGS = {33550: "ModelPixelScale", 33922: "ModelTiepoint", 34264: "ModelTransformation",
                34735: "GeoKeyDirectory"}


def _tiff_tags(p: Path) -> dict:
    """{code: value} of the GDAL_NODATA and GeoTIFF tags in the first IFD of the TIFF `p`."""
    import tifffile
    from .common import _reading
    with _reading(p, "TIFF"), tifffile.TiffFile(str(p)) as tf:
        page_tags = tf.pages[0].tags
        return {code: page_tags[code].value for code in (NODATA_TAG, *GEOTIFF_TAGS) if code in page_tags}


def _tiff_nodata(p: Path, value) -> Optional[float]:
    """The GDAL_NODATA tag's value as a number (None: no tag, or an empty one, as GDAL reads it);
    InputError naming the file and the tag when it is not a number."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, (int, float, np.number)):
        return float(value)
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    text = str(value).strip().strip("\x00").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"'{p}': its nodata tag (GDAL_NODATA, TIFF tag {NODATA_TAG}) holds {text[:40]!r}, "
                         f"not a number; set it (gdal_edit.py -a_nodata VALUE) or remove it "
                         f"(gdal_edit.py -unsetnodata)") from None


def read_tiff_geo(path) -> Optional[GeoInfo]:
    """GeoInfo of a TIFF when it carries a geotransform, a CRS or a nodata value, else None."""
    return read_tiff_meta(path)[0]


def read_tiff_band_wavelengths(path) -> Optional[np.ndarray]:
    """Band centres in nm from a GeoTIFF's band descriptions or 'wavelength' item, or None."""
    return read_tiff_meta(path)[1]


def _tiff_fields(ds):
    return ds.crs, ds.transform, ds.nodata, list(ds.descriptions), ds.tags()


def _tiff_geo(crs, transform, nodata) -> Optional[GeoInfo]:
    t = tuple(float(v) for v in (transform.a, transform.b, transform.c, transform.d, transform.e, transform.f))
    if crs is None and _is_identity(t) and nodata is None:
        return None
    return GeoInfo(crs.to_wkt() if crs is not None else None, None if _is_identity(t) else t,
                   None if nodata is None else float(nodata), _crs_name(crs))


def _tiff_wavelengths(descriptions, tags) -> Optional[np.ndarray]:
    if tags.get("wavelength"):
        values = [float(v) for v in re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", tags["wavelength"])]
        if len(values) == len(descriptions):
            return _nm(np.asarray(values), tags.get("wavelength_units", ""))
    found = []
    for d in descriptions:
        m = re.search(r"([-+]?\d*\.?\d+)\s*(nm|um|µm|micrometers?|nanometers?)\b", d or "", re.IGNORECASE)
        if not m:
            return None
        found.append((float(m.group(1)), m.group(2)))
    if not found:
        return None
    return _nm(np.asarray([v for v, _ in found]), found[0][1])


def _nm(values: np.ndarray, unit: str) -> np.ndarray:
    unit = (unit or "").lower()
    if unit.startswith(("um", "µm", "micro")) or (not unit and values.max() < 20):
        return values * 1000.0
    return values


def envi_geo(metadata: dict) -> Optional[GeoInfo]:
    """GeoInfo from an ENVI header's `map info`, `coordinate system string` and `data ignore
    value` (spectral's metadata dict); None when it has none of them."""
    info = metadata.get("map info")
    wkt = metadata.get("coordinate system string")
    if isinstance(wkt, list):
        wkt = ",".join(wkt)
    nodata = metadata.get("data ignore value")
    transform, crs, name = None, None, None
    if info:
        parts = [p.strip() for p in (info if isinstance(info, list) else str(info).strip("{}").split(","))]
        try:
            ref_x, ref_y, east, north, size_x, size_y = (float(v) for v in parts[1:7])
        except (ValueError, IndexError):
            raise InputError(f"ENVI 'map info' cannot be read: {info}") from None
        rotation = 0.0
        for p in parts:
            if p.lower().startswith("rotation="):
                rotation = float(p.split("=", 1)[1])
        cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
        a, b, d, e = size_x * cos, size_y * sin, size_x * sin, -size_y * cos
        # ENVI's reference pixel is 1-based (1, 1 = the upper-left corner of the first pixel)
        c = east - (ref_x - 1) * a - (ref_y - 1) * b
        f = north - (ref_x - 1) * d - (ref_y - 1) * e
        transform = (a, b, c, d, e, f)
        if parts[0].upper() == "UTM" and len(parts) >= 9 and parts[7].isdigit():
            zone, south = int(parts[7]), parts[8].lower().startswith("s")
            name = f"EPSG:{(32700 if south else 32600) + zone}"
    if wkt:
        crs, name = wkt, name or _wkt_name(wkt)
    elif name:
        crs = _epsg_wkt(name)
    if transform is None and crs is None and nodata is None:
        return None
    return GeoInfo(crs, transform, None if nodata is None else float(nodata), name)


def _wkt_name(wkt: str) -> Optional[str]:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    try:
        return _crs_name(CRS.from_wkt(wkt))
    except CRSError:         # a WKT PROJ cannot parse: its name as written
        m = re.match(r'\s*\w+\["([^"]+)"', wkt)
        return m.group(1) if m else None


def _epsg_wkt(name: str) -> Optional[str]:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    try:
        return CRS.from_string(name).to_wkt()
    except CRSError as exc:  # PROJ without its database: the name is kept, the WKT is not written
        log.warning("the coordinate system %s cannot be described (%s); results carry only its name",
                    name, str(exc).splitlines()[0][:160])
        return None


def envi_map_info(geo: GeoInfo) -> dict:
    """ENVI header items for `geo` (north-up grids; a rotated grid carries its rotation)."""
    if geo is None or not geo.georeferenced:
        return {}
    a, b, c, d, e, f = geo.transform
    size_x, size_y = math.hypot(a, d), math.hypot(b, e)
    rotation = math.degrees(math.atan2(d, a))
    items = ["Arbitrary", "1", "1", f"{c:.10g}", f"{f:.10g}", f"{size_x:.10g}", f"{size_y:.10g}"]
    m = re.fullmatch(r"EPSG:(326|327)(\d\d)", geo.crs_name or "")
    if m:
        items = ["UTM"] + items[1:] + [str(int(m.group(2))), "North" if m.group(1) == "326" else "South", "WGS-84"]
    items.append("units=Meters")
    if abs(rotation) > 1e-9:
        items.append(f"rotation={rotation:.10g}")
    out = {"map info": "{" + ", ".join(items) + "}"}
    if geo.crs:
        out["coordinate system string"] = "{" + geo.crs + "}"
    return out


# ---------------------------------------------------------------------------------- checking
def describe_extent(geo: GeoInfo, shape) -> str:
    a, b, c, d, e, f = geo.transform
    h, w = int(shape[0]), int(shape[1])
    xs = [c, c + a * w, c + b * h, c + a * w + b * h]
    ys = [f, f + d * w, f + e * h, f + d * w + e * h]
    sx, sy = geo.pixel_size()
    crs = f", {geo.crs_name}" if geo.crs_name else ""
    return (f"x {min(xs):.10g}..{max(xs):.10g}, y {min(ys):.10g}..{max(ys):.10g} "
            f"({w} x {h} pixels of {sx:.6g} x {sy:.6g}{crs})")


def check_same_ground(hr_geo: Optional[GeoInfo], hr_shape, hr_what: str,
                      lr_geo: Optional[GeoInfo], lr_shape, lr_what: str) -> Optional[int]:
    """When both images are georeferenced: InputError (one sentence naming both extents) unless
    they cover the same ground on nested grids (the same CRS, LR pixels r x the HR pixels, the
    same origin to within ORIGIN_TOLERANCE_LR_PX of an LR pixel); returns r. None when either
    image carries no geotransform (nothing to check)."""
    if hr_geo is None or lr_geo is None or not hr_geo.georeferenced or not lr_geo.georeferenced:
        return None
    hr_ext, lr_ext = describe_extent(hr_geo, hr_shape), describe_extent(lr_geo, lr_shape)
    if hr_geo.crs and lr_geo.crs and not _same_crs(hr_geo.crs, lr_geo.crs):
        raise InputError(f"{hr_what} and {lr_what} are in different coordinate systems "
                         f"({hr_geo.crs_name or 'one'} and {lr_geo.crs_name or 'another'}): reproject one "
                         f"onto the other's grid first")
    hx, hy = hr_geo.pixel_size()
    lx, ly = lr_geo.pixel_size()
    ratio = lx / hx
    r = int(round(ratio))
    if r < 2 or abs(ratio - r) > PIXEL_SIZE_TOLERANCE * ratio or abs(ly / hy - r) > PIXEL_SIZE_TOLERANCE * ratio:
        raise InputError(f"{lr_what} has {lx:.6g} x {ly:.6g} pixels and {hr_what} {hx:.6g} x {hy:.6g}: the LR "
                         f"pixel must be a whole number (>= 2) of HR pixels ({lr_what}: {lr_ext}; "
                         f"{hr_what}: {hr_ext})")
    tol = ORIGIN_TOLERANCE_LR_PX * max(lx, ly)
    a, b, c, d, e, f = hr_geo.transform
    la, lb, lc, ld, le, lf = lr_geo.transform
    same_origin = math.hypot(lc - c, lf - f) <= tol
    same_size = (abs(int(lr_shape[0]) * r - int(hr_shape[0])) == 0 and abs(int(lr_shape[1]) * r - int(hr_shape[1])) == 0)
    if not (same_origin and same_size):
        raise InputError(f"{hr_what} and {lr_what} do not cover the same ground: {hr_what} covers {hr_ext}, "
                         f"{lr_what} covers {lr_ext}; crop both to the same extent on nested grids "
                         f"(`spectramorph align HR LR --out DIR` does it)")
    return r


def _same_crs(wkt_a: str, wkt_b: str) -> bool:
    if wkt_a == wkt_b:
        return True
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    try:
        return CRS.from_wkt(wkt_a) == CRS.from_wkt(wkt_b)
    except CRSError:         # cannot parse: different texts (the caller says the systems differ)
        return False


# ---------------------------------------------------------------------------------- writing
def geotiff_profile(shape, geo: Optional[GeoInfo], dtype="float32") -> dict:
    """The rasterio profile of a tiled, compressed float GeoTIFF result (BigTIFF when needed)."""
    H, W, C = (int(v) for v in shape)
    profile = {"driver": "GTiff", "height": H, "width": W, "count": C, "dtype": str(np.dtype(dtype)),
               "tiled": True, "blockxsize": 256 if W >= 256 else 16 * max(1, W // 16),
               "blockysize": 256 if H >= 256 else 16 * max(1, H // 16), "compress": "deflate",
               "BIGTIFF": "IF_SAFER", "nodata": float("nan"), "interleave": "pixel"}
    if W < 16 or H < 16:
        profile.update(tiled=False)
        profile.pop("blockxsize")
        profile.pop("blockysize")
    if geo is not None:
        from rasterio.crs import CRS
        from rasterio.transform import Affine
        if geo.crs:
            profile["crs"] = CRS.from_wkt(geo.crs)
        if geo.transform is not None:
            a, b, c, d, e, f = geo.transform
            profile["transform"] = Affine(a, b, c, d, e, f)
    return profile


def band_descriptions(num_bands: int, wavelengths: Optional[Sequence[float]]) -> list:
    if wavelengths is None:
        return [f"band {i + 1}" for i in range(num_bands)]
    return [f"band {i + 1}: {float(v):.6g} nm" for i, v in enumerate(wavelengths)]


def write_geotiff(path, cube, geo: Optional[GeoInfo], wavelengths=None) -> None:
    """`cube` (H x W x C) to a GeoTIFF at `path` (not atomic by itself: callers write to a
    temporary name), with `geo`'s CRS and transform, NaN nodata and wavelengths in the band
    descriptions and the 'wavelength' metadata item."""
    import rasterio
    import warnings
    from rasterio.errors import NotGeoreferencedWarning
    arr = np.asarray(cube)
    profile = geotiff_profile(arr.shape, geo, arr.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(str(Path(path)), "w", **profile) as ds:
            ds.write(np.moveaxis(arr, 2, 0))
            _describe(ds, arr.shape[2], wavelengths)


def _describe(ds, num_bands: int, wavelengths) -> None:
    for i, text in enumerate(band_descriptions(num_bands, wavelengths)):
        ds.set_band_description(i + 1, text)
    if wavelengths is not None:
        ds.update_tags(wavelength=",".join(f"{float(v):.6g}" for v in wavelengths), wavelength_units="nm")
