"""The names of what the sensors can be: a leaf module (no engine imports) that the config's
validation and the sensor models both read, so neither has to import the other.

`PSF_TYPES` (the blur kernels `psf.make_psf` builds), `SRF_PRESETS` / `SRF_PRESET_NAMES` (preset
MSI bands by band count: centre, lower and upper edge in nm), `Camera` and `CAMERAS` (named
cameras' bands as name, centre nm, FWHM nm, with their published source).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

PSF_TYPES = ("gaussian", "kolmogorov", "airy", "moffat", "sinc", "lorentzian2",
             "hermite", "parabolic", "gabor", "delta")

# band count -> [(centre, lower edge, upper edge)] in nm (SPEC 2)
_WV3_SWIR = [(1210, 1184, 1235), (1572, 1546, 1598), (1661, 1636, 1686), (1730, 1702, 1759),
             (2164, 2137, 2191), (2203, 2174, 2232), (2260, 2228, 2292), (2329, 2285, 2373)]
SRF_PRESETS: Dict[int, List[Tuple[float, float, float]]] = {
    1: [(729, 409, 1048)],
    3: [(480, 421, 539), (552, 480, 624), (666, 602, 729)],
    4: [(480, 421, 539), (552, 480, 624), (666, 602, 729), (803, 713, 893)],
    8: [(427, 396, 458), (478, 442, 515), (546, 506, 586), (608, 584, 632),
        (659, 624, 694), (724, 699, 749), (833, 765, 901), (949, 856, 1043)],
    16: [(426, 397, 454), (481, 445, 517), (547, 507, 586), (605, 580, 629),
         (661, 626, 696), (724, 698, 749), (832, 765, 899), (948, 857, 1039)] + _WV3_SWIR,
}
SRF_PRESET_NAMES: Dict[int, str] = {
    1: "IKONOS panchromatic", 3: "IKONOS RGB", 4: "IKONOS B, G, R, NIR",
    8: "WorldView-2", 16: "WorldView-3 (VNIR + SWIR)",
}

# Named cameras: bands as (name, centre nm, FWHM nm), each modelled as a Gaussian of that
# FWHM on the cube's true wavelengths. Figures from the operators' published band tables
# (centre and width, or band edges, whose midpoint and width are used); `source` names them.
# A measured response table (srf_file) is always more exact than these.
@dataclass(frozen=True)
class Camera:
    name: str
    label: str
    bands: Tuple[Tuple[str, float, float], ...]
    source: str

    @property
    def band_names(self) -> List[str]:
        return [b[0] for b in self.bands]


def _edges(*bands) -> Tuple[Tuple[str, float, float], ...]:
    """(name, lower edge, upper edge) -> (name, centre, width)."""
    return tuple((n, (lo + hi) / 2.0, float(hi - lo)) for n, lo, hi in bands)


_S2_10M = (("B2", 492.4, 66.0), ("B3", 559.8, 36.0), ("B4", 664.6, 31.0), ("B8", 832.8, 106.0))
_S2_20M = (("B5", 704.1, 15.0), ("B6", 740.5, 15.0), ("B7", 782.8, 20.0), ("B8A", 864.7, 21.0),
           ("B11", 1613.7, 91.0), ("B12", 2202.4, 175.0))
_WV_VNIR = _edges(("coastal", 400, 450), ("blue", 450, 510), ("green", 510, 580), ("yellow", 585, 625),
                  ("red", 630, 690), ("red edge", 705, 745), ("NIR1", 770, 895), ("NIR2", 860, 1040))
_WV3_SWIR_BANDS = _edges(("SWIR1", 1195, 1225), ("SWIR2", 1550, 1590), ("SWIR3", 1640, 1680),
                         ("SWIR4", 1710, 1750), ("SWIR5", 2145, 2185), ("SWIR6", 2185, 2225),
                         ("SWIR7", 2235, 2285), ("SWIR8", 2295, 2365))
_S2_SOURCE = "ESA Sentinel-2 User Handbook, Sentinel-2A MSI central wavelength and bandwidth"
_OLI_SOURCE = "USGS Landsat 8-9 OLI/TIRS band designations (band edges)"
_WV_SOURCE = "DigitalGlobe (Maxar) WorldView-2 / WorldView-3 datasheets (band edges)"
CAMERAS: Dict[str, Camera] = {c.name: c for c in (
    Camera("sentinel2_10m", "Sentinel-2 MSI, 10 m bands (B2, B3, B4, B8)", _S2_10M, _S2_SOURCE),
    Camera("sentinel2_10m_20m", "Sentinel-2 MSI, 10 m + 20 m bands",
           tuple(sorted(_S2_10M + _S2_20M, key=lambda b: b[1])), _S2_SOURCE),
    Camera("landsat8_oli", "Landsat 8/9 OLI, multispectral bands 1-7", _edges(
        ("B1 coastal", 433, 453), ("B2 blue", 450, 515), ("B3 green", 525, 600), ("B4 red", 630, 680),
        ("B5 NIR", 845, 885), ("B6 SWIR1", 1560, 1660), ("B7 SWIR2", 2100, 2300)), _OLI_SOURCE),
    Camera("landsat8_pan", "Landsat 8/9 OLI, panchromatic band 8", _edges(("B8 pan", 500, 680)), _OLI_SOURCE),
    Camera("worldview2", "WorldView-2, 8 multispectral bands", _WV_VNIR, _WV_SOURCE),
    Camera("worldview2_pan", "WorldView-2, panchromatic", _edges(("pan", 450, 800)), _WV_SOURCE),
    Camera("worldview3", "WorldView-3, 8 VNIR + 8 SWIR bands", _WV_VNIR + _WV3_SWIR_BANDS, _WV_SOURCE),
    Camera("ikonos", "IKONOS, 4 multispectral bands", _edges(
        ("blue", 445, 516), ("green", 506, 595), ("red", 632, 698), ("NIR", 757, 853)),
        "GeoEye IKONOS specifications (band edges)"),
    Camera("ikonos_pan", "IKONOS, panchromatic", _edges(("pan", 526, 929)),
           "GeoEye IKONOS specifications (band edges)"),
    Camera("superdove", "PlanetScope SuperDove (PSB.SD), 8 bands", _edges(
        ("coastal blue", 431, 452), ("blue", 465, 515), ("green I", 513, 549), ("green", 547, 583),
        ("yellow", 600, 620), ("red", 650, 680), ("red edge", 697, 713), ("NIR", 845, 885)),
        "Planet imagery product specifications, PlanetScope SuperDove band edges"),
    Camera("rgb", "Generic RGB camera (Bayer colour filters, approximate)",
           (("blue", 460.0, 90.0), ("green", 540.0, 80.0), ("red", 610.0, 80.0)),
           "typical consumer colour-filter peaks and widths; no specific camera: measure yours for "
           "exact work"),
)}
