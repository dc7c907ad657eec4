"""One big scene across Dask workers: train once, infer chunk by chunk.

    row = run_tiled(config, client, chunk=512)        # client: a dask.distributed Client

1. One task (`fit_for_tiles`, on one worker) prepares the pair, learns the
   endmembers and trains the network exactly as `run_fusion` does, and returns
   a `TiledModel`: the network's weights, the endmembers, the affine maps of
   both images and, with `refine` on, the refinement's global quantities that
   the pair gives (subspace, noise, MSI weight: refinement.scene_terms) with its
   sensor model (small: no image in it).
2. The TiledModel is broadcast to every worker. The HR-MSI becomes a dask array
   whose chunks are read lazily from its file (GeoTIFF windows, HDF5 / v7.3 .mat
   hyperslabs, .npy / ENVI memory maps). With the refinement, one pass over the
   chunks sums the network's LR residual (each chunk's LR pixels, from a window
   the blur's reach wider) for the prior weight, and the spec is broadcast again
   with it. `map_blocks` then turns each chunk into the matching chunk of the
   HR-HSI: `inference.infer` (the network is per pixel), and with the
   refinement, on the chunk's window (the chunk plus the halo of
   tiled_refinement.py, HR-MSI and LR-HSI read lazily) the refinement with the
   scene's quantities, kept on the chunk: the whole-scene refinement tile by
   tile, each chunk refined on a worker.
3. The chunks go straight into a zarr store (`hr_hsi.zarr`), written by the
   workers into the run's staging folder; run.json and the endmember figure
   follow, and everything moves into output_dir together (outputs.StagedOutputs).

No worker holds the HR-HSI cube, nor the driver: a worker holds one chunk (and
its window) at a time. The training worker holds what training needs: the
LR-HSI and the HR-MSI (few bands; its 1/99 percentiles and the SRF fit need all
of it).

What tiled mode does not do (`NOT_DONE`, recorded in run.json): auto-selection
(it compares whole-scene runs on the reduced pair) is turned off; a scene with
nodata pixels is not refined (its masks are not carried to the chunks); the
classical methods (glp, hysure: global) and synthetic mode (its HR-MSI is made
from a ground-truth cube in memory) are refused; no consistency figures, misfit
map, abundance maps or log file are written. Each chunk's inference equals
`run_fusion`'s to float tolerance; its refinement equals the whole-scene one to
float tolerance with a fixed number of ADMM iterations, and is close with the
default stopping rule, which each chunk applies to its own residuals, and
within ~16 pixels of the scene's edge, where a real pair's free margin depends
on the FFT grid (tiled_refinement.py, bench/README.md).

Dask is imported inside the functions that need it only.
"""
from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import numpy as np

from ..run.config import FusionConfig, from_dict
from ..core.errors import Cancelled, InputError

DEFAULT_CHUNK = 512
RESULT_NAME = "hr_hsi.zarr"
NOT_DONE = [
    "auto-selection (auto_select) turned off: it compares whole-scene refinements on the reduced pair",
    "the TV weight's choice (refine_tv_select) turned off: it fuses a crop of the whole pair",
    "the refinement turned off on a scene with nodata pixels",
    "no consistency figures, misfit map, abundance maps or log file",
]


@dataclass
class TiledModel:
    """Everything a worker needs to turn an HR-MSI chunk into an HR-HSI chunk."""
    token: str
    weights: dict                       # the network's state, as numpy arrays
    in_features: int
    hidden_size: int
    endmembers: np.ndarray              # K x C float32, engine scale
    use_prior: bool
    ratio: int
    hr_file: str
    lr_file: str
    hr_shape: tuple                     # H, W, c (c = 1 for a 2-D pan image)
    num_bands: int                      # C
    hr_map: tuple                       # (low, span): HR-MSI -> (x - low) / span
    lr_map: tuple                       # the LR-HSI's
    hr_nodata: Optional[float]
    lr_nodata: Optional[float]
    lr_has_nodata: bool
    value_range: tuple                  # (low, high or None) the result is clipped to (engine scale)
    units: Optional[tuple]              # (offset, span) to the LR-HSI's units, or None
    batch_size: Optional[int]
    device: str
    wavelengths: Optional[np.ndarray] = None
    info: dict = field(default_factory=dict)   # for run.json (SRF note, loss, timings, ...)
    refinement: Optional["ChunkRefinement"] = None     # None: the network's result alone


@dataclass
class ChunkRefinement:
    """What a worker needs to refine its chunk: the scene's global quantities (computed once:
    refinement.scene_terms, then the network's LR residual summed over the chunks), the sensor
    model and the solver's settings."""
    terms: object                       # refinement.SceneTerms
    psf: Optional[np.ndarray]           # None: no blur
    srf: np.ndarray                     # c x C, in use (with the fitted gain)
    offset: np.ndarray                  # (c,)
    settings: dict                      # refinement.refine's iterations, tv_weight, boundary, ...
    halo: int                           # HR pixels each side (tiled_refinement.default_halo)
    reach: int                          # HR pixels the blur reads past an LR pixel's block
    lr_values: int                      # P x LR pixels: the residual's mean divides by it


def check_config(config: FusionConfig, where: Optional[str] = None) -> FusionConfig:
    """The settings a tiled run uses (auto-selection off), or InputError for a
    configuration tiled mode cannot run (`where`: the scene, for the sentence)."""
    where = f"{where}: " if where else ""
    if config.synthetic:
        raise InputError(f"{where}tiled mode needs a real pair (synthetic: false, hr_msi_file, lr_hsi_file); "
                         f"synthetic mode makes its HR-MSI from a ground-truth cube held in memory")
    if config.method != "spectramorph":
        raise InputError(f"{where}tiled mode runs method spectramorph only; method '{config.method}' solves for "
                         f"the whole cube at once (run it without --tiles)")
    return config.replace(auto_select=False, refine_tv_select=False)


def tiled_notes(config: FusionConfig) -> List[str]:
    notes = []
    if config.auto_select:
        notes.append("tiled mode turns auto-selection off (auto_select: false): the configured settings run")
    if config.refine_tv_select:
        notes.append("tiled mode turns the TV weight's choice off (refine_tv_select: false): the configured "
                     "refine_tv_weight runs")
    return notes


# --------------------------------------------------------------------------- on the training worker

def _nodata_of(config: FusionConfig, geo) -> Optional[float]:
    if config.nodata is not None:
        return float(config.nodata)
    return None if geo is None else geo.nodata


def _check_lazy(path: str, what: str, key=None):
    """The lazy cube of `path`; refuses a format that would be read whole for every chunk."""
    from ..io import load_cube
    cube = load_cube(path, key=key, lazy=True, allow_invalid=True)
    data = cube.data
    if isinstance(data, np.ndarray) and not isinstance(data, np.memmap):
        cube.close()
        raise InputError(f"{what} '{path}' cannot be read window by window (.mat v5 and .npz are read whole): "
                         f"tiled mode needs a GeoTIFF, .h5, v7.3 .mat, .npy or ENVI file")
    return cube


def fit_for_tiles(config: dict, threads: Optional[int] = None) -> TiledModel:
    """Prepare the pair, learn endmembers and network (as run_fusion does) -> TiledModel."""
    if threads:
        os.environ["SPECTRAMORPH_THREADS"] = str(int(threads))
    from ..sensors.degradation import scale_percentile
    from ..core.device import configure_threads, resolve_device
    from ..io import load_cube
    from ..methods.spectramorph import fit_network
    from ..run.prepare import _as_cube, prepare_inputs
    from ..run.pipeline import _output_units
    from ..run.fuse import _Stages
    cfg = from_dict(config)
    for path, what in ((cfg.hr_msi_file, "HR-MSI"), (cfg.lr_hsi_file, "LR-HSI")):
        if not path:
            raise InputError(f"config key '{'hr_msi_file' if what == 'HR-MSI' else 'lr_hsi_file'}' is not set: "
                             f"tiled mode needs the {what} file")
    with _check_lazy(cfg.hr_msi_file, "HR-MSI") as hr_cube:
        hr_geo, hr_shape = hr_cube.geo, tuple(hr_cube.shape)
    with _check_lazy(cfg.lr_hsi_file, "LR-HSI") as lr_cube:
        lr_geo = lr_cube.geo
    stages = _Stages(None, None)
    with stages("load"):
        prep = prepare_inputs(cfg)
    configure_threads()
    device = resolve_device(cfg.device)
    fitted = fit_network(cfg, prep, device=device, stages=stages)
    # The HR-MSI's affine map, as prepare_inputs computed it (it keeps the LR-HSI's only)
    masks = prep.masks
    info = {"srf": prep.srf_note, "psf": prep.psf_note, "training_input": prep.training_input,
            "warnings": list(prep.warnings), "lr_shape": list(prep.lr_hsi.shape),
            "final_loss": fitted.history.loss[-1] if fitted.history.loss else None,
            "epochs_run": getattr(fitted.history, "epochs_run", len(fitted.history.loss)),
            "nodata": None if masks is None else masks.summary()}
    refinement = None
    if cfg.refine and masks is None:
        refinement = _chunk_refinement(cfg, prep, device)
    elif cfg.refine:
        info["warnings"].append("tiled mode does not refine a scene with nodata pixels: the result is the "
                                "network's, as run_fusion gives with refine: false")
    value_range, units, lr_map = prep.value_range, _output_units(cfg, prep), prep.lr_units
    wavelengths, ratio = prep.wavelengths, prep.ratio
    hr_bad = None if masks is None else masks.hr_bad
    del prep
    raw = load_cube(cfg.hr_msi_file, allow_invalid=True).data
    a = _as_cube(raw, "the HR-MSI", allow_2d=True, allow_invalid=True)
    del raw
    if hr_bad is not None:
        a = np.array(a, dtype=np.float32)
        _, low, span = scale_percentile(a, pixels=~hr_bad, copy=False)
    else:
        _, low, span = scale_percentile(a)
    del a
    model = fitted.model.to("cpu")
    weights = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    info["timings_s"] = {k: round(v, 4) for k, v in stages.timings.items()}
    return TiledModel(token=uuid.uuid4().hex, weights=weights, in_features=model.in_features,
                      hidden_size=cfg.hidden_size, endmembers=np.asarray(fitted.endmembers, dtype=np.float32),
                      use_prior=bool(fitted.use_prior), ratio=int(ratio), hr_file=cfg.hr_msi_file,
                      lr_file=cfg.lr_hsi_file, hr_shape=hr_shape if len(hr_shape) == 3 else hr_shape + (1,),
                      num_bands=int(fitted.endmembers.shape[1]), hr_map=(float(low), float(span)),
                      lr_map=(float(lr_map[0]), float(lr_map[1])), hr_nodata=_nodata_of(cfg, hr_geo),
                      lr_nodata=_nodata_of(cfg, lr_geo), lr_has_nodata=bool(masks is not None and masks.lr_bad.any()),
                      value_range=tuple(value_range), units=None if units is None else tuple(units),
                      batch_size=cfg.inference_batch_size, device=cfg.device, wavelengths=wavelengths, info=info,
                      refinement=refinement)


def _chunk_refinement(cfg: FusionConfig, prep, device) -> "ChunkRefinement":
    """The refinement's settings and the global quantities a training worker can compute from
    the pair (subspace, noise, MSI weight); the prior weight waits for the chunks' residual."""
    from ..methods.spectramorph import refinement_settings, refinement_terms
    from ..methods.spectramorph.refinement import blur_reach
    from ..methods.spectramorph.tiled_refinement import default_halo
    terms = refinement_terms(cfg, prep, device=device)
    srf, offset = prep.msi_model()
    c = srf.shape[0]
    h, w = prep.lr_hsi.shape[:2]
    return ChunkRefinement(terms=terms, psf=None if prep.psf is None else np.asarray(prep.psf, dtype=np.float64),
                           srf=np.asarray(srf, dtype=np.float64),
                           offset=np.zeros(c) if offset is None else np.asarray(offset, dtype=np.float64).reshape(c),
                           settings={**refinement_settings(cfg, prep, "cpu"), "device": None},
                           halo=default_halo(prep.psf, prep.ratio), reach=blur_reach(prep.psf, prep.ratio),
                           lr_values=int(terms.basis.shape[0] * h * w))


# --------------------------------------------------------------------------- on every worker

_MODELS: dict = {}


def _network(spec: TiledModel):
    """The network of `spec`, built once per worker process."""
    net = _MODELS.get(spec.token)
    if net is None:
        import torch
        from ..core.device import configure_threads, resolve_device
        from ..methods.spectramorph.model import LatentEstimationNetwork
        configure_threads()
        device = resolve_device(spec.device)
        net = LatentEstimationNetwork(spec.in_features, spec.hidden_size, spec.endmembers.shape[0])
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in spec.weights.items()})
        net = net.to(device).eval()
        _MODELS.clear()            # one scene at a time per worker
        _MODELS[spec.token] = (net, device)
        return net, device
    return net


def read_window(path: str, rows: tuple, cols: tuple) -> np.ndarray:
    """rows x cols (x bands) of a cube file, read lazily (only that window)."""
    from ..io import load_cube
    with load_cube(path, lazy=True, allow_invalid=True) as cube:
        block = np.asarray(cube.data[rows[0]:rows[1], cols[0]:cols[1]])
    return block[:, :, None] if block.ndim == 2 else block


def _hr_block(path: str, block_info=None) -> np.ndarray:
    (r0, r1), (c0, c1) = block_info[None]["array-location"][:2]
    return read_window(path, (r0, r1), (c0, c1))


def _normalised(raw: np.ndarray, low: float, span: float, nodata):
    """(float32 block in the engine's scale, bool rows x cols of pixels without data), with the
    same operations as prepare_inputs (so the numbers are the same)."""
    from ..run.alignment import invalid_pixels
    a = raw if raw.dtype.kind == "f" else raw.astype(np.float32)
    bad = invalid_pixels(a, nodata)
    x = a.astype(np.float32, copy=True)
    x -= np.float32(low)
    x *= np.float32(1.0 / span)
    return x, bad


def _window(spec: TiledModel, box, pad: int):
    """(HR-MSI window normalised, its no-data pixels, the LR-HSI window under it or None, the
    window's (a0, a1, b0, b1)): `box` (r0, r1, c0, c1) widened by `pad` HR pixels on each side
    inside the scene (both multiples of the ratio, so the window starts on an LR pixel)."""
    r = spec.ratio
    H, W = spec.hr_shape[:2]
    r0, r1, c0, c1 = box
    a0, a1, b0, b1 = max(0, r0 - pad), min(H, r1 + pad), max(0, c0 - pad), min(W, c1 + pad)
    x, bad = _normalised(read_window(spec.hr_file, (a0, a1), (b0, b1)), spec.hr_map[0], spec.hr_map[1],
                         spec.hr_nodata)
    lr = lr_bad = None
    if spec.use_prior or spec.lr_has_nodata or spec.refinement is not None:
        lr_raw = read_window(spec.lr_file, (a0 // r, -(-a1 // r)), (b0 // r, -(-b1 // r)))
        lr, lr_bad = _normalised(lr_raw, spec.lr_map[0], spec.lr_map[1], spec.lr_nodata)
    return x, bad, lr, lr_bad, (a0, a1, b0, b1)


def _latents(spec: TiledModel, x, lr):
    from ..methods.spectramorph.inference import infer
    net, device = _network(spec)
    _, alle = infer(net, x, spec.endmembers, lr_hsi=lr if spec.use_prior else None, ratio=spec.ratio,
                    batch_size=spec.batch_size, device=device, mix=False)
    return alle, device


def lr_residual_chunk(box: tuple, spec: TiledModel) -> float:
    """The network's LR residual in the refinement's subspace (refinement.lr_residual_window) over
    the LR pixels of `box`, from a window the blur's reach wider: the chunks' sum is the whole
    scene's."""
    from ..methods.spectramorph.refinement import lr_residual_window
    ref, r = spec.refinement, spec.ratio
    x, _, lr, _, (a0, a1, b0, b1) = _window(spec, box, ref.reach)
    alle, device = _latents(spec, x, lr)
    r0, r1, c0, c1 = box
    own = lr[(r0 - a0) // r:(r1 - a0) // r, (c0 - b0) // r:(c1 - b0) // r]
    return lr_residual_window(alle, spec.endmembers, own, ref.psf, r, ref.terms.basis, top=r0 - a0,
                              left=c0 - b0, device=device)


def fuse_chunk(msi_raw: np.ndarray, spec: TiledModel, block_info=None) -> np.ndarray:
    """One HR-MSI chunk (as read from the file) -> the HR-HSI chunk (float32, in the output's
    units, NaN where there is no data). With a refinement the chunk's window (the chunk and the
    halo) is read again from the files, and the window's refinement kept on the chunk."""
    from ..methods.spectramorph.inference import mix_latents
    from ..methods.spectramorph.refinement import refine
    (r0, r1), (c0, c1) = block_info[0]["array-location"][:2]
    r = spec.ratio
    ref = spec.refinement
    if ref is None:
        x, bad = _normalised(np.asarray(msi_raw), spec.hr_map[0], spec.hr_map[1], spec.hr_nodata)
        lr = lr_bad = None
        if spec.use_prior or spec.lr_has_nodata:
            # chunks start on LR pixel boundaries (their side is a multiple of the ratio)
            lr_raw = read_window(spec.lr_file, (r0 // r, -(-r1 // r)), (c0 // r, -(-c1 // r)))
            lr, lr_bad = _normalised(lr_raw, spec.lr_map[0], spec.lr_map[1], spec.lr_nodata)
        alle, device = _latents(spec, x, lr)
        latents, basis = alle, spec.endmembers
    else:
        x, bad, lr, lr_bad, (a0, a1, b0, b1) = _window(spec, (r0, r1, c0, c1), ref.halo)
        alle, device = _latents(spec, x, lr)
        part = refine(alle, spec.endmembers, lr, x, ref.psf, r, ref.srf, ref.offset, terms=ref.terms,
                      **{**ref.settings, "device": device})
        keep = (slice(r0 - a0, r1 - a0), slice(c0 - b0, c1 - b0))
        latents = np.concatenate([alle[keep], part.delta[keep]], axis=2)
        basis = np.concatenate([spec.endmembers, part.basis], axis=0)
        bad = bad[keep]
        if lr_bad is not None:
            lr_bad = lr_bad[(r0 - a0) // r:, (c0 - b0) // r:]
    hr = mix_latents(latents, basis, batch_size=spec.batch_size, device=device, value_range=spec.value_range)
    if spec.units is not None:
        offset, span = spec.units
        hr *= np.float32(span)
        hr += np.float32(offset)
    no_data = bad
    if spec.lr_has_nodata:
        no_data = no_data | np.repeat(np.repeat(lr_bad, r, axis=0), r, axis=1)[:r1 - r0, :c1 - c0]
    if no_data.any():
        hr[no_data] = np.nan
    return hr


# --------------------------------------------------------------------------- the driver

def chunk_side(chunk: Optional[int], ratio: int) -> int:
    """The chunk side in HR pixels: a multiple of the ratio (so chunks start on LR pixels)."""
    c = int(chunk or DEFAULT_CHUNK)
    return max(ratio, -(-c // ratio) * ratio)


def hr_msi_array(spec: TiledModel, side: int):
    """The HR-MSI as a dask array of side x side chunks, each read lazily from its file."""
    import dask.array as da
    H, W, c = spec.hr_shape
    rows = tuple(min(side, H - i) for i in range(0, H, side))
    cols = tuple(min(side, W - j) for j in range(0, W, side))
    with _check_lazy(spec.hr_file, "HR-MSI") as cube:
        dtype = np.dtype(cube.data.dtype)
    return da.map_blocks(_hr_block, spec.hr_file, chunks=(rows, cols, (c,)), dtype=dtype,
                         meta=np.empty((0, 0, 0), dtype=dtype))


def run_tiled(config: FusionConfig, client, chunk: Optional[int] = None, threads: Optional[int] = 1,
              on_note: Optional[Callable[[str], None]] = None,
              on_phase: Optional[Callable[[str], None]] = None) -> dict:
    """Fuse one scene tiled across the client's workers; writes output_dir all or nothing.
    Returns {"seconds", "output_files", "chunks", "workers", "timings"}; InputError for bad
    input (raised on the worker and passed on). `on_phase("train" | "inference" | "write")` is
    called as each phase starts."""
    import dask.array as da
    from ..quality import figures
    from ..io import atomic_write_text
    from ..io.outputs import StagedOutputs
    from ..run.write import _versions
    from ..core.strict_json import dumps as json_dumps
    t0 = time.perf_counter()
    run_config = check_config(config)
    notes = tiled_notes(config)
    for n in notes:
        if on_note:
            on_note(n)
    staged = StagedOutputs(config.output_dir)
    try:
        if on_phase:
            on_phase("train")
        t_fit = time.perf_counter()
        spec = client.submit(fit_for_tiles, run_config.to_dict(), threads, pure=False, retries=1).result()
        t_fit = time.perf_counter() - t_fit
        if on_phase:
            on_phase("inference")
        t_inf = time.perf_counter()
        side = chunk_side(chunk, spec.ratio)
        [spec_future] = client.scatter([spec], broadcast=True, hash=False)
        msi = hr_msi_array(spec, side)
        if spec.refinement is not None:
            spec, spec_future = _with_prior_weight(client, spec, spec_future, msi.chunks)
        hr = da.map_blocks(fuse_chunk, msi, spec_future, chunks=(msi.chunks[0], msi.chunks[1], (spec.num_bands,)),
                           dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32))
        store = staged.path(RESULT_NAME)
        client.compute(hr.to_zarr(str(store), compute=False)).result()
        t_inf = time.perf_counter() - t_inf
        n_chunks = int(np.prod(hr.numblocks))
        workers = len(client.scheduler_info().get("workers", {}))
        if on_phase:
            on_phase("write")
        _describe_store(store, spec)
        files = {"hr_hsi": str(staged.final(RESULT_NAME))}
        fig = figures.endmember_figure(spec.endmembers if spec.units is None else
                                       spec.endmembers * spec.units[1] + spec.units[0], spec.wavelengths)
        fname = f"endmembers.{config.figure_format}"
        figures.save_figure(fig, staged.path(fname))
        files["endmembers"] = str(staged.final(fname))
        timings = {**spec.info.get("timings_s", {}), "fit_task": round(t_fit, 4), "tiled_inference": round(t_inf, 4)}
        run = {
            "config": config.to_dict(),
            "config_used": run_config.to_dict(),
            "mode": "real",
            "tiled": {"chunk": side, "chunks": n_chunks, "workers": workers, "store": "zarr",
                      "not_done": NOT_DONE, "notes": notes},
            "shapes": {"hr_msi": list(spec.hr_shape), "lr_hsi": spec.info.get("lr_shape"),
                       "hr_hsi": [spec.hr_shape[0], spec.hr_shape[1], spec.num_bands]},
            "ratio": spec.ratio,
            "srf": spec.info.get("srf"),
            "training_input": spec.info.get("training_input"),
            "units": {"result": "input" if spec.units is not None else "normalized",
                      "lr_hsi_offset": spec.lr_map[0], "lr_hsi_span": spec.lr_map[1]},
            "method": "spectramorph",
            "method_info": {"prior": spec.use_prior, "num_endmembers": int(spec.endmembers.shape[0]),
                            "refined": spec.refinement is not None, "epochs_run": spec.info.get("epochs_run"),
                            **({} if spec.refinement is None else {"refinement": _refinement_record(spec)})},
            "timings_s": timings,
            "final_loss": spec.info.get("final_loss"),
            "warnings": spec.info.get("warnings", []),
            "nodata": spec.info.get("nodata"),
            "versions": _versions(),
            "outputs": {**files, "run": str(staged.final("run.json"))},
        }
        atomic_write_text(staged.path("run.json"), json_dumps(run))
        staged.commit()
        return {"seconds": time.perf_counter() - t0, "output_files": run["outputs"], "chunks": n_chunks,
                "workers": workers, "timings": timings}
    finally:
        staged.abort()       # a no-op after the commit


def _chunk_boxes(chunks) -> List[tuple]:
    """(r0, r1, c0, c1) of every chunk of a dask array's `chunks`, raster order."""
    rows = np.cumsum((0,) + tuple(chunks[0]))
    cols = np.cumsum((0,) + tuple(chunks[1]))
    return [(int(rows[i]), int(rows[i + 1]), int(cols[j]), int(cols[j + 1]))
            for i in range(len(rows) - 1) for j in range(len(cols) - 1)]


def _with_prior_weight(client, spec: TiledModel, spec_future, chunks):
    """The refinement's prior weight from the network's LR residual, summed over the chunks on
    the workers (each chunk's own LR pixels once); the spec broadcast again with it."""
    from dataclasses import replace
    from ..methods.spectramorph.refinement import with_lr_residual
    parts = client.gather(client.map(lr_residual_chunk, _chunk_boxes(chunks), spec=spec_future, pure=False))
    ref = spec.refinement
    terms = with_lr_residual(ref.terms, float(sum(parts)), ref.lr_values)
    spec = replace(spec, refinement=replace(ref, terms=terms))
    [spec_future] = client.scatter([spec], broadcast=True, hash=False)
    return spec, spec_future


def _refinement_record(spec: TiledModel) -> dict:
    """run.json's record of a chunked refinement (what a whole-scene run's method_info.refinement
    holds that is known before the chunks run)."""
    from ..methods.spectramorph.refinement import estimate_record
    ref = spec.refinement
    t = ref.terms
    return {"subspace_dim": int(t.basis.shape[0]), "noise_variance": t.noise_variance,
            "lr_residual_visible": t.visible, "prior_weight": t.prior_weight, "trust": t.trust,
            "msi_weight": t.msi_weight, "msi_model_error": t.model_error,
            "tv_weight": ref.settings["tv_weight"] * t.noise_variance,
            "iterations_max": ref.settings["tv_iterations" if ref.settings["tv_weight"] > 0 else "iterations"],
            **estimate_record(t),
            "tiled": {"tile": "the chunk", "halo": ref.halo,
                      "stop": "each chunk's own stopping rule" if ref.settings["tv_weight"] > 0 else
                              "conjugate gradients to tolerance per chunk"}}


def _describe_store(store: Path, spec: TiledModel) -> None:
    """Wavelengths and units as attributes of the zarr array."""
    import zarr
    z = zarr.open_array(str(store), mode="r+")
    z.attrs.update({"wavelengths_nm": None if spec.wavelengths is None else [float(v) for v in spec.wavelengths],
                    "units": "input" if spec.units is not None else "normalized",
                    "layout": "rows x cols x bands"})


def run_batch_tiled(scenes, client, *, chunk=None, threads: Optional[int] = 1, resume: bool = True,
                    on_result=None, on_note=None) -> List[dict]:
    """The scenes of a manifest one after another, each tiled across all workers; summary rows
    as batch.run_batch gives (no consistency figures: tiled mode computes none)."""
    from .batch import STATUS_FAILED, STATUS_OK, _row, _skipped_row, complete_run
    rows = []
    for scene in scenes:
        run = complete_run(scene.config) if resume else None
        if run is not None:
            row = _skipped_row(scene, run)
        else:
            t0 = time.perf_counter()
            existed = Path(scene.config.output_dir).exists()
            try:
                run_tiled(scene.config, client, chunk=chunk, threads=threads,
                          on_note=(lambda text, s=scene: on_note(f"{s.name}: {text}")) if on_note else None)
                row = _row(scene.name, STATUS_OK, time.perf_counter() - t0, scene.config.output_dir)
            except (InputError, Cancelled) as exc:
                row = _row(scene.name, STATUS_FAILED, time.perf_counter() - t0, scene.config.output_dir,
                           error=str(exc) or type(exc).__name__)
            except Exception as exc:        # noqa: BLE001 -- one scene's failure, reported
                row = _row(scene.name, STATUS_FAILED, time.perf_counter() - t0, scene.config.output_dir,
                           error=f"unexpected {type(exc).__name__}: {exc}")
            if row["status"] == STATUS_FAILED and not existed:
                try:
                    Path(scene.config.output_dir).rmdir()
                except OSError:
                    pass
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
