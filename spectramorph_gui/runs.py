"""Kept runs: every run since the app started, each a small record pointing at its folder.

A run writes its outputs (result cube, figures, scores, run.json) into its own folder under
this session's runs folder, the same way the CLI writes them -- a big real-world result is
streamed to its file during inference, never held in memory -- and the record keeps the
result memory-mapped from that file. The session folder lives in the user's cache folder
(not /tmp, which is often RAM) and is removed when the app closes; folders of sessions whose
process is gone are removed at the next start. SPECTRAMORPH_RUNS_DIR overrides the place.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)


def runs_root() -> Path:
    env = os.environ.get("SPECTRAMORPH_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    from PySide6.QtCore import QStandardPaths
    cache = QStandardPaths.writableLocation(QStandardPaths.CacheLocation)
    return Path(cache or Path.home() / ".cache" / "spectramorph-studio") / "runs"


def _alive(pid: int) -> bool:
    import psutil
    return psutil.pid_exists(pid)


def remove_stale_sessions(root: Path) -> None:
    """Folders of earlier sessions whose process has ended (a crash, a kill) go."""
    if not root.is_dir():
        return
    for folder in root.glob("session-*"):
        try:
            pid = int(folder.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            shutil.rmtree(folder, ignore_errors=True)


class RunStore:
    """This session's runs folder: one numbered sub-folder per run."""

    def __init__(self):
        self.root = runs_root()
        self._folder: Optional[Path] = None
        self._count = 0

    @property
    def folder(self) -> Path:
        if self._folder is None:
            remove_stale_sessions(self.root)
            self._folder = self.root / f"session-{os.getpid()}-{int(time.time())}"
            self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder

    def next_run_folder(self) -> tuple:
        """(number, folder) for the next run; the folder itself is made by the engine's writer."""
        self._count += 1
        return self._count, self.folder / f"run_{self._count:03d}"

    def discard(self, folder) -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


@dataclass
class RunRecord:
    """One kept run: the settings it was started with, its result (cube memory-mapped from
    `folder`), and when it finished."""
    number: int
    config: object                 # FusionConfig the run was started with
    result: object                 # FusionResult; hr_hsi memory-mapped from its file
    folder: Path
    finished_at: str = ""
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"Run {self.number}"

    def settings_text(self) -> str:
        """The key settings, one short line (method and what distinguishes its runs)."""
        from .panels.method_text import short_name
        c = self.result.config_used or self.config
        parts = [short_name(c.method)]
        if c.method == "spectramorph":
            info = self.result.method_info or {}
            stopped = getattr(self.result, "training_stopped", None)
            epochs = f"{stopped['epoch']} of {stopped['epochs']} ep" if stopped else f"{c.epochs} ep"
            parts += [f"K {c.num_endmembers}", epochs, f"hidden {c.hidden_size}",
                      f"prior {'on' if info.get('prior') else 'off'}" if "prior" in info else "",
                      "refined" if info.get("refinement") else ""]
        elif c.method == "hysure":
            ran = (self.result.method_info or {}).get("iterations", c.hysure_iterations)
            parts += [f"{ran} it"]
        return ", ".join(p for p in parts if p)

    def score_text(self) -> str:
        """PSNR / SAM against the truth (synthetic), or the LR consistency PSNR (real)."""
        r = self.result
        if r.metrics:
            psnr, sam = r.metrics.get("PSNR"), r.metrics.get("SAM")
            return " · ".join(t for t in (f"PSNR {psnr:.2f} dB" if psnr is not None else "",
                                          f"SAM {sam:.2f}°" if sam is not None else "") if t)
        cons = (r.consistency or {}).get("lr_consistency") or {}
        if "PSNR" in cons:
            return f"LR consistency PSNR {cons['PSNR']:.2f} dB"
        return ""
