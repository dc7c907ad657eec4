"""The fusion pipeline: config -> inputs -> endmembers -> trained LEN -> HR-HSI.

`prepare_inputs` does everything before training (loading, normalising,
making the synthetic pair, choosing the SRF) and is cheap enough for live
previews; `run_fusion` continues with NMF, training, inference, scoring and
writing the outputs. Progress goes out as `events`; a `threading.Event`
cancels. Nothing here prints.
"""
from __future__ import annotations

import json
import logging
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import events as ev
from .config import FusionConfig, SRF_PRESET_BANDS, save_config
from .errors import InputError

log = logging.getLogger(__name__)


@dataclass
class FusionInputs:
    """Arrays already in memory; a field left None is loaded from the config's files."""
    truth: Optional[np.ndarray] = None
    hr_msi: Optional[np.ndarray] = None
    lr_hsi: Optional[np.ndarray] = None
    wavelengths: Optional[np.ndarray] = None


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
    srf_gain_offset: Optional[tuple] = None  # (gain (c,), offset (c,)) fitted for an SRF file

    @property
    def num_hsi_bands(self) -> int:
        return self.lr_hsi.shape[2]


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


def _as_cube(arr, what: str, allow_2d: bool = False) -> np.ndarray:
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
    bad = int(a.size - np.count_nonzero(np.isfinite(a)))
    if bad:
        raise InputError(f"{what} holds {bad} NaN or Inf values")
    return a


def _normalise(arr, what: str) -> np.ndarray:
    from .degradation import normalize_percentile
    try:
        return normalize_percentile(arr)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def _load(path, key, what: str, config_key: str):
    from .io import load_cube
    if not path:
        raise InputError(f"config key '{config_key}' is not set: {what} is needed")
    return load_cube(path, key=key)


def _resolve_wavelengths(config: FusionConfig, inputs: FusionInputs, cube_wl, num_bands: int):
    """Wavelengths in nm from (in order) the in-memory inputs, the config, the file."""
    wl = inputs.wavelengths
    source = "given"
    if wl is None and config.wavelengths is not None:
        if isinstance(config.wavelengths, str):
            from .io import load_wavelengths
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
    from . import psf as psf_mod
    if config.provide_psf:
        return psf_mod.load_psf(config.psf_file)
    return psf_mod.make_psf(config.psf_type, config.sigma, config.kernel_size)


def _preset_or_file_srf(config: FusionConfig, num_msi: int, num_hsi: int, wavelengths):
    """SRF from a file (provide_srf / srf_source file) or a preset, with a note saying which."""
    from . import srf as srf_mod
    use_file = config.srf_source == "file" or (config.srf_source == "auto" and config.provide_srf)
    if use_file:
        srf = srf_mod.load_srf(config.srf_file, num_hsi, wavelengths=wavelengths)
        return srf, f"custom SRF from '{config.srf_file}'"
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
        return _prepare_synthetic(config, inputs)
    return _prepare_real(config, inputs, progress, cancel)


def _prepare_synthetic(config: FusionConfig, inputs: FusionInputs) -> PreparedInputs:
    from .degradation import make_synthetic_pair
    cube_wl = None
    if inputs.truth is not None:
        raw = inputs.truth
        what = "the ground-truth cube"
    else:
        cube = _load(config.mat_file, config.mat_key, "synthetic mode needs a ground-truth cube", "mat_file")
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
    """Integer ratio between an HR-MSI and an LR-HSI, or InputError naming both shapes."""
    (H, W), (h, w) = hr_shape[:2], lr_shape[:2]
    if H % h or W % w or H // h != W // w:
        raise InputError(f"HR-MSI {tuple(hr_shape)} and LR-HSI {tuple(lr_shape)} are not an integer "
                         f"ratio apart (need H = r*h and W = r*w)")
    r = H // h
    if r < 2:
        raise InputError(f"HR-MSI {tuple(hr_shape)} and LR-HSI {tuple(lr_shape)} have ratio {r}; "
                         f"fusion needs an HR-MSI at least 2x finer")
    return r


def _prepare_real(config: FusionConfig, inputs: FusionInputs, progress, cancel) -> PreparedInputs:
    from . import srf_estimation as est_mod
    from . import srf as srf_mod
    cube = None
    if inputs.hr_msi is not None:
        hr_raw, hr_what = inputs.hr_msi, "the HR-MSI"
    else:
        cube = _load(config.hr_msi_file, None, "real-world mode needs an HR-MSI file", "hr_msi_file")
        hr_raw, hr_what = cube.data, f"HR-MSI '{config.hr_msi_file}'"
    cube_wl = None
    if inputs.lr_hsi is not None:
        lr_raw, lr_what = inputs.lr_hsi, "the LR-HSI"
    else:
        cube = _load(config.lr_hsi_file, None, "real-world mode needs an LR-HSI file", "lr_hsi_file")
        lr_raw, lr_what, cube_wl = cube.data, f"LR-HSI '{config.lr_hsi_file}'", cube.wavelengths
    hr_msi = _normalise(_as_cube(hr_raw, hr_what, allow_2d=True), hr_what)
    lr_hsi = _normalise(_as_cube(lr_raw, lr_what), lr_what)
    del hr_raw, lr_raw, cube          # the raw cubes can be as big as the normalised ones
    ratio = infer_ratio(hr_msi.shape, lr_hsi.shape)
    c, num_bands = hr_msi.shape[2], lr_hsi.shape[2]
    if c >= num_bands:
        raise InputError(f"{hr_what} has {c} bands and {lr_what} {num_bands}: the HR image must have "
                         f"fewer bands than the hyperspectral one (are the files swapped?)")
    wl, _ = _resolve_wavelengths(config, inputs, cube_wl, num_bands)
    declared = config.num_bands_msi_non_synthetic
    if declared is not None and declared != c and not config.provide_srf:
        raise InputError(f"config key 'num_bands_msi_non_synthetic' is {declared} but {hr_what} has {c} bands")
    psf = _psf_from_config(config)
    warnings: list = []
    estimate = None
    has_file = bool(config.srf_file) and (config.provide_srf or config.srf_source == "file")
    source = config.srf_source
    if source == "auto":
        source = "file" if has_file else "estimate"
    if source == "file":
        srf = srf_mod.load_srf(config.srf_file, num_bands, wavelengths=wl)
        note = f"custom SRF from '{config.srf_file}'"
        if srf.shape[0] != c:
            raise InputError(f"SRF file '{config.srf_file}' has {srf.shape[0]} bands but {hr_what} has {c}")
        gain, offset, file_sigma = est_mod.fit_gain_offset(hr_msi, lr_hsi, ratio, srf)
        note += " (gain and offset per band fitted on the pair)"
    elif source == "preset":
        srf, note = _preset_or_file_srf(config.replace(srf_source="preset", provide_srf=False), c,
                                        num_bands, wl)
    else:  # estimate from the pair
        ev.emit(progress, ev.Message("info", "estimating the SRF from the image pair"))
        estimate = est_mod.estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wl)
        srf = estimate.srf_normalized
        note = (f"SRF estimated from the image pair (fit {estimate.psnr:.1f} dB PSNR, "
                f"blur sigma {estimate.psf_sigma:g} px)")
    if source == "file":
        srf_fit = est_mod.preset_fit(hr_msi, lr_hsi, ratio, gain[:, None] * srf, psf_sigma=file_sigma,
                                     offset=offset)
    elif estimate is None:
        srf_fit = est_mod.preset_fit(hr_msi, lr_hsi, ratio, srf)
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
    fit_psnr = srf_fit.get("psnr") if srf_fit else None
    if fit_psnr is not None and fit_psnr < 25.0 and training_input == "srf":
        warnings.append(f"The SRF explains the HR-MSI poorly (fit {fit_psnr:.1f} dB PSNR): the result may be a "
                        f"recoloured HR-MSI. Try srf_source: estimate, training_input: msi_lr, or a measured SRF file.")
    # The blur between the pair matters twice: to bring the HR-MSI to the LR grid (msi_lr) and
    # to degrade the result back (consistency). A PSF file wins; else the blur fitted on the
    # pair (the config's psf_type/sigma describe synthetic mode's own degradation only).
    if config.provide_psf:
        psf_note = f"PSF from '{config.psf_file}'"
    else:
        if estimate is None and source != "file":
            # fitted for the blur only; the SRF in use stays the one chosen above
            estimate_blur = est_mod.estimate_srf(hr_msi, lr_hsi, ratio, wavelengths=wl)
            psf = estimate_blur.psf
            psf_note = f"Gaussian blur fitted on the pair (sigma {estimate_blur.psf_sigma:g} px)"
        elif estimate is not None:
            psf = estimate.psf
            psf_note = f"Gaussian blur fitted on the pair (sigma {estimate.psf_sigma:g} px)"
        else:   # an SRF file: its gain/offset fit found the blur already
            psf = est_mod.gaussian_kernel(file_sigma)
            psf_note = f"Gaussian blur fitted on the pair (sigma {file_sigma:g} px)"
    for w_ in warnings:
        ev.emit(progress, ev.Message("warning", w_))
    return PreparedInputs(mode="real", hr_msi=hr_msi, lr_hsi=lr_hsi, srf=srf, ratio=ratio, psf=psf,
                          wavelengths=wl, srf_note=note, training_input=training_input,
                          srf_estimate=estimate, srf_fit=srf_fit, warnings=warnings, psf_note=psf_note,
                          srf_gain_offset=(gain, offset) if source == "file" else None)


# --------------------------------------------------------------------------
# fusion proper

def _training_input_lr(prep: PreparedInputs) -> np.ndarray:
    """The LR-grid MSI the LEN learns from (h x w x c)."""
    from .degradation import apply_srf
    if prep.training_input == "msi_lr":
        from .consistency import _degrade
        return _degrade(prep.hr_msi, prep.ratio, prep.psf)
    if prep.srf_estimate is not None:
        from .srf_estimation import apply_estimated_srf
        return apply_estimated_srf(prep.lr_hsi, prep.srf_estimate)
    out = apply_srf(prep.lr_hsi, prep.srf).astype(np.float32)
    if prep.srf_gain_offset is not None:
        gain, offset = prep.srf_gain_offset
        out = (out * gain.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
    return out


def fuse(config: FusionConfig, prep: PreparedInputs, progress=None, cancel=None, stages=None,
         out_hsi=None):
    """NMF + training + inference on a prepared pair -> (hr_hsi, E, alle, history, device)."""
    import torch
    from .device import configure_threads, resolve_device
    from .inference import coarse_prior_lr, infer
    from .model import LatentEstimationNetwork
    from .training import train_len
    from .unmixing import extract_endmembers

    stages = stages or _Stages(progress, cancel)
    configure_threads()
    device = resolve_device(config.device)
    h, w, num_bands = prep.lr_hsi.shape
    limit = min(h * w, num_bands)
    if config.num_endmembers > limit:
        raise InputError(f"config key 'num_endmembers' is {config.num_endmembers}; it must be at most "
                         f"min(LR pixels, bands) = {limit}")
    with stages("nmf"):
        endmembers = extract_endmembers(prep.lr_hsi, config.num_endmembers, device=device,
                                        progress=progress, cancel=cancel)
    with stages("train"):
        lr_msi = _training_input_lr(prep)
        x = lr_msi.reshape(-1, lr_msi.shape[2])
        if config.use_prior:
            prior = coarse_prior_lr(prep.lr_hsi, config.prior_downsample)
            x = np.concatenate([x, prior.reshape(-1, num_bands)], axis=1)
        inputs_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        targets_t = torch.from_numpy(np.ascontiguousarray(prep.lr_hsi.reshape(-1, num_bands),
                                                          dtype=np.float32)).to(device)
        e_t = torch.from_numpy(np.ascontiguousarray(endmembers, dtype=np.float32)).to(device)
        torch.manual_seed(config.seed)
        model = LatentEstimationNetwork(x.shape[1], config.hidden_size, config.num_endmembers,
                                        seed=config.seed).to(device)
        history = train_len(model, inputs_t, targets_t, e_t, epochs=config.epochs,
                            scheduler=config.scheduler, init_lr=config.init_lr, max_lr=config.max_lr,
                            final_lr=config.final_lr, batch_size=config.training_batch_size,
                            seed=config.seed, progress=progress, cancel=cancel)
        del inputs_t, targets_t
    with stages("inference"):
        hr_hsi, alle = infer(model, prep.hr_msi, e_t, lr_hsi=prep.lr_hsi if config.use_prior else None,
                             ratio=prep.ratio, batch_size=config.inference_batch_size, device=device,
                             out_hsi=out_hsi, progress=progress, cancel=cancel)
    return hr_hsi, endmembers, alle, history, str(device)


def _score(config: FusionConfig, prep: PreparedInputs, hr_hsi, endmembers, alle, progress, cancel):
    """Metrics against truth (synthetic) or consistency figures (real), with the bicubic baseline."""
    from . import metrics
    from .degradation import bicubic_upsample
    if prep.truth is not None:
        bicubic = bicubic_upsample(prep.lr_hsi, prep.ratio)
        return metrics.compute_all(prep.truth, hr_hsi, prep.ratio), \
            metrics.compute_all(prep.truth, bicubic, prep.ratio), None
    from . import consistency as cons
    offset = getattr(prep.srf_estimate, "offset", None)
    srf_raw = getattr(prep.srf_estimate, "srf", prep.srf)
    if prep.srf_gain_offset is not None:
        gain, offset = prep.srf_gain_offset
        srf_raw = gain[:, None] * prep.srf
    # From ALLE x E, band chunk by band chunk: the whole HR-HSI (and its bicubic twin) may not fit.
    figures = cons.consistency_from_latent(alle, endmembers, prep.lr_hsi, prep.hr_msi, srf_raw, prep.ratio,
                                           prep.psf, offset=offset, cancel=cancel)
    figures.update({"srf_note": prep.srf_note, "psf_note": prep.psf_note,
                    "training_input": prep.training_input, "srf_fit": prep.srf_fit})
    return None, None, figures


def _reduced_resolution(config: FusionConfig, prep: PreparedInputs, progress, cancel) -> dict:
    """Wald's protocol: degrade both inputs by r, fuse, score against the original LR-HSI."""
    from . import consistency as cons
    from . import metrics
    from .degradation import bicubic_upsample
    hr_red, lr_red, lr_ref = cons.reduced_resolution_inputs(prep.hr_msi, prep.lr_hsi, prep.ratio, prep.psf)
    k = min(config.num_endmembers, lr_red.shape[0] * lr_red.shape[1], lr_red.shape[2])
    sub = PreparedInputs(mode="real", hr_msi=hr_red, lr_hsi=lr_red, srf=prep.srf, ratio=prep.ratio,
                         psf=prep.psf, wavelengths=prep.wavelengths, srf_note=prep.srf_note,
                         training_input=prep.training_input, srf_estimate=prep.srf_estimate,
                         srf_gain_offset=prep.srf_gain_offset)
    quiet = None  # the sub-run's epochs would confuse a progress bar of the main run
    fused, *_ = fuse(config.replace(num_endmembers=k), sub, progress=quiet, cancel=cancel)
    return {"fusion": metrics.compute_all(lr_ref, fused, prep.ratio),
            "bicubic": metrics.compute_all(lr_ref, bicubic_upsample(lr_red, prep.ratio), prep.ratio),
            "shape": list(lr_ref.shape)}


# A real-world result bigger than this streams to its file during inference instead of being
# held in memory (a 2048 x 2048 x 200 float32 result is 3.2 GB).
STREAM_RESULT_BYTES = 512 << 20


def _result_path(config: FusionConfig) -> Path:
    return Path(config.output_dir) / f"hr_hsi{_RESULT_SUFFIX[config.output_file_type]}"


def _open_result_stream(config: FusionConfig, prep: PreparedInputs, write_outputs: bool):
    """A ResultWriter for the HR-HSI when it should stream to disk, else None."""
    H, W = prep.hr_msi.shape[:2]
    nbytes = H * W * prep.num_hsi_bands * 4
    if not write_outputs or prep.mode != "real" or nbytes <= STREAM_RESULT_BYTES:
        return None
    from .io import ResultWriter
    log.info("result of %.1f GB streams to %s during inference", nbytes / 1e9, _result_path(config))
    return ResultWriter(_result_path(config), (H, W, prep.num_hsi_bands), wavelengths=prep.wavelengths)


def run_fusion(config: FusionConfig, progress: Optional[Callable] = None, cancel=None,
               inputs: Optional[FusionInputs] = None, write_outputs: bool = True) -> FusionResult:
    """Run SpectraMorph end to end; see docs/pipeline_api.md."""
    stages = _Stages(progress, cancel)
    log_handler = _start_log(config) if write_outputs else None
    stream = None
    try:
        if write_outputs:
            _check_output_dir(config.output_dir)
        with stages("load"):
            prep = prepare_inputs(config, inputs, progress, cancel)
        log.info("HR-MSI %s, LR-HSI %s, ratio %d; %s", prep.hr_msi.shape, prep.lr_hsi.shape,
                 prep.ratio, prep.srf_note)
        stream = _open_result_stream(config, prep, write_outputs)
        hr_hsi, endmembers, alle, history, device = fuse(config, prep, progress, cancel, stages,
                                                         out_hsi=stream)
        with stages("metrics"):
            metrics_, bicubic_metrics, consistency = _score(config, prep, hr_hsi, endmembers, alle,
                                                            progress, cancel)
            if consistency is not None:
                consistency["reduced_resolution"] = _reduced_resolution(config, prep, progress, cancel)
                from .consistency import quality_warnings
                # the SRF-fit warning, when due, came from prepare_inputs already
                consistency["warnings"] = quality_warnings(None, consistency["lr_consistency"],
                                                           consistency["msi_consistency"])
        result = FusionResult(hr_hsi=hr_hsi, endmembers=endmembers, alle=alle,
                              loss_history=list(history.loss), lr_history=list(history.lr),
                              prepared=prep, metrics=metrics_, bicubic_metrics=bicubic_metrics,
                              consistency=consistency, timings=stages.timings, device=device,
                              warnings=list(prep.warnings) + list((consistency or {}).get("warnings", [])))
        for text in result.warnings[len(prep.warnings):]:
            ev.emit(progress, ev.Message("warning", text))
        if metrics_:
            log.info("metrics: %s", _fmt(metrics_))
            log.info("bicubic: %s", _fmt(bicubic_metrics))
        if write_outputs:
            with stages("save"):
                result.output_files = write_result(config, result, progress, cancel, stream=stream)
                stream = None
            result.timings = stages.timings
            _write_run_json(config, result)
        return result
    finally:
        if stream is not None:          # cancelled or failed: the partial result file goes
            stream.abort()
        if log_handler is not None:
            logging.getLogger("spectramorph_engine").removeHandler(log_handler)
            log_handler.close()


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in d.items())


# --------------------------------------------------------------------------
# outputs

_RESULT_SUFFIX = {"numpy": ".npy", "matlab": ".mat", "h5": ".h5"}


def _check_output_dir(folder) -> None:
    p = Path(folder)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".spectramorph-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"output folder '{p}' cannot be written: {exc.strerror or exc}") from None


def write_result(config: FusionConfig, result: FusionResult, progress=None, cancel=None,
                 stream=None) -> dict:
    """Write the HR-HSI, figures and scores into config.output_dir, each file atomically.
    `stream`: the ResultWriter the HR-HSI already went into (committed here, last)."""
    from . import figures
    from .io import atomic_write_text, save_cube
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    prep = result.prepared
    hsi_path = _result_path(config)
    extra = None
    if config.output_file_type in ("matlab", "h5"):
        extra = {"endmembers": result.endmembers.astype(np.float32), "abundances": result.alle}
    if stream is None:
        save_cube(hsi_path, result.hr_hsi, wavelengths=prep.wavelengths, extra=extra)
    ev.check_cancel(cancel)
    for name, fig in (("endmembers", figures.endmember_figure(result.endmembers, prep.wavelengths)),
                      ("abundances", figures.abundance_figure(result.alle))):
        path = out / f"{name}.{config.figure_format}"
        figures.save_figure(fig, path)
        files[name] = str(path)
    if result.metrics is not None:
        path = out / "metrics.json"
        atomic_write_text(path, json.dumps({"spectramorph": result.metrics, "bicubic": result.bicubic_metrics,
                                            "ratio": prep.ratio}, indent=2))
        files["metrics"] = str(path)
    if result.consistency is not None:
        path = out / "consistency.json"
        atomic_write_text(path, json.dumps(_jsonable(result.consistency), indent=2))
        files["consistency"] = str(path)
    if stream is not None:
        from .io import load_cube
        for name, value in (extra or {}).items():
            stream.set_extra(name, value)
        stream.close()
        # the result now lives in its file: a memory map / lazy dataset stands in for it
        result.hr_hsi = load_cube(hsi_path, key="hr_hsi" if extra else None, lazy=True).data
    files = {"hr_hsi": str(hsi_path), **files}
    return files


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _versions() -> dict:
    import scipy
    import torch
    from . import __version__
    return {"spectramorph": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__}


def _write_run_json(config: FusionConfig, result: FusionResult) -> None:
    from .io import atomic_write_text
    out = Path(config.output_dir)
    prep = result.prepared
    run = {
        "config": config.to_dict(),
        "mode": prep.mode,
        "shapes": {"hr_msi": list(prep.hr_msi.shape), "lr_hsi": list(prep.lr_hsi.shape),
                   "hr_hsi": list(result.hr_hsi.shape)},
        "ratio": prep.ratio,
        "srf": prep.srf_note,
        "training_input": prep.training_input,
        "device": result.device,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "final_loss": result.final_loss,
        "warnings": result.warnings,
        "versions": _versions(),
        "outputs": result.output_files,
    }
    path = out / "run.json"
    atomic_write_text(path, json.dumps(_jsonable(run), indent=2))
    result.output_files["run"] = str(path)
    log_dir = Path(config.log_dir)
    save_config(config, log_dir / "config_used.yaml")


def _start_log(config: FusionConfig):
    """Log file in log_dir for the duration of a run."""
    folder = Path(config.log_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / "spectramorph.log", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"log folder '{folder}' cannot be written: {exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("spectramorph_engine")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler
