"""Fusion proper: the method chosen by name (`fuse_with_method`), the scores of its result
(against the truth, or consistency without one) and the reduced-resolution check (Wald's
protocol: `reduced_pair`, `fuse_reduced`).
"""
from __future__ import annotations

import dataclasses

import time
from contextlib import contextmanager

import numpy as np

from ..core import events as ev
from ..core.memory import release_free_memory
from .config import FusionConfig
from .results import PreparedInputs

# The reduced pair of a big scene -- auto-selection's and the reduced-resolution check's, one
# constant so the check can report the selection's fusion of the same crop -- is a centre crop of
# at most this many reduced LR pixels a side: their cost stops growing with the scene (run.json's
# reduced_resolution.crop and the selection's summary say so). No quality-bench scene reaches it;
# a cap of 16 or 24 lost auto-selection's best picks at 512^2 (bench/README, selection replay).
MAX_REDUCED_SIDE = 64
# The check (and auto-selection's candidates, one setting so the check reports the selection's
# fusion) trains a fifth of the run's epochs on at most 1,024 reduced LR pixels: at 1024^2 the
# check at the run's training took 13 s, ~6 at this (bench/README, "The reduced check at the
# selection's training ..."); on that pair the figure read 0.16 dB lower than at full training.
CHECK_EPOCH_FRACTION = 0.2
CHECK_TRAINING_PIXELS = 1024


def check_training(config: FusionConfig, epochs_run=None) -> tuple:
    """(epochs, training pixels) of a fusion of the reduced pair for `config`: a fraction of its
    epochs -- never more than `epochs_run`, the epochs the result's network had when training
    was ended early -- on at most CHECK_TRAINING_PIXELS LR pixels (the run's own cap too)."""
    pixels = CHECK_TRAINING_PIXELS
    epochs = max(1, int(round(config.epochs * CHECK_EPOCH_FRACTION)))
    if epochs_run is not None:
        epochs = max(1, min(epochs, int(epochs_run)))
    return epochs, min(config.max_training_pixels or pixels, pixels)


def reduced_trial(config: FusionConfig, msi_bands: int, ratio: int, max_k: int, epochs: int,
                  pixels: int) -> FusionConfig:
    """The settings a fusion of the reduced pair runs with: `config` with the prior's 'auto'
    resolved for the whole pair, K capped at `max_k` (the reduced pair's pixels and bands; the
    run keeps its K), `epochs` on at most `pixels` LR pixels, auto-selection off. The check and
    auto-selection's candidates both go through here, so the check's fusion is the configured
    candidate's."""
    return config.replace(spec_prior=config.use_prior_for(msi_bands, ratio),
                          num_endmembers=min(config.num_endmembers, max_k), epochs=epochs,
                          max_training_pixels=pixels, auto_select=False)


@dataclasses.dataclass
class ReducedFusion:
    """One fusion of the reduced pair (Wald's protocol) and what scoring it needs."""
    config: FusionConfig            # the settings it was fused with (reduced_trial)
    crop: PreparedInputs            # the whole pair, or its centre crop (MAX_REDUCED_SIDE)
    whole: tuple                    # the whole LR-HSI's rows, cols
    sub: PreparedInputs             # the reduced pair
    lr_ref: np.ndarray              # what it is scored against
    valid: object                   # reduced_reference_valid
    max_k: int                      # the most endmembers the reduced pair allows
    out: object                     # methods.MethodOutput
    report: dict = None             # run.json's reduced_resolution for it
    # the pair's, kept for fused_as once release() has dropped the crop
    msi_bands: int = dataclasses.field(init=False)
    ratio: int = dataclasses.field(init=False)

    def __post_init__(self):
        self.msi_bands, self.ratio = self.crop.hr_msi.shape[2], self.crop.ratio

    def fused_as(self, config: FusionConfig, epochs: int, pixels: int) -> bool:
        """Whether this fusion is the one `config` would make with that training."""
        return self.config == reduced_trial(config, self.msi_bands, self.ratio, self.max_k, epochs, pixels)

    def release(self) -> None:
        """Keep the report and what `fused_as` needs; drop the arrays (the crop, the reduced
        pair, the fused cube: ~120 MB at 2048^2, through the rest of the run otherwise)."""
        self.crop = self.sub = self.lr_ref = self.valid = self.out = None


def reduced_inputs(prep: PreparedInputs, cancel=None) -> tuple:
    """(crop, sub, lr_ref, valid): `prep` cut to MAX_REDUCED_SIDE (`centre_crop`), its reduced
    pair, the LR-HSI that pair is scored against and its pixels with data."""
    crop = centre_crop(prep, MAX_REDUCED_SIDE)
    sub, lr_ref = reduced_pair(crop, cancel)
    return crop, sub, lr_ref, reduced_reference_valid(crop, lr_ref)


def fuse_reduced(config: FusionConfig, prep: PreparedInputs, cancel=None, epochs_run=None,
                 progress=None) -> ReducedFusion:
    """The reduced-resolution check's fusion: the reduced pair of `prep` fused with `config`'s
    settings as `reduced_trial` makes them, then scored (`.report`). `progress` hears it as
    the fraction done of the `check` stage (events.NestedProgress)."""
    whole = prep.lr_hsi.shape[:2]
    crop, sub, lr_ref, valid = reduced_inputs(prep, cancel)
    h, w, bands = sub.lr_hsi.shape
    max_k = min(bands, h * w)
    epochs, pixels = check_training(config, epochs_run)
    trial = reduced_trial(config, prep.hr_msi.shape[2], prep.ratio, max_k, epochs, pixels)
    # the sub-run's own stages and epochs would read as the main run's: a fraction of the stage
    out = fuse_with_method(trial, sub, progress=ev.nested_progress(progress, "check"), cancel=cancel)
    run = ReducedFusion(trial, crop, whole, sub, lr_ref, valid, max_k, out)
    run.report = reduced_check_report(crop, whole, sub, lr_ref, out.hr_hsi, valid, cancel)
    trained = out.info.get("training", {}) if isinstance(out.info, dict) else {}
    if "pixels" in trained:
        run.report.update(epochs=int(trial.epochs), training_pixels=trained["pixels"])
    return run


def check_at_chosen_weight(check: ReducedFusion, selection_check, before: FusionConfig, after: FusionConfig,
                           cancel=None) -> tuple:
    """(check, selection_check) for a run whose TV weight was chosen after the check
    (run/tv_selection.py): `after` is `before` with another refine_tv_weight. Where the check's
    fusion is `before`'s (auto-selection off, or it kept the configured candidate), its refinement
    is redone at the chosen weight -- the same network, one refinement of the reduced pair instead
    of a second fusion -- and the selection's report of it follows. Otherwise the selection's
    report is dropped: the run fuses the reduced pair with `after` when it scores its result."""
    from ..core.device import resolve_device
    from ..methods.spectramorph import refine_again
    epochs, pixels = check_training(before)
    if check is None or check.out is None or not check.fused_as(before, epochs, pixels):
        return check, None
    trial = check.config.replace(refine_tv_weight=after.refine_tv_weight)
    out = refine_again(trial, check.sub, check.out, device=resolve_device(trial.device), cancel=cancel)
    again = ReducedFusion(trial, check.crop, check.whole, check.sub, check.lr_ref, check.valid, check.max_k, out)
    again.report = {**reduced_check_report(check.crop, check.whole, check.sub, check.lr_ref, out.hr_hsi,
                                           check.valid, cancel),
                    **{k: check.report[k] for k in ("epochs", "training_pixels") if k in check.report}}
    if selection_check is not None:
        selection_check = {**again.report, **{k: selection_check[k] for k in ("source", "epochs", "training_pixels")
                                              if k in selection_check}}
    return again, selection_check


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
        release_free_memory()
        dt = time.perf_counter() - t0
        self.timings[name] = self.timings.get(name, 0.0) + dt
        ev.emit(self.progress, ev.StageFinished(name, dt))


def _training_input_lr(prep: PreparedInputs) -> np.ndarray:
    """The LR-grid MSI the LEN learns from (h x w x c); see methods.spectramorph."""
    from ..methods.spectramorph import training_input_lr
    return training_input_lr(prep)


def fuse_with_method(config: FusionConfig, prep: PreparedInputs, progress=None, cancel=None, stages=None,
                     out_hsi=None, finish=None, endmembers=None):
    """The configured method (config.method) on a prepared pair -> methods.MethodOutput.
    `finish`: a threading.Event that ends training early (methods with HONOURS_FINISH only;
    the others run as usual). `endmembers`: already extracted from this pair with this config's
    K and extraction (methods with TAKES_ENDMEMBERS only)."""
    from ..core.device import configure_threads, resolve_device
    from ..methods import get_method
    stages = stages or _Stages(progress, cancel)
    configure_threads()
    device = resolve_device(config.device)
    method = get_method(config.method)
    kwargs = dict(device=device, progress=progress, cancel=cancel, out_hsi=out_hsi)
    if finish is not None and getattr(method, "HONOURS_FINISH", False):
        kwargs["finish"] = finish
    if endmembers is not None and getattr(method, "TAKES_ENDMEMBERS", False):
        kwargs["endmembers"] = endmembers
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
        # one pass over the truth for both: what depends on it alone is computed once
        fused, base = metrics.compute_many(prep.truth, [np.asarray(out.hr_hsi), bicubic], prep.ratio, cancel=cancel)
        return fused, base, None
    from ..quality import consistency as cons
    srf_raw, offset = prep.msi_model()
    masks = {} if prep.masks is None else {"lr_valid": ~prep.masks.lr_out, "hr_valid": ~prep.masks.hr_out}
    # the result is degraded back as the pair was made: past the frame a real sensor saw the scene
    boundary = "zero" if (prep.boundary or "zero") == "zero" else "free"
    masks["boundary"] = boundary
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
    pair = cons.pair_misfit(prep.hr_msi, prep.lr_hsi, prep.ratio, prep.psf, srf_raw, offset, boundary=boundary)
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


def centre_crop(prep: PreparedInputs, side: int) -> PreparedInputs:
    """`prep` cut to the centre side*r x side*r LR pixels (and their HR pixels), so that its
    reduced pair is at most side x side LR pixels; `prep` itself when it is no bigger. The crop
    starts on a multiple of r LR pixels, so the reduced pair's grid is the whole pair's."""
    r = prep.ratio
    h, w = prep.lr_hsi.shape[:2]
    ch, cw = min(h, side * r), min(w, side * r)
    if (ch, cw) == (h, w):
        return prep
    y0, x0 = (h - ch) // 2 // r * r, (w - cw) // 2 // r * r
    lr_rows, lr_cols = slice(y0, y0 + ch), slice(x0, x0 + cw)
    hr_rows, hr_cols = slice(y0 * r, (y0 + ch) * r), slice(x0 * r, (x0 + cw) * r)

    def cut(a, rows, cols):
        return None if a is None else np.ascontiguousarray(a[rows, cols])
    masks = prep.masks
    if masks is not None:
        masks = dataclasses.replace(masks, hr_bad=cut(masks.hr_bad, hr_rows, hr_cols),
                                    lr_bad=cut(masks.lr_bad, lr_rows, lr_cols),
                                    lr_out=cut(masks.lr_out, lr_rows, lr_cols),
                                    hr_out=cut(masks.hr_out, hr_rows, hr_cols))
    return dataclasses.replace(prep, hr_msi=cut(prep.hr_msi, hr_rows, hr_cols),
                               lr_hsi=cut(prep.lr_hsi, lr_rows, lr_cols),
                               truth=cut(prep.truth, hr_rows, hr_cols), masks=masks)


def reduced_reference_valid(prep: PreparedInputs, lr_ref):
    """The pixels of `lr_ref` (reduced_pair's reference) that hold data (h' x w' bool), or None
    when all do: the LR pixels the run left out (nodata, an alignment's empty border) were
    filled from their neighbours and must not be scored as if the fusion had reproduced them."""
    if prep.masks is None:
        return None
    valid = ~np.asarray(prep.masks.lr_out, dtype=bool)[:lr_ref.shape[0], :lr_ref.shape[1]]
    return None if valid.all() else valid


def reduced_check_report(crop: PreparedInputs, whole_shape, sub: PreparedInputs, lr_ref, fused,
                         valid=None, cancel=None) -> dict:
    """run.json's reduced_resolution: `fused` (the reduced pair `sub` of `crop` fused) and the
    bicubic baseline scored against `lr_ref` over the `valid` pixels; `whole_shape`: the whole
    LR-HSI's h, w (a crop smaller than it is said)."""
    from ..quality import metrics
    from ..sensors.degradation import bicubic_upsample
    fused, base = metrics.compute_many(lr_ref, [np.asarray(fused), bicubic_upsample(sub.lr_hsi, crop.ratio)],
                                       crop.ratio, cancel=cancel, valid=valid)
    report = {"fusion": fused, "bicubic": base, "shape": list(lr_ref.shape)}
    if tuple(crop.lr_hsi.shape[:2]) != tuple(whole_shape[:2]):
        report["crop"] = (f"a centre crop of {crop.lr_hsi.shape[0]}x{crop.lr_hsi.shape[1]} of the "
                          f"{whole_shape[0]}x{whole_shape[1]} LR pixels")
    if valid is not None:
        report["pixels_scored"] = int(valid.sum())
    return report
