"""Typed progress events the pipeline delivers through its `progress` callback.

Every event is a small frozen dataclass; a client dispatches on its type.
Stage names are the strings in `STAGES` (a stage a run does not need is
skipped, never reported).
"""
from __future__ import annotations

from dataclasses import dataclass

STAGES = ("load", "check", "select", "tv", "degrade", "nmf", "train", "inference", "refine", "fuse", "metrics",
          "save")


@dataclass(frozen=True)
class StageStarted:
    stage: str


@dataclass(frozen=True)
class StageFinished:
    stage: str
    seconds: float


@dataclass(frozen=True)
class EpochEnd:
    """One training epoch done; `loss` is the epoch's mean absolute error."""
    epoch: int          # 1-based
    epochs: int
    loss: float
    lr: float


@dataclass(frozen=True)
class StageProgress:
    """Fraction done inside a long stage other than training (nmf, inference, save)."""
    stage: str
    fraction: float


@dataclass(frozen=True)
class Message:
    """Something the user should read (a chosen default, a warning)."""
    level: str          # "info" | "warning"
    text: str


# A fusion run inside a stage (the reduced-resolution check, auto-selection's candidates): the
# part of the outer stage's fraction each of its stages stands for, (start, share). Training
# dominates; a classical method's one stage is the whole.
NESTED_SHARES = {"nmf": (0.0, 0.1), "train": (0.1, 0.75), "inference": (0.85, 0.05), "refine": (0.9, 0.1),
                 "fuse": (0.0, 1.0)}
NESTED_STEP = 0.005         # the smallest rise reported (a fast training would send thousands)


class NestedProgress:
    """The progress callback of a fusion run inside the stage `stage`: its events become
    StageProgress(stage, f), f rising from `start` to `end` with the run's stages
    (NESTED_SHARES). Its own stages, epochs and messages are not passed on: the app and the CLI
    would read them as the main run's."""

    def __init__(self, progress, stage: str, start: float = 0.0, end: float = 1.0):
        self.progress, self.stage, self.start, self.end = progress, stage, float(start), float(end)
        self.sub = None
        self.last = float(start)

    def __call__(self, event) -> None:
        if isinstance(event, StageStarted):
            self.sub, within = event.stage, 0.0
        elif isinstance(event, EpochEnd):
            self.sub, within = "train", event.epoch / max(1, event.epochs)
        elif isinstance(event, StageProgress):
            self.sub, within = event.stage, event.fraction
        elif isinstance(event, StageFinished):
            self.sub, within = event.stage, 1.0
        else:
            return
        if self.sub not in NESTED_SHARES:
            return
        offset, share = NESTED_SHARES[self.sub]
        done = min(1.0, max(0.0, offset + share * min(1.0, max(0.0, float(within)))))
        fraction = self.start + (self.end - self.start) * done
        if fraction >= self.last + NESTED_STEP or (fraction >= self.end > self.last):
            self.last = fraction
            emit(self.progress, StageProgress(self.stage, fraction))


def nested_progress(progress, stage: str, start: float = 0.0, end: float = 1.0):
    """NestedProgress for `progress`, or None when there is no callback (nothing to compute)."""
    return None if progress is None else NestedProgress(progress, stage, start, end)


def emit(progress, event) -> None:
    """Deliver `event` to `progress` when one was given."""
    if progress is not None:
        progress(event)


def say(progress, level: str, text: str, log) -> None:
    """Tell the user: logged with `log` (the run's log file; the CLI's stderr when verbose) and
    emitted as a Message (the app; the CLI when it does not log). Every message goes both ways,
    once (the CLI printed some twice, others reached only one of the two)."""
    import logging
    log.log({"warning": logging.WARNING, "error": logging.ERROR}.get(level, logging.INFO), text)
    emit(progress, Message(level, text))


def check_cancel(cancel) -> None:
    """Raise `Cancelled` when the caller's token (a threading.Event) is set."""
    if cancel is not None and cancel.is_set():
        from .errors import Cancelled
        raise Cancelled("run cancelled")
