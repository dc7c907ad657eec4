"""The app never dies of a bug.

An exception nobody caught, in a slot the event loop called, in a worker
thread or in a plain Python thread, becomes three things: a record with the
full traceback in the app's log (`studio.log` beside the app's settings), a
dialog with one sentence and the traceback under "Show Details...", and
nothing else: the window keeps its data and stays usable.

Engine errors the user can fix (`InputError`, file-system errors) are not
bugs: they get their sentence only (`describe`).
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Qt, Signal, Slot

log = logging.getLogger(__name__)

# The log keeps the newest records; older ones are dropped beyond this size.
LOG_LIMIT_BYTES = 1 << 20


def log_path() -> Path:
    """Where the app writes what went wrong: beside its settings (SPECTRAMORPH_SETTINGS_DIR
    when set, as in the tests), else the platform's folder for application data."""
    from .settings import ENV_DIR
    folder = os.environ.get(ENV_DIR)
    if not folder:
        from PySide6.QtCore import QStandardPaths
        folder = QStandardPaths.writableLocation(QStandardPaths.AppDataLocation) or str(Path.home())
    return Path(folder) / "studio.log"


def describe(exc: BaseException) -> tuple:
    """(sentence, details, is_user_error): the sentence a dialog shows, and for a bug the
    traceback that goes under "details" (empty for errors the user can fix)."""
    from spectramorph_engine import InputError
    if isinstance(exc, InputError):
        return str(exc), "", True
    if isinstance(exc, OSError):
        where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
        return f"cannot access{where}: {exc.strerror or exc}", "", True
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    first = str(exc).splitlines()[0] if str(exc) else ""
    sentence = (f"Something went wrong inside SpectraMorph Studio ({type(exc).__name__}"
                f"{': ' + first[:200] if first else ''}). Your data and settings are kept; the "
                f"details below are also in {log_path()}.")
    return sentence, details, False


def write_log(text: str) -> None:
    """Add a record to the app's log in one atomic replace (a crash mid-write cannot cut it)."""
    from spectramorph_engine.io.atomic import atomic_write_bytes
    path = log_path()
    try:
        old = path.read_bytes() if path.is_file() else b""
    except OSError:
        old = b""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    data = old + f"--- {stamp}\n{text.rstrip()}\n".encode("utf-8", "replace")
    if len(data) > LOG_LIMIT_BYTES:
        data = data[-LOG_LIMIT_BYTES:]
    try:
        atomic_write_bytes(path, data)
    except Exception:   # noqa: BLE001 - a log that cannot be written must not hide the dialog
        log.exception("cannot write %s", path)


class ErrorReporter(QObject):
    """Installs itself as sys.excepthook and threading.excepthook for the life of a window."""

    # (sentence, details); emitted from any thread, delivered on the GUI thread
    reported = Signal(str, str)

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.count = 0
        self._showing = False
        self._previous = None
        self.reported.connect(self._show, Qt.QueuedConnection)

    def install(self) -> None:
        """Become the hooks (again, if someone replaced them meanwhile)."""
        if sys.excepthook != self._excepthook:
            self._previous = (sys.excepthook, threading.excepthook)
            sys.excepthook = self._excepthook
            threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        if self._previous is not None:
            # another hook installed since (a test harness) stays in place
            if sys.excepthook == self._excepthook:
                sys.excepthook = self._previous[0]
            if threading.excepthook == self._thread_excepthook:
                threading.excepthook = self._previous[1]
            self._previous = None

    def report(self, exc: BaseException, where: str = "") -> None:
        """Log `exc` and queue its dialog; safe from any thread."""
        sentence, details, user = describe(exc)
        if not user:
            write_log(f"unexpected error{' in ' + where if where else ''}:\n{details}")
            log.error("unexpected error%s:\n%s", f" in {where}" if where else "", details)
        self.count += 1
        self.reported.emit(sentence, details)

    def _excepthook(self, exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):       # Ctrl+C in the terminal still quits
            if self._previous is not None:
                self._previous[0](exc_type, exc, tb)
            return
        if exc is None:
            exc = exc_type()
        exc.__traceback__ = tb
        self.report(exc)

    def _thread_excepthook(self, args) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "a thread"
        self.report(args.exc_value, where=name)

    @Slot(str, str)
    def _show(self, sentence: str, details: str) -> None:
        if self._showing:              # one dialog at a time: later errors are in the log
            return
        self._showing = True
        try:
            from .panels import dialogs
            dialogs.show_error(self.window, sentence, details)
        except Exception:              # noqa: BLE001 - the dialog itself failing must not loop
            write_log("the error dialog could not be shown:\n" + traceback.format_exc())
        finally:
            self._showing = False

