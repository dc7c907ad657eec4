"""EnMAP Level-2A products (GeoTIFF delivery): `<name>-SPECTRAL_IMAGE.TIF` (the VNIR + SWIR bands
as integer counts, one GeoTIFF band per spectral band, with its map coordinates) beside
`<name>-METADATA.XML`, whose band characterisation gives each band's centre wavelength, FWHM,
gain and offset (value = count * gain + offset: surface reflectance for L2A). The other files
of a product (quicklooks, quality masks, history) are not read.

Built from the published EnMAP product specification's element names (bandID number=...,
wavelengthCenterOfBand, FWHMOfBand, GainOfBand, OffsetOfBand); no real product was at hand to
check it against. The user may name the product folder, its METADATA.XML or its
SPECTRAL_IMAGE.TIF.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Tuple

import numpy as np

from ..core.errors import InputError
from .common import Cube
from .product import (ENMAP_IMAGE_END, ENMAP_METADATA_END, ScaledRaster, _children_ending, _enmap_images,
                      child_text, find_all, number, open_raster, product_cube, product_geo, read_xml)

log = logging.getLogger(__name__)

LABEL = "EnMAP L2A"
# The product specification's fill value for pixels without data, used when the GeoTIFF
# carries no nodata tag of its own.
ENMAP_NODATA = -32768.0


def load_enmap(path, lazy: bool = False, cancel=None) -> Cube:
    """The spectral image of an EnMAP L2A product as values (count * gain + offset), with its
    wavelengths, FWHM and map coordinates; nodata pixels NaN."""
    p = Path(path).expanduser()
    xml, image = _product_files(p)
    wl, fwhm, gain, offset = _band_table(xml)
    ds = open_raster(image, f"{LABEL} spectral image")
    try:
        if ds.count != wl.size:
            raise InputError(f"{LABEL} spectral image '{image}' has {ds.count} bands but its metadata "
                             f"'{xml.name}' describes {wl.size}")
        nodata = _nodata(image)
        geo = product_geo(ds)
    except BaseException:
        ds.close()
        raise
    raster = ScaledRaster([ds], gain, offset, nodata, [str(image)])
    log.info("%s product '%s': %d bands %.1f..%.1f nm, nodata at count %g", LABEL, p, wl.size, wl.min(), wl.max(),
             nodata)
    return product_cube(p, raster, wl, geo, lazy, cancel, fwhm=fwhm)


def _nodata(image: Path) -> float:
    """The image's GDAL nodata tag, checked as the plain GeoTIFF reader checks it (a tag that
    is not a number is named, not read as 0); the specification's fill value when it has none."""
    from .georef import NODATA_TAG, _tiff_nodata, _tiff_tags
    value = _tiff_nodata(image, _tiff_tags(image).get(NODATA_TAG))
    return ENMAP_NODATA if value is None else value


def _prefix(name: str, end: str) -> str:
    """The product name shared by its files ('<prefix>-METADATA.XML' -> '<prefix>')."""
    return name[:len(name) - len(end)] if name.upper().endswith(end) else name


def _product_files(p: Path) -> Tuple[Path, Path]:
    """(METADATA.XML, SPECTRAL_IMAGE.TIF) of the product that `p` (folder, XML or image) names;
    InputError naming the file that is missing."""
    if p.is_dir():
        xmls = _children_ending(p, ENMAP_METADATA_END)
        if len(xmls) > 1:
            raise InputError(f"folder '{p}' holds {len(xmls)} EnMAP metadata files "
                             f"({', '.join(x.name for x in xmls[:3])}...): name the METADATA.XML of the one to read")
        if xmls:
            return xmls[0], _image_of(xmls[0])
        image = _enmap_images(p)[0]
    elif p.name.upper().endswith(ENMAP_METADATA_END):
        return p, _image_of(p)
    else:
        image = p
    stem = image.name.rpartition(".")[0]
    xml = image.with_name(_prefix(stem, ENMAP_IMAGE_END) + ENMAP_METADATA_END)
    found = _children_ending(image.parent, xml.name.upper())
    if not found:
        raise InputError(f"{LABEL} metadata '{xml}' is missing: it gives the wavelengths and the scale of "
                         f"'{image.name}' (to read the image as a plain GeoTIFF, rename it)")
    return found[0], image


def _image_of(xml: Path) -> Path:
    base = _prefix(xml.name, ENMAP_METADATA_END) + ENMAP_IMAGE_END
    for ext in (".TIF", ".tif", ".TIFF", ".tiff"):
        if (xml.parent / (base + ext)).is_file():
            return xml.parent / (base + ext)
    raise InputError(f"{LABEL} spectral image '{xml.parent / (base + '.TIF')}' is missing (only the GeoTIFF "
                     f"delivery of the product is read)")


def _band_table(xml: Path):
    """(wavelengths nm, FWHM nm or None, gain, offset), one per band in band-number order."""
    root = read_xml(xml, f"{LABEL} metadata")
    # the band table proper when the file has one (other sections may number bands too)
    table = (find_all(root, "bandCharacterisation") or [root])[0]
    bands = [e for e in find_all(table, "bandID") if child_text(e, "wavelengthCenterOfBand") is not None]
    if not bands:
        raise InputError(f"'{xml}' has no band characterisation (bandID entries with wavelengthCenterOfBand): "
                         f"not an EnMAP METADATA.XML")
    numbered = []
    for e in bands:
        n = number(e.get("number"), xml, "a bandID's number")
        numbered.append((int(n), e))
    numbered.sort(key=lambda t: t[0])
    numbers = [n for n, _ in numbered]
    if numbers != list(range(1, len(numbers) + 1)):
        raise InputError(f"'{xml}': the bandID numbers are not 1..{len(numbers)} once each "
                         f"(found {numbers[:5]}...{numbers[-2:]})")
    wl, fwhm, gain, offset = [], [], [], []
    for n, e in numbered:
        def value(name, required=True):
            text = child_text(e, name)
            if text is None:
                if required:
                    raise InputError(f"'{xml}': band {n} has no {name}")
                return None
            return number(text, xml, f"band {n}'s {name}")
        wl.append(value("wavelengthCenterOfBand"))
        fwhm.append(value("FWHMOfBand", required=False))
        gain.append(value("GainOfBand"))
        offset.append(value("OffsetOfBand", required=False) or 0.0)
    wl = np.asarray(wl, dtype=np.float64)
    fwhm = None if any(v is None for v in fwhm) else np.asarray(fwhm, dtype=np.float64)
    if wl.max() < 10:           # written in micrometres: both columns to nm
        wl = wl * 1000.0
        fwhm = None if fwhm is None else fwhm * 1000.0
    if np.any(np.asarray(gain) == 0):
        raise InputError(f"'{xml}': band {1 + int(np.argmin(np.abs(gain)))}'s GainOfBand is 0")
    return wl, fwhm, np.asarray(gain), np.asarray(offset)
