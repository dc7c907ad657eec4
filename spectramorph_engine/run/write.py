"""A run's files: the result cube, endmembers, abundances, misfit and figures (`write_result`,
`export_outputs` for a result already in memory), the staging folder committed when all are
complete, run.json (provenance: config, versions, timings, method figures) and the run's log.
"""
from __future__ import annotations

import logging
import platform
from pathlib import Path

import numpy as np

from ..core import events as ev
from ..core.errors import InputError
from ..core.strict_json import dumps as json_dumps
from .config import FusionConfig, save_config
from .method_report import result_figures
from .results import FusionResult

log = logging.getLogger(__name__)


def _result_path(config: FusionConfig) -> Path:
    return Path(config.output_dir) / f"hr_hsi{_RESULT_SUFFIX[config.output_file_type]}"


_RESULT_SUFFIX = {"numpy": ".npy", "matlab": ".mat", "h5": ".h5", "geotiff": ".tif"}


def _check_output_dir(folder, config: FusionConfig = None):
    """The staging folder of a run's outputs (outputs.StagedOutputs): refuses an output folder
    that cannot be written before any work starts, and first completes or removes what a killed
    earlier run left there. With `config`: a folder (or anything but a file) standing where one
    of the run's output files will go is refused now, before the run -- the commit would refuse
    it anyway, but only after all the work."""
    from ..io.outputs import StagedOutputs
    if config is not None:
        target = Path(folder).absolute()        # the message names it whole
        result = _result_path(config).name
        names = (result, Path(result).stem + "_wavelengths.txt", "run.json", "metrics.json", "consistency.json",
                 "misfit.npy", "misfit.tif", f"endmembers.{config.figure_format}",
                 f"abundances.{config.figure_format}")
        for name in names:
            there = target / name
            if there.exists() and not there.is_file():
                raise InputError(f"'{there}' is a folder in the way of the output file '{name}': move or "
                                 f"rename it, or choose another output_dir (nothing was run)")
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
        if name.endswith(".npy"):
            side = Path(name).stem + "_wavelengths.txt"
            if prep.wavelengths is None:
                staged.obsolete(side)   # it described the previous result
            elif Path(staged.path(side)).is_file():      # listed like every file the run wrote
                files["wavelengths"] = str(staged.final(side))
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
        used = Path(config.log_dir) / "config_used.yaml"
        save_config(config, used)
        return {**exported.output_files, "config_used": str(used)}
    finally:
        if staged is not None:
            staged.abort()


def _versions() -> dict:
    import scipy
    import torch
    from ..core.version import __version__
    return {"spectramorph": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__}


def psf_record(prep) -> dict:
    """What run.json says of the blur the run used: where it came from, the kernel itself, and
    in real mode what was fitted on the pair (the Gaussian width, the free-form estimate)."""
    rec = {"note": prep.psf_note or None,
           "kernel": None if prep.psf is None else np.round(np.asarray(prep.psf, dtype=np.float64), 8).tolist()}
    if prep.psf_fitted_sigma is not None:
        rec["fitted_gaussian_sigma_px"] = float(prep.psf_fitted_sigma)
    est = getattr(prep, "psf_estimate", None)
    if est is not None:
        rec["estimate"] = {"form": est.form, "support_radius_px": int(est.radius), "smoothness": est.smoothness,
                           "holdout_rmse": est.holdout_rmse, "gaussian_holdout_rmse": est.gaussian_holdout_rmse,
                           "lr_pixels_used": int(est.pixels_used),
                           "moffat_holdout_rmse": est.moffat_holdout_rmse,
                           "moffat_alpha_beta_dy_dx": None if est.moffat is None else list(est.moffat)}
    return rec


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
        "psf": psf_record(prep),
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
    if prep.alignment is not None:
        run["alignment"] = prep.alignment
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
