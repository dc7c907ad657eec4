"""SpectraMorph (arXiv 2510.20814): NMF endmembers from the LR-HSI, a per-pixel network trained
at low resolution, linear mixing at high resolution -- then, by default, the observation-
consistency refinement (refinement.py) that makes the result agree with both images.

Stages reported: nmf, train, inference, refine.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from ...core import events as ev
from ...core.errors import InputError
from .. import MethodOutput

log = logging.getLogger(__name__)

NAME = "spectramorph"
TITLE = "SpectraMorph"
REPORTS_STAGES = True
HONOURS_FINISH = True       # fuse() takes `finish`: training may end early, the rest goes on
TAKES_ENDMEMBERS = True     # fuse() takes `endmembers` already extracted from this pair
USES = {
    "psf": "Uses the PSF (given, or the blur fitted on a real pair) in its refinement against the LR-HSI.",
    "srf": "Uses the SRF to make its low-resolution training input (or the HR-MSI itself with training_input "
           "msi_lr) and in its refinement against the HR-MSI.",
    "settings": "Uses the endmember, network, training, prior, refinement and auto-selection settings.",
    "ignores": "Ignores the HySure settings.",
}


@contextmanager
def _no_stage(_name):
    yield


def training_input_lr(prep) -> np.ndarray:
    """The LR-grid MSI the network learns from (h x w x c)."""
    from ...sensors.degradation import apply_srf
    if prep.training_input == "msi_lr":
        from ...quality.consistency import _degrade
        return _degrade(prep.hr_msi, prep.ratio, prep.psf)
    if prep.srf_estimate is not None:
        from ...sensors.srf_estimation import apply_estimated_srf
        return apply_estimated_srf(prep.lr_hsi, prep.srf_estimate)
    out = apply_srf(prep.lr_hsi, prep.srf).astype(np.float32)
    if prep.srf_gain_offset is not None:
        gain, offset = prep.srf_gain_offset
        out = (out * gain.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)
    return out


# refine_subspace null: the LR-HSI's signal dimension (sensors/subspace.py; it replaced a fixed
# max(K, 10): +0.14 dB mean on the blind cases, bench/README.md "Estimated subspace"), at least K
# (the network's own spectra span K) and at most max(K, REFINE_MAX_SUBSPACE): above the old 10 no
# measured case gained (held-out scene: P 11 -0.01 to -0.07 dB, P 12 -0.09, P 15 -0.20) while an
# iteration's cost grows with P, and a clean real cube reads far more (Urban's 34 x 78 pixels: 45).
# So the estimate only ever lowers P: simple scenes get faster and better, rich ones stay as before.
REFINE_MAX_SUBSPACE = 10


def subspace_choice(config, prep):
    """(P, record): the refinement's subspace dimension -- the config's, or estimated from the
    LR-HSI's pixels with data (refine_subspace null) -- at most the LR-HSI's bands and pixels;
    `record` says how an estimate was made (None: P was given)."""
    h, w, C = prep.lr_hsi.shape
    wanted = config.refine_subspace
    record = None
    if wanted is None:
        import time
        from ...sensors.subspace import signal_subspace
        t0 = time.perf_counter()
        pixels = prep.lr_hsi if prep.lr_valid is None else prep.lr_hsi[prep.lr_valid]
        low, high = config.num_endmembers, max(config.num_endmembers, REFINE_MAX_SUBSPACE)
        count = int(np.prod(pixels.shape[:-1]))
        if count < C:
            # fewer pixels than bands: the sample correlation is rank-deficient and the count
            # unreliable (the Urban pairs, 36-152 LR pixels for 162 bands, read 4-8 and lost up
            # to 0.12 dB against P 10): the fixed P of before
            wanted = high
            record = {"signal_dim": None, "clamp": [low, high], "pixels": count,
                      "skipped": f"fewer LR pixels ({count}) than bands ({C}): P {high} as before"}
        else:
            found = signal_subspace(pixels)
            wanted = min(max(found.dim, low), high)
            record = {"signal_dim": found.dim, "clamp": [low, high], "pixels": found.pixels,
                      "seconds": round(time.perf_counter() - t0, 4)}
        log.info("refinement subspace: %s, P %d", record.get("skipped") or
                 f"{record['signal_dim']} signal dimensions estimated from the LR-HSI", wanted)
    return max(1, min(int(wanted), C, h * w)), record


def msi_model_mse(prep):
    """A real pair's SRF fit residual per band (from the fit PSNR, data range 1): the model error
    the refinement weighs the MSI by (None: not fitted)."""
    fit = prep.srf_fit or {}
    if not fit.get("psnr_per_band"):
        return None
    return 10.0 ** (-np.asarray(fit["psnr_per_band"], dtype=np.float64) / 10.0)


def refinement_settings(config, prep, device) -> dict:
    """The keyword arguments of refinement.refine that come from the config and the pair
    (iterations, TV, border rule), beside the arrays."""
    from .._ops import boundary_for
    return dict(iterations=config.refine_iterations, tv_weight=config.refine_tv_weight,
                tv_iterations=config.refine_iterations, boundary=boundary_for(prep), device=device)


def refinement_terms(config, prep, alle=None, endmembers=None, *, device="cpu", cancel=None, subspace=None):
    """refinement.scene_terms for this config and pair (alle None: without the network's
    residual, which the Dask run sums chunk by chunk); `subspace`: subspace_choice's answer when
    the caller has it (the estimate is made once per scene)."""
    from .refinement import scene_terms
    srf, _ = prep.msi_model()
    P, record = subspace or subspace_choice(config, prep)
    return scene_terms(alle, endmembers, prep.lr_hsi, prep.psf, prep.ratio, srf,
                       subspace_dim=P, trust=config.refine_trust, msi_weight=config.refine_msi_weight,
                       msi_model_mse=msi_model_mse(prep), device=device, cancel=cancel,
                       subspace_estimate=record)


def refine_result(config, prep, alle, endmembers, *, device, progress=None, cancel=None, tile=None, halo=None):
    """refinement.refine with the config's settings (and the boundary rule of the classical methods).
    Tile by tile (tiled_refinement.py) when `tile` (HR pixels) is given, or when the memory
    guard's estimate of the whole-scene solve exceeds the memory available or the refinement's
    working budget (memory.REFINE_BUDGET_BYTES; said in a Message); `halo`: the tiles' halo
    (default tiled_refinement.default_halo)."""
    from ...core import memory
    from .refinement import refine
    from . import tiled_refinement as tr
    srf, offset = prep.msi_model()
    solve = dict(refinement_settings(config, prep, device), progress=progress, cancel=cancel)
    H, W, K = alle.shape
    P, record = subspace_choice(config, prep)
    halo = tr.default_halo(prep.psf, prep.ratio) if halo is None else int(halo)
    if tile is None:
        margin = tr.grid_margin(prep.psf, prep.ratio)
        need = memory.estimate_refinement(prep.hr_msi.shape, P, K, config.refine_tv_weight > 0, margin)
        available = memory.available_bytes()
        scarce = not memory.fits(need, available)
        if scarce or need > memory.REFINE_BUDGET_BYTES:
            budget = min(memory.HEADROOM * available, memory.REFINE_BUDGET_BYTES)
            tile = tr.tile_for_budget(prep.hr_msi.shape, prep.ratio, P, K, config.refine_tv_weight > 0, margin,
                                      halo, budget)
            short = (f"the whole-scene solve would need about {memory.fmt_bytes(need)} of memory and "
                     f"{memory.fmt_bytes(available)} is available" if scarce else
                     f"the whole-scene solve would need about {memory.fmt_bytes(need)} of memory, over the "
                     f"refinement's working budget of {memory.fmt_bytes(memory.REFINE_BUDGET_BYTES)}")
            if tile is None:        # the scene is no wider than a tile's halo: tiling saves nothing
                if scarce:
                    ev.say(progress, "warning", f"the refinement runs on the whole scene although {short}", log)
            else:
                count = len(list(tr.tiles(H, W, prep.ratio, tile, halo)))
                ev.say(progress, "info", f"the refinement runs tile by tile ({count} tiles of {tile} x {tile} "
                                         f"pixels, halo {halo}): {short}", log)
    if tile is None:
        return refine(alle, endmembers, prep.lr_hsi, prep.hr_msi, prep.psf, prep.ratio, srf, offset,
                      msi_model_mse=msi_model_mse(prep), subspace_dim=P, trust=config.refine_trust,
                      msi_weight=config.refine_msi_weight, subspace_estimate=record, **solve)
    terms = refinement_terms(config, prep, alle, endmembers, device=device, cancel=cancel, subspace=(P, record))
    return tr.refine_tiled(alle, endmembers, prep.lr_hsi, prep.hr_msi, prep.psf, prep.ratio, srf, offset,
                           terms=terms, tile=tile, halo=halo, **solve)


def _with_correction(alle: np.ndarray, ref):
    """(latents, alle): the maps with the refinement's correction beside them, H x W x (K + P),
    and alle as a view of their first K channels. One array instead of the maps plus their
    concatenated copy: 117 MB less held through the scores and the save at 2048^2, K = 7."""
    K = alle.shape[2]
    latents = np.empty(alle.shape[:2] + (K + ref.delta.shape[2],), dtype=np.float32)
    latents[:, :, K:] = ref.delta
    ref.delta = None            # the only other reference: the correction goes before the maps are copied
    latents[:, :, :K] = alle
    return latents, latents[:, :, :K]


@dataclass
class FittedNetwork:
    """What inference needs of a trained run: the network, the endmembers (numpy and on the
    device), whether the coarse spectral prior is an input, and the training history."""
    model: object
    endmembers: np.ndarray
    endmembers_t: object
    use_prior: bool
    history: object
    pixels: int = 0              # LR pixels the network trained on (a sample under max_training_pixels)
    pixels_available: int = 0   # LR pixels with data


def fit_network(config, prep, *, device, progress=None, cancel=None, stages=None, finish=None,
                endmembers=None) -> FittedNetwork:
    """NMF endmembers and the trained network on a prepared pair (everything before inference;
    the tiled mode runs this once and the inference chunk by chunk elsewhere). `finish` and
    `endmembers` as in `fuse`."""
    import torch
    from .inference import coarse_prior_blocks
    from .model import LatentEstimationNetwork
    from .training import spread_sample, train_len
    from .unmixing import extract_endmembers

    stages = stages or _no_stage
    h, w, num_bands = prep.lr_hsi.shape
    valid = prep.lr_valid      # LR pixels with data (None: all); the others are left out of learning
    used = h * w if valid is None else int(valid.sum())
    limit = min(used, num_bands)
    if config.num_endmembers > limit:
        raise InputError(f"config key 'num_endmembers' is {config.num_endmembers}; it must be at most "
                         f"min(LR pixels{' with data' if valid is not None else ''}, bands) = {limit}")
    use_prior = config.use_prior_for(prep.hr_msi.shape[2], prep.ratio)
    with stages("nmf"):
        if endmembers is None:
            nmf_input = prep.lr_hsi if valid is None else prep.lr_hsi[valid][:, None, :]
            endmembers = extract_endmembers(nmf_input, config.num_endmembers, device=device,
                                            progress=progress, cancel=cancel, method=config.endmember_method,
                                            max_iter=config.nmf_max_iter, tol=config.nmf_tol)
        elif endmembers.shape != (config.num_endmembers, num_bands):
            raise ValueError(f"endmembers given as {endmembers.shape}, the run needs "
                             f"{(config.num_endmembers, num_bands)}")
    with stages("train"):
        lr_msi = training_input_lr(prep)
        ev.check_cancel(cancel)          # bringing a big HR-MSI to the LR grid takes a while
        x = lr_msi.reshape(-1, lr_msi.shape[2])
        targets = prep.lr_hsi.reshape(-1, num_bands)
        keep = None if valid is None else valid.reshape(-1)
        positions = np.arange(h * w) if keep is None else np.flatnonzero(keep)
        sample = spread_sample(positions, h, w, config.max_training_pixels, config.seed)
        if sample is not None:      # past the cap more pixels teach little and cost every epoch
            keep = positions[sample]
            log.info("training on a sample of %d of %d LR pixels (max_training_pixels)", keep.size,
                     positions.size)
        if keep is not None:
            x, targets = x[keep], targets[keep]
        prior = None
        if use_prior:
            rows, index = coarse_prior_blocks(prep.lr_hsi, config.prior_downsample, cancel=cancel)
            if keep is not None:
                index = index[keep]
            if sample is not None:  # only the sampled pixels' blocks: the prior's cost follows the sample
                used, index = np.unique(index, return_inverse=True)
                rows = rows[used]
            prior = (torch.from_numpy(rows).to(device), torch.from_numpy(np.ascontiguousarray(index)).to(device))
        inputs_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
        targets_t = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32)).to(device)
        e_t = torch.from_numpy(np.ascontiguousarray(endmembers, dtype=np.float32)).to(device)
        torch.manual_seed(config.seed)
        model = LatentEstimationNetwork(x.shape[1] + (num_bands if use_prior else 0), config.hidden_size,
                                        config.num_endmembers, seed=config.seed).to(device)
        history = train_len(model, inputs_t, targets_t, e_t, epochs=config.epochs,
                            scheduler=config.scheduler, init_lr=config.init_lr, max_lr=config.max_lr,
                            final_lr=config.final_lr, batch_size=config.training_batch_size,
                            seed=config.seed, progress=progress, cancel=cancel, prior=prior,
                            finish=finish)
        trained = int(x.shape[0])
        del inputs_t, targets_t, x, prior
    return FittedNetwork(model=model, endmembers=endmembers, endmembers_t=e_t, use_prior=use_prior,
                         history=history, pixels=trained, pixels_available=int(positions.size))


def refine_again(config, prep, out: MethodOutput, *, device, cancel=None) -> MethodOutput:
    """`out`, a fusion of `prep`, with only its refinement redone at `config`'s settings: the same
    network's maps and endmembers, so what `fuse` with `config` gives where the two configs
    differ in the refinement alone (the TV weight chosen after the reduced-resolution check)."""
    from .inference import mix_latents
    ref = refine_result(config, prep, out.alle, out.endmembers, device=device, cancel=cancel)
    info = dict(out.info, refinement=ref.info)
    latents, alle = _with_correction(out.alle, ref)
    basis = np.concatenate([out.endmembers.astype(np.float32), ref.basis], axis=0)
    hr_hsi = mix_latents(latents, basis, batch_size=config.inference_batch_size, device=device, cancel=cancel,
                         value_range=prep.value_range)
    return replace(out, hr_hsi=hr_hsi, alle=alle, info=info, latents=latents, basis=basis)


def fuse(config, prep, *, device, progress=None, cancel=None, out_hsi=None, stages=None,
         finish=None, endmembers=None) -> MethodOutput:
    """NMF + training + inference (+ refinement) on a prepared pair. `finish` (a threading.Event):
    set during training, it ends training early and the rest runs with the model as trained
    so far (info["training"] records the epochs run). `endmembers` (K x C): those
    extract_endmembers gives for this pair and config (auto-selection's candidates share them);
    None extracts them."""
    from .inference import infer, mix_latents

    stages = stages or _no_stage
    fitted = fit_network(config, prep, device=device, progress=progress, cancel=cancel, stages=stages,
                         finish=finish, endmembers=endmembers)
    model, endmembers, e_t, use_prior, history = (fitted.model, fitted.endmembers, fitted.endmembers_t,
                                                  fitted.use_prior, fitted.history)
    with stages("inference"):
        hr_hsi, alle = infer(model, prep.hr_msi, e_t, lr_hsi=prep.lr_hsi if use_prior else None,
                             ratio=prep.ratio, batch_size=config.inference_batch_size, device=device,
                             out_hsi=out_hsi, progress=progress, cancel=cancel, mix=not config.refine,
                             value_range=prep.value_range)
    info = {"prior": use_prior, "num_endmembers": config.num_endmembers,
            "endmember_method": config.endmember_method, "refined": bool(config.refine),
            "training": {"epochs": int(config.epochs), "epochs_run": history.epochs_run,
                         "stopped_early": bool(history.stopped_early),
                         "loop_seconds": round(history.seconds, 4), "pixels": fitted.pixels,
                         "pixels_available": fitted.pixels_available,
                         "max_training_pixels": config.max_training_pixels}}
    if config.refine:
        with stages("refine"):
            ref = refine_result(config, prep, alle, endmembers, device=device, progress=progress, cancel=cancel)
            latents, alle = _with_correction(alle, ref)
            basis = np.concatenate([endmembers.astype(np.float32), ref.basis], axis=0)
            hr_hsi = mix_latents(latents, basis, out_hsi=out_hsi, batch_size=config.inference_batch_size,
                                 device=device, progress=progress, cancel=cancel, stage="refine",
                                 value_range=prep.value_range)
            info["refinement"] = ref.info
    else:
        latents, basis = alle, endmembers
    return MethodOutput(hr_hsi=hr_hsi, endmembers=endmembers, alle=alle, loss_history=list(history.loss),
                        lr_history=list(history.lr), info=info, device=str(device),
                        latents=latents, basis=basis)
