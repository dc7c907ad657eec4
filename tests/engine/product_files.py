"""Writers of small satellite products laid out as their published format specifications
describe them (EnMAP L2A GeoTIFF delivery, Sentinel-2 L2A SAFE), for the product readers' tests.
No real product was at hand: these follow the specifications' file names and XML element names."""
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CRS = "EPSG:32633"                       # UTM zone 33 N
ORIGIN = (399960.0, 5000040.0)
ENMAP_NAME = "ENMAP01-____L2A-DT0000012345_20240601T101010Z_002_V010402_20240603T101010Z"
S2_NAME = "S2B_MSIL2A_20240601T100559_N0510_R022_T33TUN_20240601T130102.SAFE"
S2_GRANULE = "L2A_T33TUN_A037811_20240601T101000"
S2_STEM = "T33TUN_20240601T100559"
S2_BANDS = (("B02", 1, 492.1, 65.0), ("B03", 2, 559.0, 35.0), ("B04", 3, 665.0, 30.0), ("B08", 7, 833.0, 105.0))


def _tif(path, bands_first, pixel, dtype, nodata=None, driver="GTiff", origin=ORIGIN, **opts):
    with rasterio.open(path, "w", driver=driver, height=bands_first.shape[1], width=bands_first.shape[2],
                       count=bands_first.shape[0], dtype=dtype, crs=CRS, nodata=nodata,
                       transform=from_origin(origin[0], origin[1], pixel, pixel), **opts) as ds:
        ds.write(bands_first.astype(dtype))


def write_enmap(parent: Path, counts: np.ndarray, wavelengths, fwhm, gain=1e-4, offset=0.0,
                nodata=-32768, pixel=30.0, origin=ORIGIN) -> Path:
    """An EnMAP L2A product folder: `counts` (H x W x C int16) as <name>-SPECTRAL_IMAGE.TIF and the
    band characterisation in <name>-METADATA.XML, plus a quality mask the reader must ignore."""
    folder = Path(parent) / ENMAP_NAME
    folder.mkdir(parents=True)
    _tif(folder / f"{ENMAP_NAME}-SPECTRAL_IMAGE.TIF", np.moveaxis(counts, 2, 0), pixel, "int16", nodata=nodata,
         origin=origin)
    _tif(folder / f"{ENMAP_NAME}-QL_PIXELMASK.TIF", np.zeros((1,) + counts.shape[:2]), pixel, "uint8", origin=origin)
    bands = "\n".join(
        f'      <bandID number="{i + 1}">\n'
        f"        <wavelengthCenterOfBand>{w:.3f}</wavelengthCenterOfBand>\n"
        f"        <FWHMOfBand>{f:.3f}</FWHMOfBand>\n"
        f"        <GainOfBand>{gain:g}</GainOfBand>\n"
        f"        <OffsetOfBand>{offset:g}</OffsetOfBand>\n"
        f"      </bandID>" for i, (w, f) in enumerate(zip(wavelengths, fwhm)))
    (folder / f"{ENMAP_NAME}-METADATA.XML").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<level_X>\n'
        "  <metadata><name>" + ENMAP_NAME + "</name></metadata>\n"
        "  <base><level>L2A</level></base>\n"
        "  <specific>\n    <bandCharacterisation>\n" + bands + "\n    </bandCharacterisation>\n"
        "  </specific>\n</level_X>\n")
    return folder


def _response(centre, width, lo, hi):
    x = np.arange(lo, hi + 1)
    return " ".join(f"{v:.4f}" for v in np.exp(-0.5 * ((x - centre) / (width / 2.3548)) ** 2))


def write_sentinel2(parent: Path, counts: np.ndarray, offset=-1000, quantification=10000, pixel=10.0,
                    extension=".jp2") -> Path:
    """A Sentinel-2 L2A SAFE folder: `counts` (H x W x 4 uint16, bands B2, B3, B4, B8) as the
    R10m band files (JPEG2000, lossless; or GeoTIFF with extension='.tif') and MTD_MSIL2A.xml."""
    safe = Path(parent) / S2_NAME
    r10 = safe / "GRANULE" / S2_GRANULE / "IMG_DATA" / "R10m"
    r10.mkdir(parents=True)
    for (band, _id, _c, _w), plane in zip(S2_BANDS, np.moveaxis(counts, 2, 0)):
        path = r10 / f"{S2_STEM}_{band}_10m{extension}"
        if extension == ".jp2":
            _tif(path, plane[None], pixel, "uint16", driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
        else:
            _tif(path, plane[None], pixel, "uint16")
    files = "\n".join(f"<IMAGE_FILE>GRANULE/{S2_GRANULE}/IMG_DATA/R{res}m/{S2_STEM}_{b}_{res}m</IMAGE_FILE>"
                      for res in (10, 20) for b, *_ in S2_BANDS)
    offsets = "" if offset is None else (
        "<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>'
                                                for i in range(13)) + "</BOA_ADD_OFFSET_VALUES_LIST>")
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b[0]}{int(b[1:])}"><RESOLUTION>10</RESOLUTION>'
        f'<Wavelength><MIN unit="nm">{int(c - w)}</MIN><MAX unit="nm">{int(c + w)}</MAX>'
        f'<CENTRAL unit="nm">{c}</CENTRAL></Wavelength><Spectral_Response><STEP unit="nm">1</STEP>'
        f"<VALUES>{_response(c, w, int(c - w), int(c + w))}</VALUES></Spectral_Response></Spectral_Information>"
        for b, i, c, w in S2_BANDS)
    (safe / "MTD_MSIL2A.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">'
        "<n1:General_Info><Product_Info><PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>"
        "<PROCESSING_BASELINE>05.10</PROCESSING_BASELINE><Datatake><SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>"
        '</Datatake><Product_Organisation><Granule_List><Granule granuleIdentifier="x" imageFormat="JPEG2000">'
        + files + "</Granule></Granule_List></Product_Organisation></Product_Info>"
        "<Product_Image_Characteristics>"
        "<Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>"
        "</Special_Values><Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT>"
        "<SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>"
        "<QUANTIFICATION_VALUES_LIST>"
        f'<BOA_QUANTIFICATION_VALUE unit="none">{quantification}</BOA_QUANTIFICATION_VALUE>'
        '<AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>'
        + offsets + "<Spectral_Information_List>" + spectral + "</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>\n")
    return safe
