"""The fusion pipeline, orchestration only: `run_fusion` = prepare (`prepare`), check a real pair
at reduced resolution (`fuse.fuse_reduced`), choose settings (`selection`), fuse and score
(`fuse`), write (`write`), with stage timing, the result's units
and the streamed result file decided here. See docs/pipeline_api.md.

`prepare_inputs` does everything before training (loading, normalising, making the synthetic
pair, choosing the SRF) and is cheap enough for live previews; `run_fusion` continues with
NMF, training, inference, scoring and writing the outputs. Progress goes out as `events`; a
`threading.Event` cancels. Nothing here prints.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Callable, Optional

import numpy as np

from ..core import events as ev
from .config import FusionConfig
from .fuse import _score, _Stages, check_at_chosen_weight, check_training, fuse_reduced, fuse_with_method
from .method_report import facts_text, result_figures, short_name
from .prepare import prepare_inputs
from .results import FusionInputs, FusionResult, PreparedInputs
from .write import _check_output_dir, _commit_outputs, _result_path, _start_log, _write_run_json, write_result

log = logging.getLogger(__name__)


# A real-world result bigger than this streams to its file during inference instead of being
# held in memory (a 2048 x 2048 x 200 float32 result is 3.2 GB).
STREAM_RESULT_BYTES = 512 << 20


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
        # torch's first import takes seconds and cannot be interrupted: done before the
        # stages, so a cancel request during any stage is not held up by it (a no-op afterwards)
        warm_up()
    log_handler = _start_log(config) if write_outputs else None
    stream = staged = None
    try:
        if write_outputs:
            # every output goes to a staging folder, moved into output_dir only when all are complete
            staged = _check_output_dir(config.output_dir, config)
        with stages("load"):
            prep = prepare_inputs(config, inputs, progress, cancel)
        log.info("HR-MSI %s, LR-HSI %s, ratio %d; %s", prep.hr_msi.shape, prep.lr_hsi.shape,
                 prep.ratio, prep.srf_note)
        selection = selection_check = check = None
        run_config = config
        if prep.mode == "real" and min(prep.lr_hsi.shape[:2]) >= prep.ratio:
            # Wald's protocol on the configured settings, before the run: auto-selection builds
            # on this fusion (its configured candidate), and without a selection it is the check
            with stages("check"):
                check = fuse_reduced(config, prep, cancel, progress=progress)
        if config.auto_select and config.method == "spectramorph":
            from .selection import select_settings
            with stages("select"):
                selection = select_settings(config, prep, progress=progress, cancel=cancel, check=check)
            run_config = selection["config"]
            selection_check = selection.pop("reduced_check", None)
            ev.say(progress, "info", selection["summary"], log)
        tv_choice = None
        if run_config.refine_tv_select and run_config.refine and run_config.method == "spectramorph":
            from ..core.device import configure_threads, resolve_device
            from .tv_selection import choose_tv_weight, skip_reason, summary as tv_summary
            configure_threads()
            # a pair the choice is not made for (a given SRF, one band) gets no stage of its own
            with stages("tv") if skip_reason(run_config, prep) is None else contextlib.nullcontext():
                tv_choice = choose_tv_weight(run_config, prep, device=resolve_device(run_config.device),
                                             progress=progress, cancel=cancel)
                # the weight chosen, the choice off: config_used reproduces the run exactly
                before, run_config = run_config, run_config.replace(refine_tv_weight=tv_choice["chosen"],
                                                                    refine_tv_select=False)
                if run_config.refine_tv_weight != before.refine_tv_weight:
                    # the check reports the settings the run uses
                    check, selection_check = check_at_chosen_weight(check, selection_check, before, run_config,
                                                                    cancel)
            ev.say(progress, "info", tv_summary(tv_choice), log)
        if check is not None:
            check.release()             # the report is kept; the pair and the fused cube go
        stream = _open_result_stream(config, prep, staged)
        units = _output_units(config, prep)
        no_data = None if prep.masks is None else prep.masks.hr_out
        if stream is not None and (units is not None or no_data is not None):
            offset_, span_ = units or (0.0, 1.0)          # rows reach the file in the input's units,
            stream.set_value_map(span_, offset_, nan_mask=no_data)    # NaN where there is no data
        out = fuse_with_method(run_config, prep, progress, cancel, stages, out_hsi=stream, finish=finish_training)
        hr_hsi, endmembers, alle = out.hr_hsi, out.endmembers, out.alle
        if tv_choice is not None:
            out.info["tv_selection"] = tv_choice
        stopped = _training_stopped(out)
        if stopped is not None:
            text = (f"training stopped early at epoch {stopped['epoch']} of {stopped['epochs']}: the result is "
                    f"made with the model as trained so far")
            ev.say(progress, "info", text, log)
        with stages("metrics"):
            metrics_, bicubic_metrics, consistency = _score(run_config, prep, out, cancel)
            # the scores were the last to read the refinement's correction beside the maps: from
            # here on the maps alone are kept (a result the app holds would keep both otherwise)
            out.latents = out.basis = None
            if alle is not None and not alle.flags.c_contiguous:
                alle = out.alle = np.ascontiguousarray(alle)
            if consistency is not None:
                # the check trains a fifth of the run's epochs (at most those run when training was
                # ended early), as auto-selection's candidates did
                epochs_run = None if stopped is None else stopped["epoch"]
                epochs, pixels = check_training(run_config, epochs_run)
                h, w = prep.lr_hsi.shape[:2]
                if selection_check is not None and selection_check["epochs"] == epochs:
                    # auto-selection fused this reduced pair with the chosen settings already
                    consistency["reduced_resolution"] = selection_check
                elif check is not None and check.fused_as(run_config, epochs, pixels):
                    consistency["reduced_resolution"] = check.report      # the check before the run
                elif min(h, w) >= prep.ratio:     # training ended before the check's epochs: again
                    consistency["reduced_resolution"] = fuse_reduced(run_config, prep, cancel, epochs_run).report
                else:       # a pair this small has no reduced pair: the result stands, the check is skipped
                    consistency["reduced_resolution"] = {
                        "skipped": f"the LR-HSI ({h} x {w} pixels) is smaller than the ratio {prep.ratio} a side: "
                                   f"no reduced-resolution pair can be made"}
                    ev.say(progress, "info", "reduced-resolution check skipped: "
                           + consistency["reduced_resolution"]["skipped"], log)
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
            ev.say(progress, "warning", text, log)
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
def warm_up() -> None:
    """Import torch (~1,100 modules: 1-2 s) and run one small product (the math library's
    start). An app calls it on a background thread at start-up, so that the interpreter-lock
    pauses of those imports (up to 0.25-0.6 s measured) fall while its window opens rather than
    when Run is pressed. A no-op after the first call. (The training's Adam is the engine's
    own: torch.optim's would import ~830 modules more, see methods.spectramorph.adam.)"""
    import torch
    a = torch.ones(8, 8)
    torch.mm(a, a)


def _fmt(d: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in d.items())
