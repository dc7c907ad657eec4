"""Test and benchmark scenarios built from a real cube (issue 5).

`real_camera_scenario` is the "real camera" case: the truth is a real HSI, the
HR-MSI comes from a *measured* sensor response (IKONOS B, G, R, NIR) followed
by a non-linear camera response (gamma), so no preset Gaussian SRF describes
it. A fusion told only "4 MSI bands" fails silently with the preset SRF; the
SRF estimated from the pair (`srf_estimation`) or training on the HR-MSI
brought to the LR grid recovers. `oracle=True` gives the same pair from a
linear camera (no gamma): with the true SRF this is the best case.

Everything is deterministic from `seed`. Data files are reached only through
the paths given as arguments (tests pass `../shared/data/...`).

The recipe (all on float64, returned as float32):
- truth: the cube normalised to [0,1] by its 1st/99th percentiles; its C
  bands are taken as evenly spread over 400..2500 nm (`wavelengths`).
- true SRF: the measured IKONOS blue, green, red, NIR curves linearly
  resampled onto `wavelengths` (zero outside the table's 350..1035 nm),
  rows normalised to sum 1.
- HR-MSI = truth x SRF^T, then (unless oracle) the camera gamma x^(1/2.2),
  then white Gaussian noise at 40 dB (SPEC 2 definition of the noise power).
- LR-HSI = truth blurred by a Gaussian PSF (sigma 1 HR pixel, 7 x 7 kernel,
  'same', zero padding), area-downsampled by 2, noise at 35 dB.
The HR-MSI noise is drawn first, then the LR-HSI noise, from one
`numpy.random.default_rng(seed)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..core.errors import InputError

WAVELENGTH_RANGE = (400.0, 2500.0)
CAMERA_GAMMA = 1.0 / 2.2
SCENARIO_RATIO = 2
SCENARIO_PSF_SIGMA = 1.0        # HR pixels
SCENARIO_PSF_KERNEL_SIZE = 3    # (2*3+1)^2 = 7 x 7 grid
SNR_MSI_DB = 40.0
SNR_HSI_DB = 35.0
IKONOS_FILE = "Ikonos_spec_resp.mat"
IKONOS_KEY = "ikonos_sp"
IKONOS_BANDS = ("pan", "blue", "green", "red", "nir")


def _load_mat_var(path, key: str) -> np.ndarray:
    import scipy.io
    p = Path(path)
    if not p.is_file():
        raise InputError(f"scenario data file '{p}' does not exist")
    data = scipy.io.loadmat(str(p))
    if key not in data:
        keys = [k for k in data if not k.startswith("__")]
        raise InputError(f"'{p}' has no variable '{key}' (it has: {', '.join(keys)})")
    return np.asarray(data[key], dtype=np.float64)


def evenly_spaced_wavelengths(num_bands: int, lo: float = WAVELENGTH_RANGE[0],
                              hi: float = WAVELENGTH_RANGE[1]) -> np.ndarray:
    """`num_bands` band centres evenly spread over lo..hi nm (inclusive)."""
    return np.linspace(lo, hi, num_bands)


def ikonos_srf(ikonos_path, wavelengths, bands=("blue", "green", "red", "nir")) -> np.ndarray:
    """The measured IKONOS responses of `bands` on `wavelengths` (c x C, rows sum 1)."""
    table = _load_mat_var(ikonos_path, IKONOS_KEY)
    cols = [0] + [1 + IKONOS_BANDS.index(b) for b in bands]
    table = table[:, cols]
    wl = np.asarray(wavelengths, dtype=np.float64)
    try:
        from .srf import resample_response_table
        srf = np.asarray(resample_response_table(table, wl), dtype=np.float64)
        if srf.shape != (len(bands), wl.size) and srf.shape == (wl.size, len(bands)):
            srf = srf.T
    except ImportError:   # srf.py not there (yet): plain linear interpolation
        srf = np.stack([np.interp(wl, table[:, 0], table[:, j], left=0.0, right=0.0)
                        for j in range(1, table.shape[1])])
    srf = np.clip(srf, 0.0, None)
    sums = srf.sum(axis=1, keepdims=True)
    if np.any(sums <= 0):
        raise InputError("an IKONOS band has no response on the given wavelengths")
    return srf / sums


def gaussian_psf(sigma: float = SCENARIO_PSF_SIGMA, kernel_size: int = SCENARIO_PSF_KERNEL_SIZE) -> np.ndarray:
    """The scenario's PSF (psf.make_psf('gaussian', ...), sums to 1)."""
    from .psf import make_psf
    return np.asarray(make_psf("gaussian", sigma, kernel_size), dtype=np.float64)


def build_pair(truth: np.ndarray, srf: np.ndarray, psf: np.ndarray, ratio: int,
               snr_msi: Optional[float], snr_hsi: Optional[float], seed: int = 0,
               gamma: Optional[float] = None):
    """(hr_msi, lr_hsi) from a truth cube: SRF [+ gamma] [+ noise]; PSF, downsample [+ noise].

    `gamma` (e.g. 1/2.2) applies x -> max(x, 0)^gamma to the HR-MSI before the noise,
    i.e. a non-linear camera response. `snr_* = None` means no noise.
    """
    from .degradation import add_awgn, apply_srf, area_downsample, blur
    truth = np.asarray(truth, dtype=np.float32)
    rng = np.random.default_rng(seed)
    hr_msi = np.asarray(apply_srf(truth, np.asarray(srf, dtype=np.float64)), dtype=np.float64)
    if gamma is not None:
        hr_msi = np.clip(hr_msi, 0.0, None) ** gamma
    hr_msi = hr_msi.astype(np.float32)
    if snr_msi is not None:
        hr_msi = np.asarray(add_awgn(hr_msi, snr_msi, rng), dtype=np.float32)
    lr_hsi = np.asarray(area_downsample(blur(truth, psf), ratio), dtype=np.float32)
    if snr_hsi is not None:
        lr_hsi = np.asarray(add_awgn(lr_hsi, snr_hsi, rng), dtype=np.float32)
    return hr_msi, lr_hsi


def load_truth(urban_path, key: str = "im") -> np.ndarray:
    """The cube at `urban_path` normalised to [0,1] by its 1st/99th percentiles (float32)."""
    from .degradation import normalize_percentile
    cube = _load_mat_var(urban_path, key)
    return np.asarray(normalize_percentile(cube), dtype=np.float32)


def real_camera_scenario(urban_path, seed: int = 0, oracle: bool = False,
                         ikonos_path=None, ratio: int = SCENARIO_RATIO) -> dict:
    """The issue-5 "real camera" pair from the Urban cube and the IKONOS responses.

    Returns dict(truth (H,W,C), hr_msi (H,W,4), lr_hsi (H/r,W/r,C), wavelengths (C,),
    true_srf (4,C) rows sum 1, ratio, psf (7x7), gamma (None when oracle), oracle).
    `ikonos_path` defaults to `Ikonos_spec_resp.mat` beside `urban_path`.
    H and W are cropped to a multiple of `ratio` (Urban, 34 x 78, needs none at 2).
    """
    truth = load_truth(urban_path)
    H, W, C = truth.shape
    truth = truth[:H - H % ratio, :W - W % ratio]
    if ikonos_path is None:
        ikonos_path = Path(urban_path).with_name(IKONOS_FILE)
    wavelengths = evenly_spaced_wavelengths(C)
    true_srf = ikonos_srf(ikonos_path, wavelengths)
    psf = gaussian_psf()
    gamma = None if oracle else CAMERA_GAMMA
    hr_msi, lr_hsi = build_pair(truth, true_srf, psf, ratio, SNR_MSI_DB, SNR_HSI_DB, seed=seed,
                                gamma=gamma)
    return dict(truth=truth, hr_msi=hr_msi, lr_hsi=lr_hsi, wavelengths=wavelengths,
                true_srf=true_srf, ratio=ratio, psf=psf, gamma=gamma, oracle=oracle)


def synthetic_preset_scenario(urban_path, seed: int = 0, num_msi_bands: int = 4,
                              ratio: int = SCENARIO_RATIO) -> dict:
    """The linear synthetic case for comparison: same truth, PSF and noise as
    `real_camera_scenario`, but the HR-MSI made with the preset Gaussian SRF placed on
    the (assumed) true wavelengths and a linear camera. Same dict keys."""
    from .srf import preset_srf
    truth = load_truth(urban_path)
    H, W, C = truth.shape
    truth = truth[:H - H % ratio, :W - W % ratio]
    wavelengths = evenly_spaced_wavelengths(C)
    srf = np.asarray(preset_srf(num_msi_bands, C, wavelengths=wavelengths), dtype=np.float64)
    psf = gaussian_psf()
    hr_msi, lr_hsi = build_pair(truth, srf, psf, ratio, SNR_MSI_DB, SNR_HSI_DB, seed=seed)
    return dict(truth=truth, hr_msi=hr_msi, lr_hsi=lr_hsi, wavelengths=wavelengths,
                true_srf=srf, ratio=ratio, psf=psf, gamma=None, oracle=True)
