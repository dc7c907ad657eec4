"""What a run has done so far, as the app shows it: `RunProgress` (stage, epoch, loss, time
left) and `History` (the loss and learning-rate curves), both plain data filled by AppState."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RunProgress:
    stage: str = ""
    method: str = "spectramorph"          # the run's fusion method (config.method when it started)
    epoch: int = 0
    epochs: int = 0
    loss: Optional[float] = None
    lr: Optional[float] = None
    fraction: Optional[float] = None      # inside a non-training stage
    elapsed: float = 0.0
    eta: Optional[float] = None           # seconds left in training


@dataclass
class History:
    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    version: int = 0                      # bumped on every change, for throttled redraws

    def clear(self):
        self.epoch.clear(), self.loss.clear(), self.lr.clear()
        self.version += 1
