"""The fusion pipeline: config -> inputs -> endmembers -> trained LEN -> HR-HSI.

`prepare_inputs` does everything before training (loading, normalising,
making the synthetic pair, choosing the SRF) and is cheap enough for live
previews; `run_fusion` continues with NMF, training, inference, scoring and
writing the outputs. Progress goes out as `events`; a `threading.Event`
cancels. Nothing here prints.
"""
from __future__ import annotations

import functools
import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from ..core import events as ev
from .config import FusionConfig, SRF_PRESET_BANDS, save_config
from ..core.errors import InputError
from .method_report import facts_text, result_figures, short_name
from ..core.strict_json import dumps as json_dumps

log = logging.getLogger(__name__)


@dataclass
class FusionInputs:
    """Arrays already in memory; a field left None is loaded from the config's files."""
    truth: Optional[np.ndarray] = None
    hr_msi: Optional[np.ndarray] = None
    lr_hsi: Optional[np.ndarray] = None
    wavelengths: Optional[np.ndarray] = None
    hr_geo: object = None          # georef.GeoInfo of in-memory arrays (georeferencing, nodata value)
    lr_geo: object = None


@dataclass
class PreparedInputs:
    mode: str                      # "synthetic" | "real"
    hr_msi: np.ndarray             # H x W x c, float32 in [0,1]
    lr_hsi: np.ndarray             # h x w x C, float32 in [0,1]
    srf: np.ndarray                # c x C, rows sum to 1 (the SRF the user sees)
    ratio: int
    psf: Optional[np.ndarray]      # k x k, sums to 1
    truth: Optional[np.ndarray] = None
    wavelengths: Optional[np.ndarray] = None
    srf_note: str = ""
    training_input: str = "srf"    # "srf" | "msi_lr"
    srf_estimate: object = None    # srf_estimation.SrfEstimate when estimated
    srf_fit: Optional[dict] = None  # how well the SRF in use explains the pair (real mode)
    warnings: list = field(default_factory=list)
    psf_note: str = ""             # where the PSF came from (real mode: file, estimated, config)
    psf_fitted_sigma: Optional[float] = None   # real mode: width (px) of the Gaussian blur fitted on the pair, when fitted
    srf_gain_offset: Optional[tuple] = None  # (gain (c,), offset (c,)) fitted for an SRF file
    # How the LR-HSI's blur treats the image border: "zero" (padding with zeros, as this engine
    # degrades: synthetic pairs, the reduced-resolution pair) or "free" (a real sensor saw past
    # the frame). None: from the mode.
    boundary: Optional[str] = None
    # Real mode: the LR-HSI in its own units is lr_hsi * span + offset (its 1st and 99th
    # percentiles map to 0 and 1; nothing is clipped). None in synthetic mode.
    lr_units: Optional[Tuple[float, float]] = None     # (offset, span)
    geo: object = None             # georef.GeoInfo of the HR grid (the result's), when the HR-MSI file has one
    masks: object = None           # NodataMasks of a real pair with nodata pixels, else None

    @property
    def lr_valid(self) -> Optional[np.ndarray]:
        """h x w bool of the LR pixels that learning and the scores use (None: all)."""
        return None if self.masks is None else ~self.masks.lr_out

    @property
    def num_hsi_bands(self) -> int:
        return self.lr_hsi.shape[2]

    @property
    def value_range(self) -> Tuple[float, Optional[float]]:
        """(low, high or None) a result is clipped to, in the engine's scale: [0, 1] for a
        synthetic pair (the paper's convention); for a real pair no upper bound (bright pixels
        stay bright) and the LR-HSI's own floor below (its minimum, or 0 when that is higher)."""
        if self.lr_units is None:
            return 0.0, 1.0
        return min(0.0, float(np.min(self.lr_hsi))), None

    def msi_model(self):
        """(srf c x C float64, offset (c,) float64) with HR-MSI ~ HR-HSI @ srf.T + offset, in the
        normalised units of the pair: the SRF in use with the gain and offset fitted on a real
        pair (an estimated SRF, or an SRF file); the plain SRF and a zero offset otherwise."""
        srf = np.asarray(self.srf, dtype=np.float64)
        offset = np.zeros(srf.shape[0])
        if self.srf_estimate is not None:
            srf = np.asarray(self.srf_estimate.srf, dtype=np.float64)
            offset = np.asarray(self.srf_estimate.offset, dtype=np.float64).reshape(-1)
        elif self.srf_gain_offset is not None:
            gain, off = self.srf_gain_offset
            srf = np.asarray(gain, dtype=np.float64).reshape(-1, 1) * srf
            offset = np.asarray(off, dtype=np.float64).reshape(-1)
        return srf, offset


@dataclass
class FusionResult:
    hr_hsi: np.ndarray
    endmembers: np.ndarray
    alle: np.ndarray
    loss_history: list
    lr_history: list
    prepared: PreparedInputs
    metrics: Optional[dict] = None
    bicubic_metrics: Optional[dict] = None
    consistency: Optional[dict] = None
    timings: dict = field(default_factory=dict)
    device: str = "cpu"
    output_files: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    method: str = "spectramorph"
    method_info: dict = field(default_factory=dict)   # method-specific facts (prior used, refinement, ...)
    selection: Optional[dict] = None                   # auto_select's candidates, scores and choice
    config_used: Optional[FusionConfig] = None         # the settings the result was made with
    # "input": hr_hsi and endmembers are in the LR-HSI's own units (real mode, output_scale
    # input); "normalized": in the engine's [0, 1] scale (synthetic mode, or output_scale normalized)
    units: str = "normalized"
    # Real mode: h x w x 2 float32 per LR pixel -- [0] how far the HR-MSI (brought to the LR grid)
    # and the LR-HSI seen through the SRF disagree, [1] how far the result degraded back is from
    # the LR-HSI; RMS in the engine's [0, 1] scale; NaN where left out (nodata)
    misfit: Optional[np.ndarray] = None
    # Training ended early by the finish token: {"epoch": epochs run, "epochs": epochs configured};
    # None when training ran to its end (or the method trains no network)
    training_stopped: Optional[dict] = None

    @property
    def final_loss(self) -> Optional[float]:
        return self.loss_history[-1] if self.loss_history else None


# --------------------------------------------------------------------------
# small helpers

class _Stages:
    """Times stages and reports StageStarted/StageFinished."""

    def __init__(self, progress, cancel):
        self.progress, self.cancel, self.timings = progress, cancel, {}

    @contextmanager
    def __call__(self, name):
        ev.check_cancel(self.cancel)
        ev.emit(self.progress, ev.StageStarted(name))
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[name] = self.timings.get(name, 0.0) + dt
        ev.emit(self.progress, ev.StageFinished(name, dt))


def _as_cube(arr, what: str, allow_2d: bool = False, allow_invalid: bool = False) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 2 and allow_2d:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"{what} must be a 3-D array (rows x cols x bands)"
                         f"{' or a 2-D single band' if allow_2d else ''}, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{what} must hold numbers, got dtype {a.dtype}")
    if a.dtype.kind != "f":
        a = a.astype(np.float32)
    if not allow_invalid:
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        if bad:
            raise InputError(f"{what} holds {bad} NaN or Inf values")
    return a


def _normalise(arr, what: str) -> np.ndarray:
    from ..sensors.degradation import normalize_percentile
    try:
        return normalize_percentile(arr)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def _scale_unclipped(arr, what: str, bad_pixels=None):
    """(scaled, offset, span): a real image mapped so its 1st / 99th percentiles (of its valid
    pixels) are 0 / 1, nothing clipped (bright pixels stay bright, and the map is undone on the
    result). A new float32 array; `arr` may be overwritten."""
    from ..sensors.degradation import scale_percentile
    try:
        if bad_pixels is None:
            return scale_percentile(arr)
        # the arrays were copied to be filled: scaled in place
        return scale_percentile(arr, pixels=~bad_pixels, copy=False)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


@dataclass
class NodataMasks:
    """Where a real pair holds no data (NaN/Inf, or the nodata value in every band).

    hr_bad / lr_bad: the pixels of each image that hold none (filled from their nearest valid
    neighbour before anything else, so filters and transforms run). lr_out: LR pixels left out
    of NMF, training, SRF/blur estimation and the consistency figures -- those with no data and
    those whose r x r block of HR pixels is not wholly valid. hr_out: HR pixels whose result is
    NaN -- those with no MSI data and those in an LR pixel with no HSI data."""
    hr_bad: np.ndarray
    lr_bad: np.ndarray
    lr_out: np.ndarray
    hr_out: np.ndarray
    warning: Optional[str] = None

    def summary(self) -> dict:
        return {"hr_pixels_without_data": int(self.hr_bad.sum()), "lr_pixels_without_data": int(self.lr_bad.sum()),
                "lr_pixels_left_out": int(self.lr_out.sum()), "result_pixels_nan": int(self.hr_out.sum()),
                "lr_pixels": int(self.lr_out.size), "hr_pixels": int(self.hr_out.size)}


# More than this share of LR pixels left out: the run goes on, with a warning.
NODATA_WARN_FRACTION = 0.5


def _invalid_pixels(cube: np.ndarray, nodata: Optional[float]) -> np.ndarray:
    """rows x cols bool: a pixel with NaN/Inf in any band, or equal to `nodata` in every band."""
    bad = ~np.isfinite(cube).all(axis=2)
    if nodata is not None and np.isfinite(nodata):
        bad |= (cube == np.float32(nodata)).all(axis=2)
    return bad


def _fill_from_nearest(cube: np.ndarray, bad: np.ndarray) -> None:
    """In place: each bad pixel takes the values of its nearest valid pixel."""
    from scipy import ndimage
    _, (ri, ci) = ndimage.distance_transform_edt(bad, return_distances=True, return_indices=True)
    rows, cols = np.nonzero(bad)
    cube[rows, cols] = cube[ri[rows, cols], ci[rows, cols]]


def _nodata_masks(config: FusionConfig, hr, hr_what, hr_geo, lr, lr_what, lr_geo, ratio: int, progress):
    """NodataMasks of a real pair (None when every pixel holds data). Refuses a pair with no
    valid LR pixel left."""
    def nodata_of(geo):
        if config.nodata is not None:
            return float(config.nodata)
        return None if geo is None else geo.nodata
    hr_bad = _invalid_pixels(hr, nodata_of(hr_geo))
    lr_bad = _invalid_pixels(lr, nodata_of(lr_geo))
    if not hr_bad.any() and not lr_bad.any():
        return None
    h, w = lr.shape[:2]
    r = ratio
    lr_out = lr_bad | hr_bad.reshape(h, r, w, r).any(axis=(1, 3))
    hr_out = hr_bad | np.repeat(np.repeat(lr_bad, r, axis=0), r, axis=1)
    if hr_bad.all() or lr_bad.all():
        raise InputError(f"{hr_what if hr_bad.all() else lr_what} holds no valid pixel (all NaN, Inf or nodata)")
    if lr_out.all():
        raise InputError(f"no valid pixel is left in {lr_what} and {hr_what}: {int(lr_bad.sum())} of {lr_bad.size} "
                         f"LR pixels and {int(hr_bad.sum())} of {hr_bad.size} HR pixels hold NaN, Inf or the "
                         f"nodata value, and every other LR pixel covers some of them")
    masks = NodataMasks(hr_bad, lr_bad, lr_out, hr_out)
    text = (f"nodata: {int(hr_bad.sum())} HR-MSI pixels and {int(lr_bad.sum())} LR-HSI pixels hold no data "
            f"(NaN, Inf or the nodata value); {int(lr_out.sum())} of {lr_out.size} LR pixels are left out of "
            f"learning and the scores, and {int(hr_out.sum())} result pixels will be NaN")
    ev.emit(progress, ev.Message("info", text))
    if lr_out.mean() > NODATA_WARN_FRACTION:
        warn = (f"More than half of the pair holds no data ({100 * lr_out.mean():.0f}% of the LR pixels are left "
                f"out): the endmembers, the network and the SRF are learnt from the remaining "
                f"{int((~lr_out).sum())} LR pixels only.")
        masks.warning = warn        # emitted with the pair's other warnings
    return masks


def _load(path, key, what: str, config_key: str, cancel=None, allow_invalid: bool = False):
    from ..io import load_cube
    if not path:
        raise InputError(f"config key '{config_key}' is not set: {what} is needed")
    return load_cube(path, key=key, cancel=cancel, allow_invalid=allow_invalid)


def _resolve_wavelengths(config: FusionConfig, inputs: FusionInputs, cube_wl, num_bands: int):
    """Wavelengths in nm from (in order) the in-memory inputs, the config, the file."""
    wl = inputs.wavelengths
    source = "given"
    if wl is None and config.wavelengths is not None:
        if isinstance(config.wavelengths, str):
            from ..io import load_wavelengths
            wl = load_wavelengths(config.wavelengths)
            source = f"file '{config.wavelengths}'"
        else:
            wl = config.wavelengths
            source = "config"
    if wl is None and cube_wl is not None:
        wl, source = cube_wl, "file metadata"
    if wl is None:
        return None, None
    wl = np.asarray(wl, dtype=np.float64).ravel()
    if wl.size != num_bands:
        raise InputError(f"wavelengths ({source}) give {wl.size} values but the hyperspectral cube has "
                         f"{num_bands} bands")
    if not np.all(np.isfinite(wl)):
        raise InputError(f"wavelengths ({source}) hold non-finite values")
    return wl, source


def _psf_from_config(config: FusionConfig) -> np.ndarray:
    from ..sensors import psf as psf_mod
    if config.provide_psf:
        return psf_mod.load_psf(config.psf_file)
    return psf_mod.make_psf(config.psf_type, config.sigma, config.kernel_size)


def _preset_or_file_srf(config: FusionConfig, num_msi: int, num_hsi: int, wavelengths):
    """SRF from a file (provide_srf / srf_source file) or a preset, with a note saying which."""
    from ..sensors import srf as srf_mod
    use_file = config.srf_source == "file" or (config.srf_source == "auto" and config.provide_srf)
    if use_file:
        srf = srf_mod.load_srf(config.srf_file, num_hsi, wavelengths=wavelengths)
        return srf, f"custom SRF from '{config.srf_file}'"
    if config.msi_camera:
        cam = srf_mod.get_camera(config.msi_camera)
        srf = srf_mod.camera_srf(cam.name, num_hsi, wavelengths)
        return srf, f"{cam.label} SRF (msi_camera: {cam.name}) on the cube's true wavelengths"
    if num_msi not in SRF_PRESET_BANDS:
        raise InputError(f"no SRF preset for {num_msi} MSI bands (presets: "
                         f"{', '.join(map(str, SRF_PRESET_BANDS))}); give an SRF file (srf_file, provide_srf: true)")
    srf = srf_mod.preset_srf(num_msi, num_hsi, config.fwhm_factor, wavelengths=wavelengths)
    where = ("placed on the cube's true wavelengths" if wavelengths is not None
             else "bands spread evenly over the preset's range (wavelengths unknown)")
    return srf, f"{num_msi}-band preset SRF, {where}"


# --------------------------------------------------------------------------
# preparation

def prepare_inputs(config: FusionConfig, inputs: Optional[FusionInputs] = None,
                   progress: Optional[Callable] = None, cancel=None) -> PreparedInputs:
    """Load / build the HR-MSI and LR-HSI pair and the sensor models of a run."""
    inputs = inputs or FusionInputs()
    if config.synthetic:
        return _prepare_synthetic(config, inputs, cancel)
    return _prepare_real(config, inputs, progress, cancel)


def _prepare_synthetic(config: FusionConfig, inputs: FusionInputs, cancel=None) -> PreparedInputs:
    from ..sensors.degradation import make_synthetic_pair
    cube_wl = None
    if inputs.truth is not None:
        raw = inputs.truth
        what = "the ground-truth cube"
    else:
        cube = _load(config.mat_file, config.mat_key, "synthetic mode needs a ground-truth cube", "mat_file",
                     cancel)
        raw, cube_wl = cube.data, cube.wavelengths
        what = f"'{config.mat_file}'"
    truth = _normalise(_as_cube(raw, what), what)
    h, w, num_bands = truth.shape
    r = config.downsample_ratio
    if h < 2 * r or w < 2 * r:
        raise InputError(f"{what} of shape {truth.shape} is too small for downsample_ratio {r} "
                         f"(needs at least {2 * r} x {2 * r} pixels)")
    wl, _ = _resolve_wavelengths(config, inputs, cube_wl, num_bands)
    psf = _psf_from_config(config)
    if config.srf_source == "estimate":
        raise InputError("config key 'srf_source' is 'estimate', which needs a real HR-MSI "
                         "(synthetic: false); synthetic mode makes the HR-MSI from a known SRF")
    srf, note = _preset_or_file_srf(config, config.num_msi_bands, num_bands, wl)
    truth, hr_msi, lr_hsi = make_synthetic_pair(truth, psf, srf, r, config.snr_spatial,
                                                config.snr_spectral, config.seed)
    training_input = "msi_lr" if config.training_input == "msi_lr" else "srf"
    return PreparedInputs(mode="synthetic", hr_msi=hr_msi, lr_hsi=lr_hsi, srf=srf, ratio=r,
                          psf=psf, truth=truth, wavelengths=wl, srf_note=note,
                          training_input=training_input)


def infer_ratio(hr_shape, lr_shape) -> int:
    """Integer ratio between an HR-MSI and an LR-HSI, or PairSizeError (an InputError) naming
    both shapes."""
    from ..core.errors import PairSizeError
    (H, W), (h, w) = hr_shape[:2], lr_shape[:2]
    if H % h or W % w or H // h != W // w:
        raise PairSizeError(f"HR-MSI {tuple(hr_shape)} and LR-HSI {tuple(lr_shape)} are not an integer "
                         f"ratio apart (need H = r*h and W = r*w)")
    r = H // h
    if r < 2:
        raise PairSizeError(f"HR-MSI {tuple(hr_shape)} and LR-HSI {tuple(lr_shape)} have ratio {r}; "
                         f"fusion needs an HR-MSI at least 2x finer")
    return r


def _prepare_real(config: FusionConfig, inputs: FusionInputs, progress, cancel) -> PreparedInputs:
    from ..sensors import srf_estimation as est_mod
    from ..sensors import srf as srf_mod
    from ..io.georef import check_same_ground
    cube = None
    hr_geo, lr_geo = inputs.hr_geo, inputs.lr_geo
    if inputs.hr_msi is not None:
        hr_raw, hr_what = inputs.hr_msi, "the HR-MSI"
    else:
        cube = _load(config.hr_msi_file, None, "real-world mode needs an HR-MSI file", "hr_msi_file", cancel,
                     allow_invalid=True)
        hr_raw, hr_what, hr_geo = cube.data, f"HR-MSI '{config.hr_msi_file}'", cube.geo
    cube_wl = None
    if inputs.lr_hsi is not None:
        lr_raw, lr_what = inputs.lr_hsi, "the LR-HSI"
    else:
        cube = _load(config.lr_hsi_file, None, "real-world mode needs an LR-HSI file", "lr_hsi_file", cancel,
                     allow_invalid=True)
        lr_raw, lr_what, cube_wl, lr_geo = cube.data, f"LR-HSI '{config.lr_hsi_file}'", cube.wavelengths, cube.geo
    # Georeferenced files must cover the same ground on nested grids (said before the shapes are
    # compared: an extent off by one LR pixel is named as such)
    check_same_ground(hr_geo, np.shape(hr_raw), hr_what, lr_geo, np.shape(lr_raw), lr_what)
    hr_arr = _as_cube(hr_raw, hr_what, allow_2d=True, allow_invalid=True)
    lr_arr = _as_cube(lr_raw, lr_what, allow_invalid=True)
    del hr_raw, lr_raw, cube          # the raw cubes can be as big as the normalised ones
    ratio = infer_ratio(hr_arr.shape, lr_arr.shape)
    masks = _nodata_masks(config, hr_arr, hr_what, hr_geo, lr_arr, lr_what, lr_geo, ratio, progress)
    lr_valid = None if masks is None else ~masks.lr_out
    if masks is not None:      # filled on copies: the arrays may be the caller's
        hr_arr, lr_arr = np.array(hr_arr, dtype=np.float32), np.array(lr_arr, dtype=np.float32)
        _fill_from_nearest(hr_arr, masks.hr_bad)
        _fill_from_nearest(lr_arr, masks.lr_bad)
    pending_warnings = [masks.warning] if masks is not None and masks.warning else []
    hr_msi = _scale_unclipped(hr_arr, hr_what, None if masks is None else masks.hr_bad)[0]
    lr_hsi, lr_offset, lr_span = _scale_unclipped(lr_arr, lr_what, None if masks is None else masks.lr_bad)
    del hr_arr, lr_arr
    c, num_bands = hr_msi.shape[2], lr_hsi.shape[2]
    if c >= num_bands:
        raise InputError(f"{hr_what} has {c} bands and {lr_what} {num_bands}: the HR image must have "
                         f"fewer bands than the hyperspectral one (are the files swapped?)")
    wl, _ = _resolve_wavelengths(config, inputs, cube_wl, num_bands)
    declared = config.num_bands_msi_non_synthetic
    if declared is not None and declared != c and not config.provide_srf:
        raise InputError(f"config key 'num_bands_msi_non_synthetic' is {declared} but {hr_what} has {c} bands")
    psf = _psf_from_config(config)
    warnings: list = list(pending_warnings)
    estimate = None
    has_file = bool(config.srf_file) and (config.provide_srf or config.srf_source == "file")
    source = config.srf_source
    if source == "auto":
        source = "file" if has_file else ("camera" if config.msi_camera else "estimate")
    elif source == "preset" and config.msi_camera:
        source = "camera"           # a named camera is a preset with a name
    if source in ("file", "camera"):
        if source == "file":
            srf = srf_mod.load_srf(config.srf_file, num_bands, wavelengths=wl)
            note = f"custom SRF from '{config.srf_file}'"
            if srf.shape[0] != c:
                raise InputError(f"SRF file '{config.srf_file}' has {srf.shape[0]} bands but {hr_what} has {c}")
        else:
            cam = srf_mod.get_camera(config.msi_camera)
            if len(cam.bands) != c:
                raise InputError(f"{hr_what} has {c} band{'s' if c != 1 else ''} but msi_camera '{cam.name}' "
                                 f"({cam.label}) has {len(cam.bands)}: {', '.join(cam.band_names)}")
            srf = srf_mod.camera_srf(cam.name, num_bands, wl)
            note = f"{cam.label} SRF (msi_camera: {cam.name}) on the cube's true wavelengths"
        gain, offset, file_sigma = est_mod.fit_gain_offset(hr_msi, lr_hsi, ratio, srf, cancel=cancel, valid=lr_valid)
        note += " (gain and offset per band fitted on the pair)"
    elif source == "preset":
        srf, note = _preset_or_file_srf(config.replace(srf_source="preset", provide_srf=False), c,
                                        num_bands, wl)
    else:  # estimate from the pair
        ev.emit(progress, ev.Message("info", "estimating the SRF from the image pair"))
        estimate = est_mod.estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wl, cancel=cancel, valid=lr_valid)
        srf = estimate.srf_normalized
        note = (f"SRF estimated from the image pair (fit {estimate.psnr:.1f} dB PSNR, "
                f"blur sigma {estimate.psf_sigma:g} px)")
    if source in ("file", "camera"):
        srf_fit = est_mod.preset_fit(hr_msi, lr_hsi, ratio, gain[:, None] * srf, psf_sigma=file_sigma,
                                     offset=offset, cancel=cancel, valid=lr_valid)
    elif estimate is None:
        srf_fit = est_mod.preset_fit(hr_msi, lr_hsi, ratio, srf, cancel=cancel, valid=lr_valid)
    else:
        srf_fit = {
        "psnr": float(estimate.psnr), "psnr_per_band": [float(v) for v in estimate.psnr_db],
        "r2_per_band": [float(v) for v in estimate.r2]}
    training_input = config.training_input
    if training_input == "auto":
        if estimate is not None:
            training_input, reason = est_mod.choose_training_input(hr_msi, lr_hsi, ratio, estimate)
            note += f"; training input: {training_input} ({reason})"
        else:
            training_input = "srf"
    # The blur between the pair matters twice: to bring the HR-MSI to the LR grid (msi_lr) and
    # to degrade the result back (consistency). A PSF file wins; else the blur fitted on the
    # pair (the config's psf_type/sigma describe synthetic mode's own degradation only).
    blur_fitted, fitted_sigma = False, None
    if config.provide_psf:
        psf_note = f"PSF from '{config.psf_file}'"
    else:
        if estimate is None and source not in ("file", "camera"):
            # fitted for the blur only; the SRF in use stays the one chosen above
            estimate_blur = est_mod.estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wl, cancel=cancel, valid=lr_valid)
            psf = estimate_blur.psf
            blur_fitted = True
            fitted_sigma = float(estimate_blur.psf_sigma)
            psf_note = f"Gaussian blur fitted on the pair (sigma {estimate_blur.psf_sigma:g} px)"
        elif estimate is not None:
            psf = estimate.psf
            fitted_sigma = float(estimate.psf_sigma)
            psf_note = f"Gaussian blur fitted on the pair (sigma {estimate.psf_sigma:g} px)"
        else:   # an SRF file: its gain/offset fit found the blur already
            psf = est_mod.gaussian_kernel(file_sigma)
            fitted_sigma = float(file_sigma)
            psf_note = f"Gaussian blur fitted on the pair (sigma {file_sigma:g} px)"
    fit_psnr = srf_fit.get("psnr") if srf_fit else None
    if fit_psnr is not None and fit_psnr < est_mod.POOR_SRF_FIT_DB and training_input == "srf":
        # the advice follows the same rule as training_input: auto, on the blur fitted on the pair
        blur_fit = estimate if estimate is not None else (estimate_blur if blur_fitted else None)
        verdict = None if blur_fit is None else est_mod.blur_verdict(blur_fit)
        warnings.append(est_mod.poor_srf_warning(fit_psnr, source, config.training_input, verdict,
                                                 psf_given=bool(config.provide_psf)))
    for w_ in warnings:
        ev.emit(progress, ev.Message("warning", w_))
    prep = PreparedInputs(mode="real", hr_msi=hr_msi, lr_hsi=lr_hsi, srf=srf, ratio=ratio, psf=psf,
                          wavelengths=wl, srf_note=note, training_input=training_input,
                          srf_estimate=estimate, srf_fit=srf_fit, warnings=warnings, psf_note=psf_note,
                          psf_fitted_sigma=fitted_sigma,
                          srf_gain_offset=(gain, offset) if source in ("file", "camera") else None,
                          lr_units=(float(lr_offset), float(lr_span)), masks=masks,
                          geo=hr_geo if hr_geo is not None and hr_geo.georeferenced else None)
    # Whether the LR-HSI's border was blurred with zeros (a simulated pair) or saw past the frame
    # (a real sensor): the refinement and the classical methods model the border accordingly.
    from ..methods._ops import detect_boundary
    raw_srf, raw_offset = prep.msi_model()
    prep.boundary, border_fit = detect_boundary(hr_msi, lr_hsi, ratio, psf, raw_srf, raw_offset)
    prep.psf_note += (f"; image border: {'zero-padded blur (a simulated pair)' if prep.boundary == 'zero' else 'seen past the frame'}"
                      + (f" (border fit {border_fit['zero']:.3g} vs {border_fit['free']:.3g})" if border_fit else ""))
    return prep


# --------------------------------------------------------------------------
# fusion proper

def _training_input_lr(prep: PreparedInputs) -> np.ndarray:
    """The LR-grid MSI the LEN learns from (h x w x c); see methods.spectramorph."""
    from ..methods.spectramorph import training_input_lr
    return training_input_lr(prep)


def fuse_with_method(config: FusionConfig, prep: PreparedInputs, progress=None, cancel=None, stages=None,
                     out_hsi=None, finish=None):
    """The configured method (config.method) on a prepared pair -> methods.MethodOutput.
    `finish`: a threading.Event that ends training early (methods with HONOURS_FINISH only;
    the others run as usual)."""
    from ..core.device import configure_threads, resolve_device
    from ..methods import get_method
    stages = stages or _Stages(progress, cancel)
    configure_threads()
    device = resolve_device(config.device)
    method = get_method(config.method)
    kwargs = dict(device=device, progress=progress, cancel=cancel, out_hsi=out_hsi)
    if finish is not None and getattr(method, "HONOURS_FINISH", False):
        kwargs["finish"] = finish
    if getattr(method, "REPORTS_STAGES", False):
        return method.fuse(config, prep, stages=stages, **kwargs)
    with stages("fuse"):
        return method.fuse(config, prep, **kwargs)


def fuse(config: FusionConfig, prep: PreparedInputs, progress=None, cancel=None, stages=None,
         out_hsi=None):
    """The configured method on a prepared pair -> (hr_hsi, E, alle, history, device) (the
    round-one interface; fuse_with_method gives everything)."""
    from ..methods.spectramorph.training import TrainingHistory
    out = fuse_with_method(config, prep, progress, cancel, stages, out_hsi)
    return out.hr_hsi, out.endmembers, out.alle, TrainingHistory(out.loss_history, out.lr_history), out.device


def _score(config: FusionConfig, prep: PreparedInputs, out, cancel):
    """Metrics against truth (synthetic) or consistency figures (real), with the bicubic baseline.
    `out`: the methods.MethodOutput."""
    from ..quality import metrics
    from ..sensors.degradation import bicubic_upsample
    if prep.truth is not None:
        bicubic = bicubic_upsample(prep.lr_hsi, prep.ratio, value_range=prep.value_range)  # as the result
        return metrics.compute_all(prep.truth, np.asarray(out.hr_hsi), prep.ratio, cancel=cancel), \
            metrics.compute_all(prep.truth, bicubic, prep.ratio, cancel=cancel), None
    from ..quality import consistency as cons
    srf_raw, offset = prep.msi_model()
    masks = {} if prep.masks is None else {"lr_valid": ~prep.masks.lr_out, "hr_valid": ~prep.masks.hr_out}
    if out.latents is not None:
        # band chunk by band chunk from latents x basis: the whole HR-HSI (and its bicubic twin)
        # may not fit in memory
        figures = cons.consistency_from_latent(out.latents, out.basis, prep.lr_hsi, prep.hr_msi, srf_raw,
                                               prep.ratio, prep.psf, offset=offset, cancel=cancel,
                                               value_range=prep.value_range, **masks)
    else:
        # a result streamed to its file (GLP-HS): read back band chunk by band chunk, in the
        # engine's scale (before the map to the input's units); or in memory
        if hasattr(out.hr_hsi, "read_bands"):
            def bands(b0, b1):
                return out.hr_hsi.read_bands(b0, b1, unmapped=True)
        else:
            def bands(b0, b1):
                return np.asarray(out.hr_hsi[:, :, b0:b1])
        figures = cons.consistency_by_bands(bands, out.hr_hsi.shape, prep.lr_hsi, prep.hr_msi, srf_raw, prep.ratio,
                                            prep.psf, offset=offset, cancel=cancel, **masks)
    # Where to trust the result: per LR pixel, how far the two images disagree through the SRF,
    # and how far the result degraded back is from the LR-HSI (the scores' maps)
    ev.check_cancel(cancel)
    pair = cons.pair_misfit(prep.hr_msi, prep.lr_hsi, prep.ratio, prep.psf, srf_raw, offset,
                            boundary="zero" if (prep.boundary or "zero") == "zero" else "free")
    if prep.masks is not None:
        pair[prep.masks.lr_out] = np.nan
    figures["_misfit"] = np.stack([pair, figures.pop("_lr_error_map")], axis=2)
    figures.update({"srf_note": prep.srf_note, "psf_note": prep.psf_note,
                    "training_input": prep.training_input, "srf_fit": prep.srf_fit})
    return None, None, figures


def reduced_pair(prep: PreparedInputs, cancel=None):
    """Wald's protocol: (PreparedInputs of both inputs degraded by r, the LR-HSI they are scored
    against (cropped to a multiple of r))."""
    from ..quality import consistency as cons
    hr_red, lr_red, lr_ref = cons.reduced_resolution_inputs(prep.hr_msi, prep.lr_hsi, prep.ratio, prep.psf,
                                                            cancel=cancel)
    sub = PreparedInputs(mode="real", hr_msi=hr_red, lr_hsi=lr_red, srf=prep.srf, ratio=prep.ratio,
                         psf=prep.psf, wavelengths=prep.wavelengths, srf_note=prep.srf_note,
                         training_input=prep.training_input, srf_estimate=prep.srf_estimate,
                         srf_gain_offset=prep.srf_gain_offset, boundary="zero", lr_units=prep.lr_units)
    return sub, lr_ref


def _reduced_resolution(config: FusionConfig, prep: PreparedInputs, progress, cancel) -> dict:
    """Wald's protocol: degrade both inputs by r, fuse, score against the original LR-HSI.
    `config`: the settings the result was made with (epochs cut to those run when training
    was ended early, so the check judges the method as it ran)."""
    from ..quality import metrics
    from ..sensors.degradation import bicubic_upsample
    sub, lr_ref = reduced_pair(prep, cancel)
    k = min(config.num_endmembers, sub.lr_hsi.shape[0] * sub.lr_hsi.shape[1], sub.lr_hsi.shape[2])
    quiet = None  # the sub-run's epochs would confuse a progress bar of the main run
    out = fuse_with_method(config.replace(num_endmembers=k), sub, progress=quiet, cancel=cancel)
    return {"fusion": metrics.compute_all(lr_ref, np.asarray(out.hr_hsi), prep.ratio, cancel=cancel),
            "bicubic": metrics.compute_all(lr_ref, bicubic_upsample(sub.lr_hsi, prep.ratio), prep.ratio,
                                           cancel=cancel),
            "shape": list(lr_ref.shape)}


# A real-world result bigger than this streams to its file during inference instead of being
# held in memory (a 2048 x 2048 x 200 float32 result is 3.2 GB).
STREAM_RESULT_BYTES = 512 << 20


def _result_path(config: FusionConfig) -> Path:
    return Path(config.output_dir) / f"hr_hsi{_RESULT_SUFFIX[config.output_file_type]}"


def _open_result_stream(config: FusionConfig, prep: PreparedInputs, staged):
    """A ResultWriter for the HR-HSI when it should stream to disk, else None. It writes into
    the run's staging folder `staged` (None: the run writes no files). First refuses a run whose
    remaining stages cannot fit in memory (memory.check_run)."""
    from ..core.memory import check_run
    H, W = prep.hr_msi.shape[:2]
    nbytes = H * W * prep.num_hsi_bands * 4
    # (a GeoTIFF result is written whole at the end, by rasterio: it is not streamed)
    streaming = staged is not None and prep.mode == "real" and nbytes > STREAM_RESULT_BYTES \
        and config.output_file_type != "geotiff"
    # before the fusion allocates anything: refuse, with the estimate, what cannot fit
    check_run(config, prep, streaming)
    if not streaming:
        return None
    from ..io import ResultWriter
    log.info("result of %.1f GB streams to %s during inference", nbytes / 1e9, _result_path(config))
    return ResultWriter(staged.path(_result_path(config).name), (H, W, prep.num_hsi_bands),
                        wavelengths=prep.wavelengths)


def run_fusion(config: FusionConfig, progress: Optional[Callable] = None, cancel=None,
               inputs: Optional[FusionInputs] = None, write_outputs: bool = True,
               finish_training=None, write_figures: bool = True) -> FusionResult:
    """Run SpectraMorph end to end; see docs/pipeline_api.md.

    `finish_training` (a threading.Event): set while the network trains, it ends training at
    the next chunk or epoch and the run goes on -- inference, refinement, scores, outputs --
    with the model as trained so far (`result.training_stopped`, run.json and the log say at
    which epoch). Only the final training honours it: auto-selection's short trainings run
    to their end (a token set during selection gives a final training of one epoch), and
    methods that train no network ignore it."""
    stages = _Stages(progress, cancel)
    if config.method != "glp":
        # torch's first import and its optimizer's first step (which imports hundreds of
        # modules) take seconds and cannot be interrupted: done before the stages, so a cancel
        # request during any stage is not held up by them (a no-op afterwards)
        _warm_up_torch()
    log_handler = _start_log(config) if write_outputs else None
    stream = staged = None
    try:
        if write_outputs:
            # every output goes to a staging folder, moved into output_dir only when all are complete
            staged = _check_output_dir(config.output_dir)
        with stages("load"):
            prep = prepare_inputs(config, inputs, progress, cancel)
        log.info("HR-MSI %s, LR-HSI %s, ratio %d; %s", prep.hr_msi.shape, prep.lr_hsi.shape,
                 prep.ratio, prep.srf_note)
        selection = None
        run_config = config
        if config.auto_select and config.method == "spectramorph":
            from .selection import select_settings
            with stages("select"):
                selection = select_settings(config, prep, progress=progress, cancel=cancel)
            run_config = selection["config"]
            ev.emit(progress, ev.Message("info", selection["summary"]))
            log.info("auto-selection: %s", selection["summary"])
        stream = _open_result_stream(config, prep, staged)
        units = _output_units(config, prep)
        no_data = None if prep.masks is None else prep.masks.hr_out
        if stream is not None and (units is not None or no_data is not None):
            offset_, span_ = units or (0.0, 1.0)          # rows reach the file in the input's units,
            stream.set_value_map(span_, offset_, nan_mask=no_data)    # NaN where there is no data
        out = fuse_with_method(run_config, prep, progress, cancel, stages, out_hsi=stream, finish=finish_training)
        hr_hsi, endmembers, alle = out.hr_hsi, out.endmembers, out.alle
        stopped = _training_stopped(out)
        if stopped is not None:
            text = (f"training stopped early at epoch {stopped['epoch']} of {stopped['epochs']}: the result is "
                    f"made with the model as trained so far")
            log.info(text)
            ev.emit(progress, ev.Message("info", text))
        with stages("metrics"):
            metrics_, bicubic_metrics, consistency = _score(run_config, prep, out, cancel)
            if consistency is not None:
                check_config = run_config if stopped is None else run_config.replace(epochs=max(1, stopped["epoch"]))
                consistency["reduced_resolution"] = _reduced_resolution(check_config, prep, progress, cancel)
                from ..quality.consistency import quality_warnings
                # the SRF-fit warning, when due, came from prepare_inputs already
                consistency["warnings"] = quality_warnings(None, consistency["lr_consistency"],
                                                           consistency["msi_consistency"])
                consistency["warnings"] += _local_misfit_warnings(consistency.get("_misfit"))
                if consistency["warnings"]:
                    consistency["warnings"] = [w_ + " " + MISFIT_POINTER for w_ in consistency["warnings"]]
        # Scores above were taken in the engine's scale; the result itself goes back to the
        # LR-HSI's units (the affine map of the normalisation undone).
        if units is not None:
            hr_hsi, endmembers = _to_input_units(hr_hsi, endmembers, units, streamed=stream is not None)
        if no_data is not None:
            if stream is None:
                hr_hsi = np.asarray(hr_hsi)
                hr_hsi[no_data] = np.nan
            if alle is not None:
                alle = np.array(alle, dtype=np.float32)
                alle[no_data] = np.nan
        misfit = None if consistency is None else consistency.pop("_misfit", None)
        result = FusionResult(hr_hsi=hr_hsi, endmembers=endmembers, alle=alle, misfit=misfit,
                              units="input" if units is not None else "normalized",
                              loss_history=list(out.loss_history), lr_history=list(out.lr_history),
                              prepared=prep, metrics=metrics_, bicubic_metrics=bicubic_metrics,
                              consistency=consistency, timings=stages.timings, device=out.device,
                              warnings=list(prep.warnings) + list((consistency or {}).get("warnings", [])),
                              method=run_config.method, method_info=out.info,
                              selection=None if selection is None else
                              {k: v for k, v in selection.items() if k != "config"},
                              config_used=run_config, training_stopped=stopped)
        for text in result.warnings[len(prep.warnings):]:
            ev.emit(progress, ev.Message("warning", text))
        log.info("%s: %s", short_name(result.method), facts_text(result_figures(result)))
        if metrics_:
            log.info("metrics (%s): %s", short_name(result.method), _fmt(metrics_))
            log.info("bicubic: %s", _fmt(bicubic_metrics))
        if write_outputs:
            with stages("save"):
                result.output_files = write_result(config, result, progress, cancel, stream=stream,
                                                   draw_figures=write_figures,
                                                   staged=staged)
                stream = None
            result.timings = stages.timings
            _write_run_json(config, result, staged)
            _commit_outputs(config, result, staged, cancel)
            staged = None
        return result
    finally:
        if stream is not None:          # cancelled or failed: the partial result file goes
            stream.abort()
        if staged is not None:          # ... and so does everything else: output_dir is untouched
            staged.abort()
        if log_handler is not None:
            logging.getLogger("spectramorph_engine").removeHandler(log_handler)
            log_handler.close()


MISFIT_POINTER = "Where: see the misfit map (misfit.npy or misfit.tif beside the result; Misfit in the app)."
# A local disagreement between the two images: LR pixels whose misfit exceeds this many times
# the scene's median (and MISFIT_MIN_ABS), when they are at least MISFIT_MIN_SHARE of the scene.
MISFIT_LOCAL_FACTOR = 10.0
MISFIT_MIN_ABS = 0.03
MISFIT_MIN_SHARE = 0.005


def _local_misfit_warnings(misfit) -> list:
    if misfit is None:
        return []
    pair = misfit[:, :, 0]
    ok = np.isfinite(pair)
    if not ok.any():
        return []
    median = float(np.median(pair[ok]))
    high = ok & (pair > max(MISFIT_LOCAL_FACTOR * median, MISFIT_MIN_ABS))
    share = float(high.sum()) / float(ok.sum())
    if share < MISFIT_MIN_SHARE:
        return []
    return [f"{int(high.sum())} LR pixels ({100 * share:.1f}%) disagree between the HR-MSI and the LR-HSI "
            f"far more than the rest of the scene (misfit above {MISFIT_LOCAL_FACTOR:g}x its median): a change "
            f"between the two acquisitions (moved objects, clouds, shadows) or a misregistration; the result "
            f"is less reliable there."]


def _training_stopped(out) -> Optional[dict]:
    """{"epoch": run, "epochs": configured} when the method's training was ended early, else None."""
    training = (out.info or {}).get("training") or {}
    if not training.get("stopped_early"):
        return None
    return {"epoch": int(training["epochs_run"]), "epochs": int(training["epochs"])}


def _output_units(config: FusionConfig, prep: PreparedInputs):
    """(offset, span) that takes the result to the LR-HSI's units, or None (synthetic mode, or
    output_scale: normalized)."""
    if prep.lr_units is None or config.output_scale != "input":
        return None
    return prep.lr_units


def _to_input_units(hr_hsi, endmembers, units, streamed: bool):
    """The result cube (in place: it can be large) and the endmember spectra mapped by
    x * span + offset; a streamed cube went through the same map on its way to the file."""
    offset, span = units
    if not streamed:
        hr_hsi = np.asarray(hr_hsi)
        hr_hsi *= np.float32(span)
        hr_hsi += np.float32(offset)
    if endmembers is not None:
        endmembers = (np.asarray(endmembers, dtype=np.float64) * span + offset).astype(np.float32)
    return hr_hsi, endmembers


@functools.lru_cache(maxsize=1)
def _warm_up_torch() -> None:
    import torch
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([p])
    p.sum().backward()
    opt.step()


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in d.items())


# --------------------------------------------------------------------------
# outputs

_RESULT_SUFFIX = {"numpy": ".npy", "matlab": ".mat", "h5": ".h5", "geotiff": ".tif"}


def _check_output_dir(folder):
    """The staging folder of a run's outputs (outputs.StagedOutputs): refuses an output folder
    that cannot be written before any work starts, and first completes or removes what a killed
    earlier run left there."""
    from ..io.outputs import StagedOutputs
    return StagedOutputs(folder)


def _commit_outputs(config: FusionConfig, result: FusionResult, staged, cancel=None) -> None:
    """The last step of a run: all outputs move into output_dir together (a cancel is still
    honoured before it); a streamed result is then reopened lazily from its final place."""
    ev.check_cancel(cancel)
    staged.commit()
    save_config(config, Path(config.log_dir) / "config_used.yaml")
    if not isinstance(result.hr_hsi, np.ndarray) or isinstance(result.hr_hsi, np.memmap):
        from ..io import load_cube
        extra = config.output_file_type in ("matlab", "h5") and result.endmembers is not None
        # the result now lives in its file: a memory map / lazy dataset stands in for it
        result.hr_hsi = load_cube(result.output_files["hr_hsi"], key="hr_hsi" if extra else None, lazy=True).data


def write_result(config: FusionConfig, result: FusionResult, progress=None, cancel=None,
                 stream=None, staged=None, draw_figures: bool = True) -> dict:
    """Write the HR-HSI, figures and scores for config.output_dir, all or nothing: into the
    staging folder `staged` (outputs.StagedOutputs; the caller commits it), or, when None,
    into one made and committed here. The cancel token is checked before each file.
    `stream`: the ResultWriter the HR-HSI already went into (completed here, last).
    Returns {what: final path}."""
    from ..quality import figures
    from ..io import atomic_write_text, save_cube
    own = staged is None
    if own:
        staged = _check_output_dir(config.output_dir)
    try:
        files = {}
        prep = result.prepared
        name = _result_path(config).name
        extra = None
        if config.output_file_type in ("matlab", "h5") and result.endmembers is not None:
            extra = {"endmembers": result.endmembers.astype(np.float32), "abundances": result.alle}
        if stream is None:
            ev.check_cancel(cancel)
            save_cube(staged.path(name), result.hr_hsi, wavelengths=prep.wavelengths, extra=extra,
                      geo=prep.geo, geotiff=config.output_file_type == "geotiff")
        if name.endswith(".npy") and prep.wavelengths is None:
            staged.obsolete(Path(name).stem + "_wavelengths.txt")   # it described the previous result
        # the classical methods have no endmembers / ALLE; `draw_figures` False: not drawn (the app
        # keeps runs without them -- matplotlib holds the interpreter for a second or more on a
        # big scene, which froze the window -- and draws them when a run is exported)
        if result.endmembers is not None and draw_figures:
            for what, make in (("endmembers", lambda: figures.endmember_figure(result.endmembers, prep.wavelengths)),
                               ("abundances", lambda: figures.abundance_figure(result.alle))):
                ev.check_cancel(cancel)
                fig = make()
                ev.check_cancel(cancel)     # drawing and encoding a figure each take a moment
                fname = f"{what}.{config.figure_format}"
                figures.save_figure(fig, staged.path(fname))
                files[what] = str(staged.final(fname))
        if result.metrics is not None:
            ev.check_cancel(cancel)
            atomic_write_text(staged.path("metrics.json"),
                              json_dumps({"method": result.method, result.method: result.metrics,
                                          "bicubic": result.bicubic_metrics, "ratio": prep.ratio}))
            files["metrics"] = str(staged.final("metrics.json"))
        if result.consistency is not None:
            ev.check_cancel(cancel)
            atomic_write_text(staged.path("consistency.json"), json_dumps(result.consistency))
            files["consistency"] = str(staged.final("consistency.json"))
        if result.misfit is not None:
            ev.check_cancel(cancel)
            geotiff = config.output_file_type == "geotiff"
            fname = "misfit.tif" if geotiff else "misfit.npy"
            lr_geo = None if prep.geo is None else prep.geo.scaled(prep.ratio)      # the LR grid
            save_cube(staged.path(fname), result.misfit, geo=lr_geo, geotiff=geotiff)
            files["misfit"] = str(staged.final(fname))
            staged.obsolete("misfit.npy" if geotiff else "misfit.tif")
        if stream is not None:
            ev.check_cancel(cancel)
            for key, value in (extra or {}).items():
                stream.set_extra(key, value)
            stream.close()
        files = {"hr_hsi": str(staged.final(name)), **files}
        if own:
            ev.check_cancel(cancel)
            staged.commit()
        return files
    finally:
        if own:
            staged.abort()          # no-op after a commit


def export_outputs(config: FusionConfig, result: FusionResult, progress=None, cancel=None) -> dict:
    """Every output of a finished run -- the result cube, figures, scores, misfit map, run.json
    and config_used.yaml -- written into config.output_dir (in config.output_file_type), all or
    nothing, as a run with write_outputs would have written them. `config`: the settings that
    made `result`, with the output folder and file type wanted (the app's "Write all outputs"
    of a kept run). The result may be memory-mapped. Returns {what: final path}."""
    import dataclasses
    staged = _check_output_dir(config.output_dir)
    try:
        files = write_result(config, result, progress, cancel, staged=staged)
        exported = dataclasses.replace(result, output_files=dict(files))
        _write_run_json(config, exported, staged)
        ev.check_cancel(cancel)
        staged.commit()
        staged = None
        save_config(config, Path(config.log_dir) / "config_used.yaml")
        return exported.output_files
    finally:
        if staged is not None:
            staged.abort()


def _versions() -> dict:
    import scipy
    import torch
    from ..core.version import __version__
    return {"spectramorph": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__}


def _write_run_json(config: FusionConfig, result: FusionResult, staged) -> None:
    """run.json into the staging folder; it lists the outputs at their final places."""
    from ..io import atomic_write_text
    prep = result.prepared
    figures = result_figures(result)
    run = {
        "config": config.to_dict(),
        "mode": prep.mode,
        "shapes": {"hr_msi": list(prep.hr_msi.shape), "lr_hsi": list(prep.lr_hsi.shape),
                   "hr_hsi": list(result.hr_hsi.shape)},
        "ratio": prep.ratio,
        "srf": prep.srf_note,
        "training_input": prep.training_input,
        "units": result.units if prep.lr_units is None else
        {"result": result.units, "lr_hsi_offset": prep.lr_units[0], "lr_hsi_span": prep.lr_units[1],
         "note": "the engine works on the LR-HSI mapped by (x - offset) / span (its 1st and 99th "
                 "percentiles to 0 and 1); 'input' results are mapped back"},
        "device": result.device,
        "method": result.method,
        "method_info": result.method_info,
        "auto_select": result.selection,
        "config_used": result.config_used.to_dict() if result.config_used is not None else None,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        # in the method's own terms: a training loss, a solver's objective, or neither
        "method_figures": figures,
        **({"final_loss": figures["final_loss"]} if "final_loss" in figures else {}),
        "training_stopped_early": result.training_stopped,
        "warnings": result.warnings,
        "versions": _versions(),
        "outputs": result.output_files,
    }
    if prep.masks is not None:
        run["nodata"] = prep.masks.summary()
    atomic_write_text(staged.path("run.json"), json_dumps(run))
    result.output_files["run"] = str(staged.final("run.json"))


def _start_log(config: FusionConfig):
    """Log file in log_dir for the duration of a run: the run's records are added to
    spectramorph.log in one atomic replace when the run ends (however it ends); a killed
    run's temporary log is removed by the next run."""
    from ..io.atomic import AtomicLogHandler, remove_temporaries
    folder = Path(config.log_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"log folder '{folder}' cannot be written: {exc.strerror or exc}") from None
    remove_temporaries(folder)
    handler = AtomicLogHandler(folder / "spectramorph.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("spectramorph_engine")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler
