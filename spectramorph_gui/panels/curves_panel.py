"""Live curves: training loss (log scale) and learning rate against epoch.

The worker delivers epochs in batches; this panel redraws from the state's
accumulated history on a 4 Hz timer, and only when the history changed, so a
fast run costs the screen a few redraws a second whatever its epoch rate.

HySure trains nothing: after its run the loss plot shows its ADMM objective per
iteration (the result's loss history) and the learning-rate plot is hidden;
GLP-HS is not iterative: a sentence replaces both plots.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .method_text import curve_kind, has_training, short_name
from .plotting import LogAxis, empty_note, plain_axes

REDRAW_INTERVAL_MS = 250


class CurvesPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self._drawn_version = -1
        self.redraw_count = 0     # how many times the curves were actually redrawn (tests, profiling)

        self.loss_plot = pg.PlotWidget(title="Loss (mean absolute error)",
                                       axisItems={"left": LogAxis(orientation="left")})
        self.loss_plot.setLogMode(x=False, y=True)
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_plot.setLabel("left", "loss (log)")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.3)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen("#c62828", width=2))
        self.lr_plot = pg.PlotWidget(title="Learning rate")
        self.lr_plot.setLabel("bottom", "epoch")
        self.lr_plot.setLabel("left", "learning rate")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.3)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#1565c0", width=2))
        self.lr_plot.setXLink(self.loss_plot)
        plain_axes(self.loss_plot)
        plain_axes(self.lr_plot)
        self.notes = [empty_note(self.loss_plot, "loss: during a run"),
                      empty_note(self.lr_plot, "learning rate: during a run")]
        # An empty plot still shows a sensible frame: epochs 0..100, loss 0.001..1.
        self.loss_plot.setRange(xRange=(0, 100), yRange=(-3, 0), padding=0)
        self.lr_plot.setRange(xRange=(0, 100), yRange=(0, 0.01), padding=0)
        for curve in (self.loss_curve, self.lr_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self.summary = QLabel("No run yet.")
        self.summary.setObjectName("curvesSummary")
        self.no_curves = QLabel("")
        self.no_curves.setObjectName("noCurves")
        self.no_curves.setWordWrap(True)
        self.no_curves.setAlignment(Qt.AlignCenter)
        self.no_curves.setStyleSheet("color: #616161; background: #fafafa; border: 1px dashed #bdbdbd; "
                                     "padding: 12px;")
        self.no_curves.hide()
        self.method = "spectramorph"

        layout = QVBoxLayout(self)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.lr_plot, 2)
        layout.addWidget(self.no_curves, 5)
        layout.addWidget(self.summary)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self.redraw)
        state.runStarted.connect(self._on_started)
        # The final history is drawn at once, not at the next tick.
        state.runFinished.connect(lambda r: self._on_ended(r.method))
        for sig in (state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self._on_ended())

    def show_method(self, method: str) -> None:
        """Titles, axes and notes for what `method` reports: epochs of a network, iterations of
        an objective, or nothing."""
        self.method = method
        name = short_name(method)
        if has_training(method):
            self.loss_plot.setTitle("Loss (mean absolute error)")
            self.loss_plot.setLabel("bottom", "epoch")
            self.loss_plot.setLabel("left", "loss (log)")
            self.notes[0].setText("loss: during a run")
            self.notes[1].setText("learning rate: during a run")
        elif method == "hysure":
            self.loss_plot.setTitle(f"{name} objective (ADMM)")
            self.loss_plot.setLabel("bottom", "iteration")
            self.loss_plot.setLabel("left", "objective (log)")
            self.notes[0].setText(f"{name}'s objective: when the run ends")
        else:
            self.no_curves.setText(f"{name} is not iterative: it has no loss or learning-rate curves. "
                                   f"Its scores are in the results.")
        # no network, no learning rate: the objective (or the sentence) gets the room
        self.lr_plot.setVisible(has_training(method))
        self.loss_plot.setVisible(curve_kind(method) is not None)
        self.no_curves.setVisible(curve_kind(method) is None)

    def _on_started(self) -> None:
        self.show_method(self.state.progress.method)
        self.loss_plot.enableAutoRange()
        self.lr_plot.enableAutoRange()
        self.redraw()
        self.timer.start()

    def _on_ended(self, method=None) -> None:
        self.timer.stop()
        if method is not None:
            self.show_method(method)
        self.redraw()

    def redraw(self) -> None:
        h = self.state.history
        if h.version == self._drawn_version:
            return
        self._drawn_version = h.version
        self.redraw_count += 1
        # a method without a learning rate (HySure) still has its objective: each curve its own length
        n = min(len(h.epoch), len(h.loss))
        n_lr = min(len(h.epoch), len(h.lr))
        x = np.asarray(h.epoch[:n], dtype=float)
        loss = np.asarray(h.loss[:n], dtype=float)
        lr = np.asarray(h.lr[:n_lr], dtype=float)
        self.loss_curve.setData(x, loss)
        self.lr_curve.setData(x[:n_lr], lr)
        self.notes[0].setVisible(n == 0)
        self.notes[1].setVisible(n_lr == 0)
        if n and n_lr:
            self.summary.setText(f"epoch {int(x[-1])}: loss {loss[-1]:.4g} (best {loss.min():.4g}), "
                                 f"lr {lr[-1]:.2e}")
        elif n:
            self.summary.setText(f"iteration {int(x[-1])}: objective {loss[-1]:.4g} (first {loss[0]:.4g})")
        elif self.state.running and has_training(self.method):
            self.summary.setText("Waiting for the first epoch…")
        elif self.state.running:
            self.summary.setText(f"{short_name(self.method)}: no curves to draw while it runs.")
        else:
            self.summary.setText(f"{short_name(self.method)}: no curves for this run.")

    def point_count(self) -> int:
        x, _ = self.loss_curve.getOriginalDataset()
        return 0 if x is None else len(x)
