"""Typed progress events the pipeline delivers through its `progress` callback.

Every event is a small frozen dataclass; a client dispatches on its type.
Stage names are the strings in `STAGES` (a stage a run does not need is
skipped, never reported).
"""
from __future__ import annotations

from dataclasses import dataclass

STAGES = ("load", "select", "degrade", "nmf", "train", "inference", "refine", "fuse", "metrics", "save")


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
