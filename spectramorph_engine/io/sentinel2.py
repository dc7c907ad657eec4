"""Sentinel-2 Level-2A products (SAFE folders): the four 10 m bands B2, B3, B4, B8 stacked in that
(wavelength) order as bottom-of-atmosphere reflectance, with their map coordinates and the
camera they came from (`Cube.camera = 'sentinel2_10m'`, which a run uses as its msi_camera when
the config names none).

What is read, from the product format specification's element names (no real product was at
hand to check against): `MTD_MSIL2A.xml` at the top of the folder gives the files (IMAGE_FILE,
without extension), BOA_QUANTIFICATION_VALUE, the BOA_ADD_OFFSET of each band (processing
baseline 04.00 and later; none before, i.e. 0), the NODATA special value and each band's
central wavelength and spectral response; reflectance = (count + offset) / quantification and a
count equal to NODATA (0) is no data. The band files are JPEG2000 (`.jp2`); a `.tif` of the
same name is taken when no `.jp2` is there (GeoTIFF conversions of a product). A zipped SAFE
must be unzipped first; Level-1C (MTD_MSIL1C.xml) is refused by name.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..core.errors import InputError
from .common import Cube
from .product import (S2_L1C_METADATA, S2_L2A_METADATA, ScaledRaster, _child, child_text, find_all, local,
                      number, open_raster, product_cube, product_geo, read_xml)

log = logging.getLogger(__name__)

LABEL = "Sentinel-2 L2A"
CAMERA = "sentinel2_10m"           # sensors.catalogue's name for these four bands
BANDS_10M = ("B2", "B3", "B4", "B8")
# The specification numbers the bands 0..12 in this order (bandId / band_id attributes).
_BAND_ORDER = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
# Sentinel-2A's published centres (nm), used when the metadata gives none.
_CENTRES = {"B2": 492.4, "B3": 559.8, "B4": 664.6, "B8": 832.8}
_IMAGE_EXTENSIONS = (".jp2", ".JP2", ".tif", ".TIF", ".tiff")


def load_sentinel2(path, lazy: bool = False, cancel=None) -> Cube:
    """The 10 m bands of a Sentinel-2 L2A SAFE product (the folder or its MTD_MSIL2A.xml) as
    reflectance, H x W x 4 in the order B2, B3, B4, B8; nodata pixels NaN."""
    p = Path(path).expanduser()
    folder = p if p.is_dir() else p.parent
    mtd = _metadata_file(p, folder)
    root = read_xml(mtd, f"{LABEL} metadata")
    if "Level-2A" not in local(root.tag):
        raise InputError(f"'{mtd}' is not Sentinel-2 Level-2A product metadata (its root element is "
                         f"{local(root.tag)!r})")
    info = _band_info(root, mtd)
    quant = _quantification(root, mtd)
    offsets = _offsets(root, mtd, info)
    nodata = _special_value(root, mtd, "NODATA", 0.0)
    files = _band_files(root, folder)
    datasets: List = []
    try:
        for band, f in zip(BANDS_10M, files):
            datasets.append(open_raster(f, f"{LABEL} band {band}"))
        _same_grid(datasets, files)
        geo = product_geo(datasets[0])
    except BaseException:
        for ds in datasets:
            ds.close()
        raise
    gain = np.full(len(BANDS_10M), 1.0 / quant)
    offset = np.array([offsets[b] for b in BANDS_10M]) / quant
    raster = ScaledRaster(datasets, gain, offset, nodata, [str(f) for f in files])
    wl = np.array([info.get(b, {}).get("centre") or _CENTRES[b] for b in BANDS_10M], dtype=np.float64)
    widths = [info.get(b, {}).get("fwhm") for b in BANDS_10M]
    fwhm = None if any(w is None for w in widths) else np.asarray(widths, dtype=np.float64)
    log.info("%s product '%s': bands %s, quantification %g, offsets %s, nodata at count %g", LABEL, folder,
             ", ".join(BANDS_10M), quant, [offsets[b] for b in BANDS_10M], nodata)
    return product_cube(p, raster, wl, geo, lazy, cancel, fwhm=fwhm, camera=CAMERA)


def _metadata_file(p: Path, folder: Path) -> Path:
    if p.name.upper() == S2_L1C_METADATA.upper() or (p.is_dir() and _child(folder, S2_L1C_METADATA)):
        raise InputError(f"'{p}' is a Sentinel-2 Level-1C product (top-of-atmosphere): only Level-2A "
                         f"(surface reflectance, MTD_MSIL2A.xml) is read; process it to L2A first (Sen2Cor)")
    if not p.is_dir():
        return p
    found = _child(folder, S2_L2A_METADATA)
    if found is None:
        raise InputError(f"{LABEL} product metadata '{folder / S2_L2A_METADATA}' is missing")
    return found


def _band_info(root, mtd: Path) -> Dict[str, dict]:
    """{physical band: {'id': bandId, 'centre': nm, 'fwhm': nm}} from Spectral_Information."""
    out: Dict[str, dict] = {}
    for e in find_all(root, "Spectral_Information"):
        name = (e.get("physicalBand") or "").strip().upper()
        if not name:
            continue
        entry: dict = {"id": e.get("bandId")}
        for w in e:
            if local(w.tag) == "Wavelength":
                centre = child_text(w, "CENTRAL")
                entry["centre"] = None if centre is None else number(centre, mtd, f"band {name}'s CENTRAL wavelength")
            elif local(w.tag) == "Spectral_Response":
                entry["fwhm"] = _response_width(w)
        out[name] = entry
    return out


def _response_width(elem) -> Optional[float]:
    """Width (nm) of a tabulated spectral response where it is at least half its peak: its FWHM
    to within a sampling step. None when the table cannot be read."""
    try:
        step = float(child_text(elem, "STEP"))
        values = np.array([float(v) for v in (child_text(elem, "VALUES") or "").split()])
    except (TypeError, ValueError):
        return None
    if values.size < 2 or not np.all(np.isfinite(values)) or values.max() <= 0 or step <= 0:
        return None
    return float(np.count_nonzero(values >= 0.5 * values.max()) * step)


def _band_id(name: str, info: Dict[str, dict]) -> str:
    given = info.get(name, {}).get("id")
    return str(given).strip() if given is not None else str(_BAND_ORDER.index(name))


def _quantification(root, mtd: Path) -> float:
    # L2A_BOA_QUANTIFICATION_VALUE in products of the first Sen2Cor versions
    found = find_all(root, "BOA_QUANTIFICATION_VALUE") or find_all(root, "L2A_BOA_QUANTIFICATION_VALUE")
    if not found:
        raise InputError(f"'{mtd}' has no BOA_QUANTIFICATION_VALUE (the scale of counts to reflectance)")
    q = number(found[0].text and found[0].text.strip(), mtd, "BOA_QUANTIFICATION_VALUE")
    if q <= 0:
        raise InputError(f"'{mtd}': BOA_QUANTIFICATION_VALUE is {q:g}, not > 0")
    return q


def _offsets(root, mtd: Path, info: Dict[str, dict]) -> Dict[str, float]:
    """BOA_ADD_OFFSET of each 10 m band (0 for products made before processing baseline 04.00,
    which carry no offsets)."""
    given = {str(e.get("band_id")).strip(): number((e.text or "").strip(), mtd, f"BOA_ADD_OFFSET band_id {e.get('band_id')}")
             for e in find_all(root, "BOA_ADD_OFFSET")}
    if not given:
        log.info("'%s' lists no BOA_ADD_OFFSET (processing baseline before 04.00): offset 0", mtd)
    out = {}
    for b in BANDS_10M:
        bid = _band_id(b, info)
        if given and bid not in given:
            raise InputError(f"'{mtd}' lists BOA_ADD_OFFSET values but none for band {b} (band_id {bid})")
        out[b] = given.get(bid, 0.0)
    return out


def _special_value(root, mtd: Path, name: str, default: float) -> float:
    for e in find_all(root, "Special_Values"):
        if (child_text(e, "SPECIAL_VALUE_TEXT") or "").upper() == name:
            return number(child_text(e, "SPECIAL_VALUE_INDEX"), mtd, f"the {name} special value")
    return default


def _band_files(root, folder: Path) -> List[Path]:
    """The image file of each 10 m band: as IMAGE_FILE lists it (no extension: .jp2, else .tif),
    else found under GRANULE/*/IMG_DATA/R10m/. InputError naming the first one missing."""
    # IMAGE_FILE; IMAGE_FILE_2A in products of the first Sen2Cor versions
    listed = [(e.text or "").strip() for tag in ("IMAGE_FILE", "IMAGE_FILE_2A") for e in find_all(root, tag)]
    files = []
    for band in BANDS_10M:
        end = f"_B{band[1:].zfill(2)}_10m"          # B2 -> _B02_10m
        names = [n for n in listed if n.endswith(end)]
        if len(names) > 1:
            raise InputError(f"'{folder}' lists {len(names)} files for band {band} ({names[0]}, ...): a product "
                             f"of several granules is not read; split it")
        if names:
            files.append(_with_extension(folder / names[0], band))
            continue
        pattern = f"GRANULE/*/IMG_DATA/R10m/*{end}"
        found = sorted(f for f in folder.glob(pattern + ".*") if f.suffix in _IMAGE_EXTENSIONS)
        if len(found) > 1 and len({f.parent for f in found}) > 1:
            raise InputError(f"'{folder}' holds band {band} in {len(found)} granules: a product of several "
                             f"granules is not read; split it")
        if not found:
            raise InputError(f"{LABEL} band {band} is missing: no file {pattern}.jp2 in '{folder}'")
        files.append(found[0])
    return files


def _with_extension(base: Path, band: str) -> Path:
    for ext in _IMAGE_EXTENSIONS:
        candidate = base.with_name(base.name + ext)
        if candidate.is_file():
            return candidate
    raise InputError(f"{LABEL} band {band} file '{base}.jp2' is missing")


def _same_grid(datasets, files) -> None:
    first = datasets[0]
    for ds, f in zip(datasets[1:], files[1:]):
        if (ds.width, ds.height) != (first.width, first.height) or ds.transform != first.transform \
                or ds.crs != first.crs:
            raise InputError(f"{LABEL} band file '{f}' ({_grid(ds)}) is not on the grid of "
                             f"'{files[0].name}' ({_grid(first)}): the 10 m bands must share one")
        if ds.count != 1:
            raise InputError(f"{LABEL} band file '{f}' holds {ds.count} bands, not 1")
    if first.count != 1:
        raise InputError(f"{LABEL} band file '{files[0]}' holds {first.count} bands, not 1")


def _grid(ds) -> str:
    t = ds.transform
    return f"{ds.width} x {ds.height} pixels of {t.a:g} from ({t.c:.10g}, {t.f:.10g}), {ds.crs or 'no CRS'}"
