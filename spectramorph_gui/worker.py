"""The only module that owns threads.

Two QThreads, each with one worker QObject moved onto it:
- the fusion thread runs `run_fusion` (minutes long) and re-emits the
  engine's progress events as Qt signals;
- the task thread runs short jobs (file loads, input preparation, exports) so
  that the window keeps repainting while they work, even during training.

Signals emitted from a worker thread reach slots of GUI-thread objects as
queued calls, so no widget is ever touched from a worker thread. Python's cyclic
garbage collector would break that rule: it runs in whichever thread happens to
allocate, and freeing a cycle that holds a Qt object (pyqtgraph's parentless
menus, a closed panel's widgets) runs that object's C++ destructor there. While
the workers exist, collection therefore happens on a GUI-thread timer only
(`GuiThreadGarbageCollector`). Epoch events
are batched here (at most ~10 signals a second) because a small scene trains
at thousands of epochs a second and one queued call per epoch would flood the
GUI's event loop; the curves then redraw from the accumulated history on
their own timer.
"""
from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from typing import Callable, Optional

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

log = logging.getLogger(__name__)

# Epoch batches leave the worker at most this often (seconds).
EPOCH_EMIT_INTERVAL = 0.1


def describe_error(exc: BaseException, where: str = "a worker") -> tuple:
    """(message, is_user_error, details). InputError / OSError messages are for the user as
    they are; anything else is a bug: its traceback goes to the app's log and to `details`."""
    from .errors import describe, write_log
    message, details, user = describe(exc)
    if not user:
        log.error("unexpected error in %s:\n%s", where, details)
        write_log(f"unexpected error in {where}:\n{details}")
    return message, user, details


class _FusionWorker(QObject):
    # The run's "finish training now" token: set by Workers.start_run before it queues the run
    # (runs never overlap), read once when the run starts.
    finish_token: Optional[threading.Event] = None
    # Set while the app asks the user whether to stop: training waits at its next epoch's end
    # (the progress callback runs in this thread, between epochs), so the epoch the question
    # names is the epoch "finish" keeps. The engine knows nothing of it.
    hold_token: Optional[threading.Event] = None

    stageStarted = Signal(str)
    stageFinished = Signal(str, float)
    stageProgress = Signal(str, float)
    epochs = Signal(object)           # list of (epoch, epochs, loss, lr)
    message = Signal(str, str)        # level, text
    finished = Signal(object)         # FusionResult
    failed = Signal(str, str)         # message, details (a traceback for a bug, else "")
    cancelled = Signal(str)
    held = Signal(int, int, float)    # epoch, epochs, loss: training waits there

    @Slot(object)
    def run(self, job) -> None:
        from spectramorph_engine import Cancelled
        from spectramorph_engine.core import events as ev
        from spectramorph_engine import run_fusion
        pending: list = []
        last_emit = [0.0]

        def flush():
            if pending:
                self.epochs.emit(list(pending))
                pending.clear()
            last_emit[0] = time.monotonic()

        def progress(event):
            # Runs in this worker thread: only emit signals, never touch widgets.
            if isinstance(event, ev.EpochEnd):
                pending.append((event.epoch, event.epochs, event.loss, event.lr))
                if event.epoch == event.epochs or time.monotonic() - last_emit[0] >= EPOCH_EMIT_INTERVAL:
                    flush()
                if hold is not None and hold.is_set():
                    flush()
                    self.held.emit(event.epoch, event.epochs, float(event.loss))
                    while hold.is_set() and not cancel.is_set():
                        time.sleep(0.02)
            elif isinstance(event, ev.StageStarted):
                flush()
                self.stageStarted.emit(event.stage)
            elif isinstance(event, ev.StageFinished):
                flush()
                self.stageFinished.emit(event.stage, float(event.seconds))
            elif isinstance(event, ev.StageProgress):
                self.stageProgress.emit(event.stage, float(event.fraction))
            elif isinstance(event, ev.Message):
                self.message.emit(event.level, event.text)

        config, inputs, cancel, folder = job
        hold = self.hold_token
        try:
            # Written into the run's own folder as the CLI writes (a big result streams to its
            # file), then kept memory-mapped from there: the app never holds a cube twice.
            run_config = config.replace(output_dir=str(folder), log_dir=str(folder))
            result = run_fusion(run_config, progress=progress, cancel=cancel, inputs=inputs,
                                write_outputs=True, finish_training=self.finish_token,
                                write_figures=False)      # drawn on export: matplotlib would hold the window
            _map_result_from_file(result)
        except Cancelled:
            flush()
            self.cancelled.emit("stopped by the user")
            return
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user
            flush()
            message, _, details = describe_error(exc, "the fusion run")
            self.failed.emit(message, details)
            return
        flush()
        if cancel.is_set():
            # Stop pressed after the last cancel check: the user asked for no result.
            self.cancelled.emit("stopped by the user")
            return
        self.finished.emit(result)


def _map_result_from_file(result) -> None:
    """The result cube, if still in memory, swapped for a memory map (or lazy dataset) of the
    file the run wrote, so the kept run costs no RAM for its cube."""
    import numpy as np
    from spectramorph_engine import io
    cube = result.hr_hsi
    path = result.output_files.get("hr_hsi")
    if path is None or not isinstance(cube, np.ndarray) or isinstance(cube, np.memmap):
        return
    key = "hr_hsi" if path.endswith((".mat", ".h5")) and result.endmembers is not None else None
    try:
        mapped = io.load_cube(path, key=key, lazy=True).data
    except Exception:  # noqa: BLE001 - the in-memory cube stays; showing it matters more
        log.warning("could not map %s; the result stays in memory", path, exc_info=True)
        return
    if tuple(mapped.shape) == tuple(cube.shape):
        result.hr_hsi = mapped


class _TaskWorker(QObject):
    done = Signal(int, object)
    failed = Signal(int, str, bool, str)   # job id, message, is_user_error, details

    @Slot(int, object)
    def execute(self, job_id: int, fn) -> None:
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001
            message, user, details = describe_error(exc, "a background task")
            self.failed.emit(job_id, message, user, details)
            return
        self.done.emit(job_id, value)


class GuiThreadGarbageCollector(QObject):
    """Python's automatic cycle collection off, and done instead by a timer in the GUI thread.

    A worker thread that allocates heavily (matplotlib drawing a figure for an export, a
    training loop) would otherwise run the collection itself and with it the C++ destructors
    of any Qt objects in the garbage: a widget destroyed outside the GUI thread can crash
    Qt or deadlock it against the interpreter lock (the test suite hung so in CI, in an
    export after a few hundred windows had been closed). pyqtgraph has the same idea
    (`util.garbage_collector`) but never turns collection back on; this one does when the
    last instance stops, so several windows (or tests) may start and stop it in turn.
    """
    _active = 0               # instances started and not stopped, process-wide like gc itself
    _was_enabled = True

    def __init__(self, parent=None, interval_ms: int = 500):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect)

    def start(self) -> None:
        if self._timer.isActive():
            return
        cls = GuiThreadGarbageCollector
        if cls._active == 0:
            cls._was_enabled = gc.isenabled()
            gc.disable()
        cls._active += 1
        self._timer.start()

    def stop(self) -> None:
        if not self._timer.isActive():
            return
        self._timer.stop()
        cls = GuiThreadGarbageCollector
        cls._active -= 1
        if cls._active == 0:
            self.collect()
            if cls._was_enabled:
                gc.enable()

    @staticmethod
    def collect() -> None:
        """The generations automatic collection would have collected by now (CPython's rule:
        a generation is collected when its count passes its threshold)."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        generation = -1
        for g in range(3):
            if counts[g] > thresholds[g]:
                generation = g
            else:
                break
        if generation >= 0:
            gc.collect(generation)


class Workers(QObject):
    """The GUI thread's handle on both worker threads."""

    # requests, queued to the worker threads
    _runRequested = Signal(object)
    _taskRequested = Signal(int, object)

    # the fusion run, re-emitted for the GUI thread
    stageStarted = Signal(str)
    stageFinished = Signal(str, float)
    stageProgress = Signal(str, float)
    epochs = Signal(object)
    message = Signal(str, str)
    runFinished = Signal(object)
    runFailed = Signal(str, str)      # message, details (a traceback for a bug, else "")
    runCancelled = Signal(str)
    trainingHeld = Signal(int, int, float)   # epoch, epochs, loss: training waits (hold_training)
    # background tasks: the label of what is running ("" when idle)
    busyChanged = Signal(str)
    # a bug in a background task: (sentence, traceback), for the error dialog
    bugRaised = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._callbacks: dict = {}
        self._labels: dict = {}
        self._cancel: Optional[threading.Event] = None
        self._collector = GuiThreadGarbageCollector(self)
        self._collector.start()

        self._fusion_thread = QThread(self)
        self._fusion_thread.setObjectName("spectramorph-fusion")
        self._fusion = _FusionWorker()
        self._fusion.moveToThread(self._fusion_thread)
        self._runRequested.connect(self._fusion.run)
        self._fusion.held.connect(self.trainingHeld)
        for name in ("stageStarted", "stageFinished", "stageProgress", "epochs", "message"):
            getattr(self._fusion, name).connect(getattr(self, name))
        self._fusion.finished.connect(self._on_run_finished)
        self._fusion.failed.connect(self._on_run_failed)
        self._fusion.cancelled.connect(self._on_run_cancelled)
        self._fusion_thread.start()

        self._task_thread = QThread(self)
        self._task_thread.setObjectName("spectramorph-tasks")
        self._task = _TaskWorker()
        self._task.moveToThread(self._task_thread)
        self._taskRequested.connect(self._task.execute)
        self._task.done.connect(self._on_task_done)
        self._task.failed.connect(self._on_task_failed)
        self._task_thread.start()

    # -- the fusion run ----------------------------------------------------
    @property
    def running(self) -> bool:
        return self._cancel is not None

    def start_run(self, config, inputs, folder) -> bool:
        """Fuse in the background, writing every output into `folder` (the run's own)."""
        if self.running:
            return False
        self._cancel = threading.Event()
        self._fusion.finish_token = threading.Event()
        self._fusion.hold_token = threading.Event()
        self._runRequested.emit((config, inputs, self._cancel, folder))
        return True

    def cancel_run(self) -> None:
        # threading.Event is thread-safe: the engine sees it at its next check (< 1 s).
        if self._cancel is not None:
            self._cancel.set()

    def finish_training(self) -> None:
        """End training early; the run goes on with the network as trained so far."""
        if self._cancel is not None and self._fusion.finish_token is not None:
            self._fusion.finish_token.set()

    def hold_training(self) -> None:
        """Training waits at its next epoch's end (trainingHeld says which) until released."""
        if self._cancel is not None and self._fusion.hold_token is not None:
            self._fusion.hold_token.set()

    def release_training(self) -> None:
        if self._fusion.hold_token is not None:
            self._fusion.hold_token.clear()

    def _end_run(self):
        self._cancel = None

    def _on_run_finished(self, result):
        self._end_run()
        self.runFinished.emit(result)

    def _on_run_failed(self, text, details=""):
        self._end_run()
        self.runFailed.emit(text, details)

    def _on_run_cancelled(self, text):
        self._end_run()
        self.runCancelled.emit(text)

    # -- short tasks -------------------------------------------------------
    def submit(self, fn: Callable, on_done: Callable, on_error: Optional[Callable] = None,
               label: str = "") -> int:
        """Run fn() on the task thread; on_done(value) or on_error(message, is_user_error)
        is then called on the GUI thread. Jobs run one after the other. A bug (not an error
        the user can fix) is also announced by `bugRaised` with its traceback; on_error
        callbacks then leave the dialog to it."""
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_done, on_error)
        self._labels[job_id] = label
        self._emit_busy()
        self._taskRequested.emit(job_id, fn)
        return job_id

    @property
    def pending(self) -> int:
        """Background jobs submitted and not yet answered."""
        return len(self._callbacks)

    @property
    def busy_label(self) -> str:
        labels = [t for t in self._labels.values() if t]
        return labels[0] if labels else ""

    def _emit_busy(self):
        self.busyChanged.emit(self.busy_label)

    def _pop(self, job_id):
        self._labels.pop(job_id, None)
        callbacks = self._callbacks.pop(job_id, (None, None))
        self._emit_busy()
        return callbacks

    def _on_task_done(self, job_id, value):
        on_done, _ = self._pop(job_id)
        if on_done is not None:
            on_done(value)

    def _on_task_failed(self, job_id, message, user, details=""):
        _, on_error = self._pop(job_id)
        if not user:
            self.bugRaised.emit(message, details)
        if on_error is not None:
            on_error(message, user)

    # -- shutdown ----------------------------------------------------------
    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Stop a run, let the current task end, and join both threads."""
        self.cancel_run()
        for thread in (self._fusion_thread, self._task_thread):
            thread.quit()
        for thread in (self._fusion_thread, self._task_thread):
            thread.wait(timeout_ms)
        self._collector.stop()
