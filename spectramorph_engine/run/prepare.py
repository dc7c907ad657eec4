"""Everything before fusion (`prepare_inputs`): loading the cubes, the synthetic pair or the real
one (ratio, wavelengths, nodata masks and their fill, percentile scaling into the engine's
scale), the PSF and the SRF in use (given, preset, camera or estimated on the pair) and the
border rule read from the pair.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ..core import events as ev
from ..core.errors import InputError
from .config import FusionConfig, SRF_PRESET_BANDS
from .results import FusionInputs, PreparedInputs

log = logging.getLogger(__name__)


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


def _in_memory(arr):
    """An in-memory array as it is; a file-backed one (an HDF5 dataset the app keeps open) read
    whole here, where the pair is prepared."""
    return arr if isinstance(arr, np.ndarray) else np.asarray(arr)


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
    from .alignment import invalid_pixels
    hr_bad = invalid_pixels(hr, nodata_of(hr_geo))
    lr_bad = invalid_pixels(lr, nodata_of(lr_geo))
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
    ev.say(progress, "info", text, log)
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


def prepare_inputs(config: FusionConfig, inputs: Optional[FusionInputs] = None,
                   progress: Optional[Callable] = None, cancel=None) -> PreparedInputs:
    """Load / build the HR-MSI and LR-HSI pair and the sensor models of a run."""
    inputs = inputs or FusionInputs()
    if inputs.prepared is not None and inputs.prepared.mode == ("synthetic" if config.synthetic else "real"):
        # said again: a run's log and event stream carry what its preparation warned of
        ev.say(progress, "info", "the pair as prepared when it was opened (nothing read or fitted again)", log)
        for text in inputs.prepared.warnings:
            ev.say(progress, "warning", text, log)
        return inputs.prepared
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


def _camera_from_product(config: FusionConfig, camera, hr_what: str, wavelengths, progress):
    """(config, note): the HR-MSI product's camera (io: Cube.camera, e.g. a Sentinel-2 L2A product's
    sentinel2_10m) as msi_camera when the config names no camera and leaves the SRF to `auto`
    with no SRF file, and the LR-HSI's wavelengths cover the camera's bands (else nothing changes)."""
    if not camera or config.msi_camera or config.srf_source != "auto" or (config.provide_srf and config.srf_file):
        return config, ""
    from ..sensors.srf import camera_srf
    try:            # the LR-HSI must know and cover the camera's bands; else the SRF is estimated
        if wavelengths is None:
            raise InputError("the LR-HSI's wavelengths are unknown")
        camera_srf(camera, len(wavelengths), wavelengths)
    except InputError as exc:
        ev.say(progress, "warning", f"{hr_what} is a {camera} product, but its camera SRF is not used: {exc}", log)
        return config, ""
    ev.say(progress, "info", f"msi_camera: {camera}, chosen from the product {hr_what}", log)
    return config.replace(msi_camera=camera), f" (camera chosen from the product {hr_what})"


def _prepare_real(config: FusionConfig, inputs: FusionInputs, progress, cancel) -> PreparedInputs:
    from ..sensors import srf_estimation as est_mod
    from ..sensors import psf_estimation as psf_est
    from ..sensors import srf_fit as fit_mod
    from ..sensors import srf as srf_mod
    from ..io.georef import check_same_ground
    cube = None
    hr_geo, lr_geo, hr_camera = inputs.hr_geo, inputs.lr_geo, inputs.hr_camera
    if inputs.hr_msi is not None:
        hr_raw, hr_what = _in_memory(inputs.hr_msi), "the HR-MSI"
    else:
        cube = _load(config.hr_msi_file, None, "real-world mode needs an HR-MSI file", "hr_msi_file", cancel,
                     allow_invalid=True)
        hr_raw, hr_what, hr_geo, hr_camera = cube.data, f"HR-MSI '{config.hr_msi_file}'", cube.geo, cube.camera
    cube_wl = None
    if inputs.lr_hsi is not None:
        lr_raw, lr_what = _in_memory(inputs.lr_hsi), "the LR-HSI"
    else:
        cube = _load(config.lr_hsi_file, None, "real-world mode needs an LR-HSI file", "lr_hsi_file", cancel,
                     allow_invalid=True)
        lr_raw, lr_what, cube_wl, lr_geo = cube.data, f"LR-HSI '{config.lr_hsi_file}'", cube.wavelengths, cube.geo
    alignment = None
    if config.align == "auto":     # georeferenced files: brought onto nested grids (run/alignment.py)
        from .alignment import align_pair
        hr_raw, hr_geo, lr_raw, lr_geo, alignment = align_pair(
            hr_raw, hr_what, hr_geo, lr_raw, lr_what, lr_geo, nodata=config.nodata, progress=progress)
    else:
        # Georeferenced files must cover the same ground on nested grids (said before the shapes
        # are compared: an extent off by one LR pixel is named as such)
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
    config, camera_note = _camera_from_product(config, hr_camera, hr_what, wl, progress)
    psf = _psf_from_config(config)
    blur_model = config.psf_estimation
    warnings: list = list(pending_warnings)
    estimate = None
    has_file = bool(config.srf_file) and (config.provide_srf or config.srf_source == "file")
    file_centre = start_kernel = None   # a given SRF's Gaussian off the pixel, for a misregistered pair
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
        note += camera_note
        gain, offset, file_sigma = fit_mod.fit_gain_offset(hr_msi, lr_hsi, ratio, srf, cancel=cancel, valid=lr_valid)
        note += " (gain and offset per band fitted on the pair)"
        if blur_model == "free" and not config.provide_psf:
            moved = psf_est.misregistered_gain_start(hr_msi, lr_hsi, ratio, srf, file_sigma, valid=lr_valid,
                                                     cancel=cancel)
            if moved is not None:
                gain, offset, file_sigma, file_centre = moved
                start_kernel = psf_est.shifted_gaussian(file_sigma, file_centre)
    elif source == "preset":
        srf, note = _preset_or_file_srf(config.replace(srf_source="preset", provide_srf=False), c,
                                        num_bands, wl)
    else:  # estimate from the pair
        ev.say(progress, "info", "estimating the SRF from the image pair", log)
        if config.provide_psf:      # the user's kernel is the blur: the SRF is fitted through it
            estimate = est_mod.estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wl, cancel=cancel, valid=lr_valid,
                                            kernel=psf)
        else:
            estimate = psf_est.estimate_sensors(hr_msi, lr_hsi, ratio, wavelengths=wl, cancel=cancel,
                                                valid=lr_valid, psf_model=blur_model)
        srf = estimate.srf_normalized
        note = (f"SRF estimated from the image pair (fit {estimate.psnr:.1f} dB PSNR, "
                f"blur {estimate.blur_label()})")
    if source in ("file", "camera"):
        # the fit through the Gaussian the gain and offset were fitted through (off-centre or not)
        srf_fit = fit_mod.preset_fit(hr_msi, lr_hsi, ratio, gain[:, None] * srf, psf_sigma=file_sigma,
                                     offset=offset, cancel=cancel, valid=lr_valid, kernel=start_kernel)
    elif estimate is None:
        srf_fit = fit_mod.preset_fit(hr_msi, lr_hsi, ratio, srf, cancel=cancel, valid=lr_valid)
    else:
        srf_fit = {
        "psnr": float(estimate.psnr), "psnr_per_band": [float(v) for v in estimate.psnr_db],
        "r2_per_band": [float(v) for v in estimate.r2]}
    training_input = config.training_input
    if training_input == "auto":
        if estimate is not None:
            training_input, reason = fit_mod.choose_training_input(hr_msi, lr_hsi, ratio, estimate)
            note += f"; training input: {training_input} ({reason})"
        else:
            training_input = "srf"
    # The blur between the pair matters twice: to bring the HR-MSI to the LR grid (msi_lr) and
    # to degrade the result back (consistency). A PSF file wins; else the blur fitted on the
    # pair (the config's psf_type/sigma describe synthetic mode's own degradation only).
    blur_fitted, fitted_sigma, psf_estimate = False, None, None
    if config.provide_psf:
        psf_note = f"PSF from '{config.psf_file}'"
    else:
        if estimate is None and source not in ("file", "camera"):
            # fitted for the blur only; the SRF in use stays the one chosen above
            estimate_blur = psf_est.estimate_sensors(hr_msi, lr_hsi, ratio, wavelengths=wl, cancel=cancel,
                                                     valid=lr_valid, psf_model=blur_model)
            blur_fitted = True
            blur_from = estimate_blur
        elif estimate is not None:
            blur_from = estimate
        else:   # an SRF file / camera: its gain/offset fit found the Gaussian width; the kernel given that SRF
            blur_from = None
            psf, fitted_sigma = est_mod.gaussian_kernel(file_sigma), float(file_sigma)
            psf_note = f"Gaussian blur fitted on the pair (sigma {file_sigma:g} px)"
            if file_centre is not None:
                psf = start_kernel
                psf_note = (f"Gaussian blur fitted on the pair (sigma {file_sigma:g} px, centred at "
                            f"({file_centre[0]:+.2f}, {file_centre[1]:+.2f}) px where the LR-HSI is displaced)")
            if blur_model == "free":
                # the kernel and the SRF's gain and offset in turn (the SRF's fit above, which the
                # refinement's MSI weight reads, stays the Gaussian's: bench/README "A given SRF")
                psf_estimate, gain, offset = psf_est.refine_blur_given(
                    hr_msi, lr_hsi, ratio, srf, gain, offset, start_sigma=file_sigma,
                    start_centre=file_centre or (0.0, 0.0), valid=lr_valid, cancel=cancel)
                if psf_estimate.estimated:
                    psf = psf_estimate.kernel
                    psf_note = (f"{psf_estimate.form} blur kernel {psf.shape[0]} x {psf.shape[1]} estimated on the "
                                f"pair (Gaussian fit sigma {file_sigma:g} px)")
        if blur_from is not None:
            psf = blur_from.psf
            fitted_sigma = float(blur_from.psf_sigma)
            psf_estimate = blur_from.psf_estimate
            form = psf_estimate.form if psf_estimate is not None else "free-form"
            psf_note = (f"Gaussian blur fitted on the pair (sigma {blur_from.psf_sigma:g} px)"
                        if blur_from.kernel is None else
                        f"{form} blur kernel {psf.shape[0]} x {psf.shape[1]} estimated on the pair "
                        f"(Gaussian fit sigma {blur_from.psf_sigma:g} px)")
    fit_psnr = srf_fit.get("psnr") if srf_fit else None
    if fit_psnr is not None and fit_psnr < fit_mod.POOR_SRF_FIT_DB and training_input == "srf":
        # the advice follows the same rule as training_input: auto, on the blur fitted on the pair
        blur_fit = estimate if estimate is not None else (estimate_blur if blur_fitted else None)
        verdict = None if blur_fit is None else fit_mod.blur_verdict(blur_fit)
        warnings.append(fit_mod.poor_srf_warning(fit_psnr, source, config.training_input, verdict,
                                                 psf_given=bool(config.provide_psf)))
    for w_ in warnings:
        ev.say(progress, "warning", w_, log)
    prep = PreparedInputs(mode="real", hr_msi=hr_msi, lr_hsi=lr_hsi, srf=srf, ratio=ratio, psf=psf,
                          wavelengths=wl, srf_note=note, training_input=training_input,
                          srf_estimate=estimate, srf_fit=srf_fit, warnings=warnings, psf_note=psf_note,
                          psf_fitted_sigma=fitted_sigma, psf_estimate=psf_estimate,
                          srf_gain_offset=(gain, offset) if source in ("file", "camera") else None,
                          lr_units=(float(lr_offset), float(lr_span)), masks=masks,
                          geo=hr_geo if hr_geo is not None and hr_geo.georeferenced else None,
                          alignment=alignment)
    # Whether the LR-HSI's border was blurred with zeros (a simulated pair) or saw past the frame
    # (a real sensor): the refinement and the classical methods model the border accordingly.
    from ..methods._ops import detect_boundary
    raw_srf, raw_offset = prep.msi_model()
    prep.boundary, border_fit = detect_boundary(hr_msi, lr_hsi, ratio, psf, raw_srf, raw_offset)
    prep.psf_note += (f"; image border: {'zero-padded blur (a simulated pair)' if prep.boundary == 'zero' else 'seen past the frame'}"
                      + (f" (border fit {border_fit['zero']:.3g} vs {border_fit['free']:.3g})" if border_fit else ""))
    return prep
