"""AppState: the one object every panel talks to.

It holds the current configuration (a frozen `FusionConfig`), the arrays the
user loaded, the prepared inputs (`prepare_inputs`, what the previews show),
the training history and the last result. Panels call its methods on user
input and redraw when its signals fire; they never talk to each other.

Changes that can fail (opening a file, a pair that does not fit, a config
file) are tried on the task thread first and committed only when the engine
accepted them: on failure `errorRaised` carries the engine's sentence and
nothing the window shows changes.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from spectramorph_engine import FusionConfig, InputError
from spectramorph_engine.run.config import KEYS

from .progress import History, RunProgress
from .sources import (DataSource, leave_demo_folders, load_demo_source, load_source,  # noqa: F401 (re-exported)
                      source_from_cube)
from .worker import Workers

# Keys that change nothing before training: editing them needs no new preview.
TRAINING_KEYS = frozenset({
    "verbose", "init_lr", "max_lr", "final_lr", "epochs", "hidden_size", "training_batch_size",
    "max_training_pixels", "inference_batch_size", "num_endmembers", "spec_prior", "prior_downsample",
    "figure_format",
    "output_file_type", "output_dir", "log_dir", "scheduler", "device",
    "method", "endmember_method", "nmf_max_iter", "nmf_tol", "auto_select",
    "refine", "refine_trust", "refine_msi_weight", "refine_tv_weight", "refine_tv_select", "refine_iterations", "refine_subspace",
    "hysure_iterations", "hysure_tv_weight", "hysure_msi_weight", "hysure_subspace"})
PREPARE_DELAY_MS = 200   # coalesce a burst of edits (a spin box held down) into one preparation


class AppState(QObject):
    configChanged = Signal(object)        # FusionConfig
    inputsChanged = Signal()              # a data source was replaced
    preparedChanged = Signal(object)      # PreparedInputs | None
    prepareFailed = Signal(str)
    runStarted = Signal()
    runProgress = Signal(object)          # RunProgress
    runFinished = Signal(object)          # FusionResult
    runFailed = Signal(str)
    runCancelled = Signal(str)
    resultChanged = Signal(object)        # FusionResult | None (the shown run's)
    runsChanged = Signal()                # a run was kept or removed
    comparisonChanged = Signal(object)    # what the shown run is compared with (a key, or None)
    busyChanged = Signal(str)             # label of the background task, "" when idle
    trainingHeld = Signal(int, int, float)  # epoch, epochs, loss: training waits (hold_training)
    srfEstimateChanged = Signal(object)   # srf_estimation.SrfEstimate | None (real-world mode)
    errorRaised = Signal(str)             # a sentence for an error dialog
    bugRaised = Signal(str, str)          # a bug: sentence and traceback, for the error dialog
    loadFinished = Signal(bool)           # a file / demo / config load ended (accepted or not)
    message = Signal(str)                 # a line for the status bar

    def __init__(self, parent=None, demo_size: Optional[int] = None):
        super().__init__(parent)
        self.demo_size = demo_size
        self.config = FusionConfig()
        self.truth: Optional[DataSource] = None
        self.hr_msi: Optional[DataSource] = None
        self.lr_hsi: Optional[DataSource] = None
        self.prepared = None
        self.prepare_error: Optional[str] = None
        # The SRF fitted to the real pair (shown beside the one in use), kept with the prepared
        # pair it was fitted to: readers get it only while that pair is the one prepared.
        self._srf_estimate = (None, None, None)   # (prepared, SrfEstimate | None, error | None)
        self._estimate_cache = None        # (pair arrays, wavelengths, SrfEstimate): the last fit
        self.result = None                # the shown run's result
        self.runs: list = []              # RunRecord, oldest first (every run since the app started)
        self.shown_run = None             # RunRecord on screen
        self.comparison = None            # ("run", number) | "truth" | "bicubic" | "lr_hsi" | "hr_msi" | None
        from .runs import RunStore
        self.run_store = RunStore()
        self._run_folder = None
        self._run_number = None
        self._run_config = None
        self.history = History()
        self.progress = RunProgress()
        self._train_t0: Optional[float] = None
        self._run_t0 = 0.0
        self._generation = 0           # newest preparation wins; older answers are dropped
        self._preparing = False

        self.workers = Workers(self)
        self.workers.busyChanged.connect(self.busyChanged)
        self.workers.stageStarted.connect(self._on_stage_started)
        self.workers.stageProgress.connect(self._on_stage_progress)
        self.workers.epochs.connect(self._on_epochs)
        self.workers.message.connect(self._on_engine_message)
        self.workers.runFinished.connect(self._on_run_finished)
        self.workers.runFailed.connect(self._on_run_failed)
        self.workers.bugRaised.connect(self.bugRaised)
        self.workers.runCancelled.connect(self._on_run_cancelled)
        self.workers.trainingHeld.connect(self.trainingHeld)

        self._prepare_timer = QTimer(self)
        self._prepare_timer.setSingleShot(True)
        self._prepare_timer.setInterval(PREPARE_DELAY_MS)
        self._prepare_timer.timeout.connect(self._prepare_now)

    # ------------------------------------------------------------------ queries
    @property
    def running(self) -> bool:
        return self.workers.running

    @property
    def preparing(self) -> bool:
        return self._preparing or self._prepare_timer.isActive()

    def wavelengths_for_inputs(self, config: Optional[FusionConfig] = None,
                               sources: Optional[dict] = None):
        """Cube metadata wavelengths, unless the config names its own (the user's choice wins)."""
        config = config or self.config
        if config.wavelengths is not None:
            return None
        src = self._sources(sources)
        cube = src["truth"] if config.synthetic else src["lr_hsi"]
        return None if cube is None else cube.wavelengths

    def current_inputs(self, config: Optional[FusionConfig] = None, sources: Optional[dict] = None):
        from spectramorph_engine import FusionInputs
        config = config or self.config
        src = self._sources(sources)
        wl = self.wavelengths_for_inputs(config, src)
        if config.synthetic:
            truth = src["truth"]
            return FusionInputs(truth=None if truth is None else truth.data, wavelengths=wl)
        hr, lr = src["hr_msi"], src["lr_hsi"]
        return FusionInputs(hr_msi=None if hr is None else hr.data,
                            lr_hsi=None if lr is None else lr.data, wavelengths=wl,
                            hr_geo=None if hr is None else hr.geo, lr_geo=None if lr is None else lr.geo,
                            hr_camera=None if hr is None else hr.camera)

    def num_hsi_bands(self) -> Optional[int]:
        if self.prepared is not None:
            return int(self.prepared.lr_hsi.shape[2])
        cube = self.truth if self.config.synthetic else self.lr_hsi
        return None if cube is None or cube.data.ndim != 3 else int(cube.data.shape[2])

    def _sources(self, sources=None) -> dict:
        base = {"truth": self.truth, "hr_msi": self.hr_msi, "lr_hsi": self.lr_hsi}
        if sources:
            base.update(sources)
        return base

    # ------------------------------------------------------------------ config
    def update_config(self, **changes) -> bool:
        """Apply edits from a panel; the config validates them. False (and a dialog) if refused."""
        changes = {k: v for k, v in changes.items() if getattr(self.config, k) != v}
        if not changes:
            return True
        try:
            new = self.config.replace(**changes)
        except InputError as exc:
            self.errorRaised.emit(str(exc))
            self.configChanged.emit(self.config)   # puts the refused widget back
            return False
        self.config = new
        self.configChanged.emit(new)
        if set(changes) - TRAINING_KEYS:
            self.schedule_prepare()
        return True

    def set_wavelengths(self, text: str) -> bool:
        """Wavelengths typed or pasted by the user (one per band, or first..last), validated by
        the engine against the hyperspectral band count; an empty text goes back to the cube's
        own (metadata). False (and a dialog) if refused."""
        from spectramorph_engine.quality.previews import parse_wavelengths
        if not (text or "").strip():
            return self.update_config(wavelengths=None)
        bands = self.num_hsi_bands()
        if bands is None:
            self.errorRaised.emit("Open the hyperspectral cube first: the wavelengths are checked "
                                  "against its band count.")
            return False
        try:
            wl = parse_wavelengths(text, bands)
        except InputError as exc:
            self.errorRaised.emit(str(exc))
            return False
        return self.update_config(wavelengths=[float(v) for v in wl])

    def set_config(self, config: FusionConfig) -> None:
        self.config = config
        self.configChanged.emit(config)
        self.schedule_prepare()

    # ------------------------------------------------------------------ data
    def load_demo(self, on_done: Optional[Callable] = None) -> None:
        size = self.demo_size
        config = self.config.replace(synthetic=True, mat_file=None, mat_key=None)
        self._try_commit(lambda: {"truth": load_demo_source(size)}, config, "Loading the demo scene",
                         on_done=on_done)

    def list_arrays(self, path: str, on_done: Callable) -> None:
        """(name, shape, dtype) of every array in a file, for the variable picker."""
        from spectramorph_engine import io
        self.run_task(lambda: io.list_arrays(path), f"Reading {path}", on_done)

    def open_cube(self, role: str, path: str, key: Optional[str] = None,
                  on_done: Optional[Callable] = None) -> None:
        """Load a ground truth ('truth'), an HR-MSI or an LR-HSI; commit only if the engine accepts it."""
        changes = {"truth": dict(synthetic=True, mat_file=path, mat_key=key),
                   "hr_msi": dict(synthetic=False, hr_msi_file=path),
                   "lr_hsi": dict(synthetic=False, lr_hsi_file=path)}[role]
        config = leave_demo_folders(self.config.replace(**changes))
        other = {"hr_msi": self.lr_hsi, "lr_hsi": self.hr_msi}.get(role)
        hint = (" To replace both images with a pair of another size, use Open pair…"
                if other is not None else "")
        self._try_commit(lambda: {role: load_source(path, key)}, config, f"Loading {path}",
                         on_done=on_done, error_hint=hint)

    def open_pair(self, hr_path: str, lr_path: str, hr_key: Optional[str] = None,
                  lr_key: Optional[str] = None, on_done: Optional[Callable] = None) -> None:
        """Real-world mode: an HR-MSI and an LR-HSI together (all or nothing), so a new pair of
        another size replaces the old one without meeting it half-way."""
        config = leave_demo_folders(self.config.replace(synthetic=False, hr_msi_file=hr_path,
                                                              lr_hsi_file=lr_path))
        self._try_commit(lambda: {"hr_msi": load_source(hr_path, hr_key), "lr_hsi": load_source(lr_path, lr_key)},
                         config, f"Loading {hr_path} and {lr_path}", on_done=on_done)

    def open_config(self, path: str, on_done: Optional[Callable] = None) -> None:
        """Load a YAML/JSON config and the files it names; all or nothing."""
        from spectramorph_engine import load_config
        size = self.demo_size
        holder = {}

        def load():
            cfg = load_config(path)
            holder["config"] = cfg
            if cfg.synthetic:
                src = {"truth": load_source(cfg.mat_file, cfg.mat_key) if cfg.mat_file
                       else load_demo_source(size)}
            else:
                src = {}
                if cfg.hr_msi_file:
                    src["hr_msi"] = load_source(cfg.hr_msi_file)
                if cfg.lr_hsi_file:
                    src["lr_hsi"] = load_source(cfg.lr_hsi_file)
            return src

        # A configuration's own wavelengths are part of it: a mismatch is an error, not dropped.
        self._try_commit(load, lambda: holder["config"], f"Opening {path}", on_done=on_done,
                         fit_wavelengths=False)

    def _try_commit(self, load: Callable, config, label: str, on_done=None,
                    fit_wavelengths: bool = True, error_hint: str = "") -> None:
        """Load on the task thread, prepare the candidate pair, and commit only on success."""
        from spectramorph_engine import prepare_inputs
        from spectramorph_engine.core.errors import PairSizeError
        self._generation += 1
        gen = self._generation
        self._preparing = True
        # a preparation scheduled for an edit just before would otherwise run on the old config
        # once this commit is under way, and land after it (the new pair shown unprepared)
        self._prepare_timer.stop()

        notes = []

        def job():
            sources = load()
            cfg = config() if callable(config) else config
            if fit_wavelengths:
                cfg = self._drop_mismatched_wavelengths(cfg, sources, notes)
            inputs = self.current_inputs(cfg, sources)
            complete = (cfg.synthetic and (inputs.truth is not None or cfg.mat_file)) or \
                (not cfg.synthetic and inputs.hr_msi is not None and inputs.lr_hsi is not None)
            try:
                prepared = prepare_inputs(cfg, inputs) if complete else None
            except PairSizeError as exc:
                # the hint is for a pair whose sizes do not fit each other, not for a bad file
                raise InputError(f"{exc}{error_hint}") from None
            return cfg, sources, prepared

        def done(value):
            cfg, sources, prepared = value
            for role, src in sources.items():
                setattr(self, role, src)
            self.config = cfg
            self.configChanged.emit(cfg)
            self.inputsChanged.emit()
            if gen == self._generation:
                self._preparing = False
                self._set_prepared(prepared, None if prepared is not None else
                                   "Open an HR-MSI and an LR-HSI to make a pair.")
            else:   # an edit arrived meanwhile: prepare again with it
                self.schedule_prepare()
            self.message.emit(f"{label}: done" + (f" ({'; '.join(notes)})" if notes else ""))
            if on_done is not None:
                on_done(True)
            self.loadFinished.emit(True)

        def failed(message, user):
            if gen == self._generation:
                self._preparing = False
            if user:          # a bug has its own dialog (bugRaised), with its details
                self.errorRaised.emit(message)
            if on_done is not None:
                on_done(False)
            self.loadFinished.emit(False)

        self.workers.submit(job, done, failed, label)

    def _drop_mismatched_wavelengths(self, cfg, sources: dict, notes: list):
        """Wavelengths the user gave for an earlier cube do not block opening one with another
        band count: they are dropped (and the status bar says so); the new cube's own are used."""
        role = "truth" if cfg.synthetic else "lr_hsi"
        if cfg.wavelengths is None or role not in sources or sources[role] is None:
            return cfg
        data = sources[role].data
        bands = data.shape[2] if data.ndim == 3 else 1
        wl = cfg.wavelengths
        try:
            if isinstance(wl, str):
                from spectramorph_engine.io import load_wavelengths
                count = len(load_wavelengths(wl))
            else:
                count = len(wl)
        except InputError:
            count = None
        if count == bands:
            return cfg
        notes.append(f"the {count if count is not None else 'unreadable'} wavelengths given before do not "
                     f"fit its {bands} bands and were dropped")
        return cfg.replace(wavelengths=None)

    # ------------------------------------------------------------------ preparation
    def schedule_prepare(self) -> None:
        self._generation += 1     # anything in flight is now stale
        self._prepare_timer.start()

    def _prepare_now(self) -> None:
        from spectramorph_engine import prepare_inputs
        gen = self._generation
        config, inputs = self.config, self.current_inputs()
        if not config.synthetic and (inputs.hr_msi is None or inputs.lr_hsi is None):
            missing = [n for n, a in (("an HR-MSI", inputs.hr_msi), ("an LR-HSI", inputs.lr_hsi)) if a is None]
            self._set_prepared(None, f"Open {' and '.join(missing)} to make a pair.")
            return
        self._preparing = True

        def done(prepared):
            if gen == self._generation:
                self._preparing = False
                self._set_prepared(prepared, None)

        def failed(message, _user):
            if gen == self._generation:
                self._preparing = False
                self._set_prepared(None, message)

        self.workers.submit(lambda: prepare_inputs(config, inputs), done, failed, "Preparing the inputs")

    def _set_prepared(self, prepared, error: Optional[str]) -> None:
        # The estimate is settled before anyone hears of the new pair: a panel redrawing on
        # preparedChanged must not meet the last pair's estimate (another band count).
        pending = self._settle_srf_estimate(prepared)
        self.prepared = prepared
        self.prepare_error = error
        if error:
            self.prepareFailed.emit(error)
        self.preparedChanged.emit(prepared)
        self.srfEstimateChanged.emit(self.srf_estimate)
        if pending is not None:
            self.workers.submit(*pending)

    @property
    def srf_estimate(self):
        """The SRF fitted to the prepared real pair; None while it is being fitted, or when the
        pair is synthetic, or when the fit belongs to a pair that is no longer prepared."""
        owner, estimate, _error = self._srf_estimate
        return estimate if owner is not None and owner is self.prepared else None

    @property
    def srf_estimate_error(self) -> Optional[str]:
        owner, _estimate, error = self._srf_estimate
        return error if owner is not None and owner is self.prepared else None

    def _settle_srf_estimate(self, prepared):
        """Real-world mode: the SRF fitted to the pair, whatever SRF the run uses (the pipeline's
        own when it estimated one, a cached fit of the same arrays, else `estimate_srf` on the
        task thread). Returns the job to submit for the last case (after preparedChanged)."""
        self._srf_estimate = (prepared, None, None)
        if prepared is None or prepared.mode != "real":
            return None
        if prepared.srf_estimate is not None:
            self._srf_estimate = (prepared, prepared.srf_estimate, None)
            return None
        hr, lr, ratio, wl = prepared.hr_msi, prepared.lr_hsi, prepared.ratio, prepared.wavelengths
        # The same pair (and wavelengths) as last time: the fit is the same, do not redo it
        # (an fwhm_factor or preset edit prepares again but leaves the pair as it was). The
        # cache holds the arrays themselves: an id() of a freed array can name a new one.
        arrays = tuple(None if src is None else src.data for src in (self.hr_msi, self.lr_hsi))
        wl_key = None if wl is None else np.asarray(wl).tobytes()
        cached = self._estimate_cache
        if cached is not None and len(cached[0]) == len(arrays) \
                and all(a is b for a, b in zip(cached[0], arrays)) and cached[1] == wl_key:
            self._srf_estimate = (prepared, cached[2], None)
            return None
        from spectramorph_engine.sensors.srf_estimation import estimate_srf

        def done(estimate):
            self._estimate_cache = (arrays, wl_key, estimate)
            if self.prepared is prepared:
                self._srf_estimate = (prepared, estimate, None)
                self.srfEstimateChanged.emit(estimate)

        def failed(message, _user):
            if self.prepared is prepared:
                self._srf_estimate = (prepared, None, message)
                self.srfEstimateChanged.emit(None)

        return (lambda: estimate_srf(hr, lr, ratio, wavelengths=wl), done, failed,
                "Estimating the SRF from the pair")

    # ------------------------------------------------------------------ the run
    def start_run(self) -> bool:
        if self.running:
            return False
        self.history.clear()
        self.progress = RunProgress(stage="starting", method=self.config.method)
        self._run_t0 = time.monotonic()
        self._train_t0 = None
        self._run_number, self._run_folder = self.run_store.next_run_folder()
        self._run_config = self.config
        inputs = self.current_inputs()
        if self.prepared is not None and not self.preparing:
            # prepared for this config (other edits prepare again); the runs from it share it
            inputs = dataclasses.replace(inputs, prepared=self.prepared)
        self.workers.start_run(self.config, inputs, self._run_folder)
        self.runStarted.emit()
        self.runProgress.emit(self.progress)
        return True

    def stop_run(self) -> None:
        """Discard the run: it ends with no result. (The app's Stop asks first, see
        TrainingPanel.stop; this is the answer "discard".)"""
        self.workers.cancel_run()

    def finish_training(self) -> None:
        """End training now; inference, refinement and scores follow with the network as
        trained so far and the run ends with a result. No effect outside training."""
        self.workers.finish_training()

    def hold_training(self) -> None:
        """While Stop's question is open: training waits at its next epoch's end
        (trainingHeld), so "finish" keeps the model of the epoch the question names."""
        self.workers.hold_training()

    def release_training(self) -> None:
        self.workers.release_training()

    def _on_stage_started(self, stage):
        self.progress.stage = stage
        self.progress.fraction = None
        if stage == "train":
            self._train_t0 = time.monotonic()
        self._emit_progress()

    def _on_stage_progress(self, stage, fraction):
        self.progress.stage, self.progress.fraction = stage, fraction
        self._emit_progress()

    def _on_epochs(self, batch):
        for epoch, epochs, loss, lr in batch:
            self.history.epoch.append(epoch)
            self.history.loss.append(loss)
            self.history.lr.append(lr)
        self.history.version += 1
        epoch, epochs, loss, lr = batch[-1]
        p = self.progress
        p.stage, p.epoch, p.epochs, p.loss, p.lr = "train", epoch, epochs, loss, lr
        if self._train_t0 is not None and epoch > 0:
            spent = time.monotonic() - self._train_t0
            p.eta = spent / epoch * (epochs - epoch)
        self._emit_progress()

    def _emit_progress(self):
        self.progress.elapsed = time.monotonic() - self._run_t0
        self.runProgress.emit(self.progress)

    def _on_engine_message(self, level, text):
        self.message.emit(f"{level}: {text}")

    def _on_run_finished(self, result):
        # The engine's own history is the reference: it has exactly one entry per epoch.
        h = self.history
        h.loss[:] = list(result.loss_history)
        h.lr[:] = list(result.lr_history)
        # an objective recorded before the first iteration too (HySure) starts at iteration 0
        before_first = len(h.loss) - int((result.method_info or {}).get("iterations", len(h.loss)))
        first = 0 if before_first == 1 else 1
        h.epoch[:] = list(range(first, first + len(h.loss)))
        h.version += 1
        from .runs import RunRecord
        # kept runs are numbered 1, 2, ... (a stopped or failed run is not one)
        number = (self.runs[-1].number if self.runs else 0) + 1
        record = RunRecord(number=number, config=self._run_config, result=result,
                           folder=self._run_folder, finished_at=time.strftime("%H:%M:%S"),
                           seconds=time.monotonic() - self._run_t0)
        self.runs.append(record)
        self.progress.stage = "done"
        self._emit_progress()
        self.runsChanged.emit()
        self.show_run(record.number)
        self.runFinished.emit(result)
        self.message.emit(f"Run finished in {self.progress.elapsed:.1f} s on {result.device}")

    def _on_run_failed(self, text, details=""):
        self.progress.stage = "failed"
        self._drop_run_folder()
        self.runFailed.emit(text)
        if details:
            self.bugRaised.emit(text, details)
        else:
            self.errorRaised.emit(text)

    def _on_run_cancelled(self, text):
        self.progress.stage = "stopped"
        self._drop_run_folder()
        self.runCancelled.emit(text)
        self.message.emit(f"Run {text}; no result was produced")

    def _drop_run_folder(self) -> None:
        if self._run_folder is not None:
            self.run_store.discard(self._run_folder)
            self._run_folder = None

    # ------------------------------------------------------------------ kept runs
    def run_record(self, number: int):
        return next((r for r in self.runs if r.number == number), None)

    def show_run(self, number: int) -> None:
        """Put a kept run on screen (its result in every panel that shows one)."""
        record = self.run_record(number)
        if record is None:
            return
        self.shown_run = record
        self.result = record.result
        if self.comparison == ("run", number):
            self.comparison = None
            self.comparisonChanged.emit(None)
        self.resultChanged.emit(record.result)

    def set_comparison(self, key) -> None:
        """What the shown run is compared with: ("run", number), "truth", "bicubic", "lr_hsi",
        "hr_msi", or None."""
        if key == self.comparison:
            return
        self.comparison = key
        self.comparisonChanged.emit(key)

    def remove_run(self, number: int) -> None:
        """Forget a kept run and delete its folder (the shown one cannot be removed)."""
        record = self.run_record(number)
        if record is None or record is self.shown_run:
            return
        self.runs.remove(record)
        if self.comparison == ("run", number):
            self.set_comparison(None)
        record.result = None
        import gc
        gc.collect()                 # the memory map must be closed before its file goes
        self.run_store.discard(record.folder)
        self.runsChanged.emit()

    # ------------------------------------------------------------------ other tasks
    def warm_up_engine(self) -> None:
        """torch's first step (engine.warm_up) on the task thread as the window opens, not at Run."""
        from spectramorph_engine import warm_up
        self.workers.submit(warm_up, lambda _v: None, None, "")

    def run_task(self, fn: Callable, label: str, on_done: Optional[Callable] = None,
                 on_error: Optional[Callable] = None) -> None:
        """A background job whose failure becomes an error dialog (exports, file listings)."""
        def failed(message, user):
            text = f"{label} failed: {message}" if label else message
            if user:          # a bug has its own dialog (bugRaised), with its details
                self.errorRaised.emit(text)
            if on_error is not None:
                on_error(text)
        self.workers.submit(fn, on_done or (lambda _v: None), failed, label)

    def shutdown(self) -> None:
        self._prepare_timer.stop()
        self.workers.shutdown()
        self.runs.clear()
        self.shown_run = self.result = None
        self.run_store.close()          # the kept runs were this session's; exported ones stay


__all__ = ["AppState", "DataSource", "RunProgress", "History", "TRAINING_KEYS", "KEYS"]
