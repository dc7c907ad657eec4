"""Training panel: Run / Stop, the progress of a run, and every training parameter.

The parameters are bound to the config (defaults, units and tooltips from
one table below); Run hands the current config and inputs to the worker.
"""
from __future__ import annotations

from html import escape

from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from spectramorph_engine.config import DEVICES, SCHEDULERS

from .fields import ConfigForm, Field, format_clock
from .style import RUN_STYLE, STOP_STYLE

STAGE_TEXT = {"starting": "Starting…", "load": "Preparing the inputs…", "degrade": "Degrading…",
              "nmf": "Extracting endmembers (NMF)…", "train": "Training", "inference": "Inference…",
              "metrics": "Scoring…", "save": "Saving…", "done": "Finished", "stopped": "Stopped",
              "failed": "Failed"}

TRAINING_FIELDS = [
    Field("epochs", "Epochs", "Training passes over the LR pixels.", minimum=1, maximum=1_000_000, step=100),
    Field("num_endmembers", "Endmembers K", "Number of NMF components (materials) taken from the LR-HSI; "
          "at most min(LR pixels, bands).", minimum=1, maximum=256),
    Field("hidden_size", "Hidden units", "Width of the per-pixel network's hidden layer.", minimum=1,
          maximum=65536, step=64),
    Field("scheduler", "LR schedule", "one_cycle: linear from the initial LR up to the maximum over the first "
          "30% of epochs, then down to the final LR; flat: the initial LR throughout.", kind="choice",
          choices=SCHEDULERS),
    Field("init_lr", "Initial LR", "Adam learning rate at epoch 1 (and throughout with 'flat').", kind="sci"),
    Field("max_lr", "Maximum LR", "Peak learning rate of one_cycle, reached at 30% of the epochs.", kind="sci"),
    Field("final_lr", "Final LR", "Learning rate at the last epoch of one_cycle.", kind="sci"),
    Field("training_batch_size", "Training batch", "LR pixels per optimiser step, shuffled every epoch; "
          "'all' trains on every pixel at once.", kind="opt_int", unit="px", minimum=1, maximum=10 ** 8,
          step=256, null_text="all"),
    Field("inference_batch_size", "Inference batch", "HR pixels per inference batch: bounds memory, the "
          "result is identical; 'auto' picks a size.", kind="opt_int", unit="px", minimum=1,
          maximum=10 ** 9, step=4096, null_text="auto"),
    Field("spec_prior", "Spectral prior", "Coarse spectral prior (CSP): feed each pixel a coarse LR-HSI "
          "spectrum beside its MSI values.", kind="bool", null_text="use the coarse prior"),
    Field("prior_downsample", "Prior downsample", "Area-downsampling factor of the LR-HSI that makes the "
          "coarse prior during training.", unit="×", minimum=1, maximum=64),
    Field("device", "Device", "Where torch runs: auto picks CUDA, then MPS, then CPU.", kind="choice",
          choices=DEVICES),
    Field("verbose", "Log level", "0: warnings only in the log; 1: stage lines and timings.",
          minimum=0, maximum=2),
]


class TrainingPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state

        self.run_button = QPushButton("▶  Run")
        self.run_button.setObjectName("runButton")
        self.run_button.setToolTip("Fuse the current inputs with these parameters (Ctrl+R).")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.stop_button.setToolTip("Stop training within a second; no result is kept (Esc).")
        self.stop_button.setEnabled(False)
        for b in (self.run_button, self.stop_button):
            b.setMinimumHeight(40)
        self.run_button.setStyleSheet(RUN_STYLE)
        self.stop_button.setStyleSheet(STOP_STYLE)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("ready")
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setMinimumHeight(24)
        self.progress_bar.setObjectName("runProgress")
        self.status_label = QLabel("Ready.")
        self.status_label.setObjectName("runStatus")
        self.status_label.setWordWrap(True)

        run_box = QGroupBox("Run")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.stop_button, 1)
        box_layout = QVBoxLayout(run_box)
        box_layout.addLayout(buttons)
        box_layout.addWidget(self.progress_bar)
        box_layout.addWidget(self.status_label)

        self.form = ConfigForm(state, TRAINING_FIELDS)
        params = QGroupBox("Training parameters")
        QVBoxLayout(params).addWidget(self.form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(params)

        layout = QVBoxLayout(self)
        layout.addWidget(run_box)
        layout.addWidget(scroll, 1)

        self.run_button.clicked.connect(self.run)
        self.stop_button.clicked.connect(state.stop_run)
        state.runStarted.connect(self._on_started)
        state.runProgress.connect(self._on_progress)
        state.runFinished.connect(lambda r: self._on_ended(f"Finished: final loss {r.final_loss:.4g}, "
                                                           f"device {r.device}."))
        state.runFailed.connect(lambda text: self._on_ended(f"Failed: {text}", error=True))
        state.runCancelled.connect(lambda text: self._on_ended(
            f"Stopped at epoch {state.progress.epoch}: no result."))
        state.preparedChanged.connect(lambda _p: self._update_run_enabled())
        state.busyChanged.connect(lambda _l: self._update_run_enabled())
        self._update_run_enabled()

    # ------------------------------------------------------------------ user actions
    def run(self) -> None:
        if self.run_button.isEnabled():
            self.state.start_run()

    # ------------------------------------------------------------------ reactions
    def _update_run_enabled(self) -> None:
        s = self.state
        ready = s.prepared is not None and not s.running
        self.run_button.setEnabled(ready)
        if s.running:
            return
        if s.prepared is None:
            self.run_button.setToolTip(s.prepare_error or "Waiting for the inputs to be prepared.")
        else:
            self.run_button.setToolTip("Fuse the current inputs with these parameters (Ctrl+R).")

    def _on_started(self) -> None:
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.form.setEnabled(False)
        self.progress_bar.setRange(0, self.state.config.epochs)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("starting…")
        self.status_label.setText("Starting…")

    def _on_progress(self, p) -> None:
        stage = STAGE_TEXT.get(p.stage, p.stage)
        if p.stage == "train" and p.epochs:
            self.progress_bar.setRange(0, p.epochs)
            self.progress_bar.setValue(p.epoch)
            loss = "–" if p.loss is None else f"{p.loss:.4g}"
            lr = "–" if p.lr is None else f"{p.lr:.2e}"
            self.progress_bar.setFormat(f"epoch {p.epoch} / {p.epochs} · loss {loss} · {format_clock(p.eta)} left")
            self.status_label.setText(f"<b>Training</b> &nbsp; loss {loss} &nbsp; lr {lr} &nbsp; "
                                      f"<b>{format_clock(p.eta)}</b> left &nbsp; ({format_clock(p.elapsed)} elapsed)")
        elif p.stage in ("nmf", "inference", "metrics", "save", "load", "starting", "degrade"):
            if p.fraction is not None:
                self.progress_bar.setRange(0, 1000)
                self.progress_bar.setValue(int(1000 * p.fraction))
                self.progress_bar.setFormat(f"{stage} {100 * p.fraction:.0f}%")
            else:
                self.progress_bar.setRange(0, 0)   # busy indicator: no fraction known
            self.status_label.setText(f"{stage} &nbsp; ({format_clock(p.elapsed)} elapsed)")

    def _on_ended(self, text: str, error: bool = False) -> None:
        self.stop_button.setEnabled(False)
        self.form.setEnabled(True)
        p = self.state.progress
        if p.stage == "done":
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
            self.progress_bar.setFormat(f"done – {p.epochs or self.state.config.epochs} epochs")
        else:
            self.progress_bar.setRange(0, max(p.epochs, 1))
            self.progress_bar.setValue(p.epoch)
            self.progress_bar.setFormat("stopped" if p.stage == "stopped" else "failed")
        colour = "#b71c1c" if error else "#1b5e20" if p.stage == "done" else "#e65100"
        self.status_label.setText(f"<span style='color:{colour}'>{escape(text)}</span>")
        self._update_run_enabled()
