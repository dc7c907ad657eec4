"""Live curves: training loss (log scale) and learning rate against epoch.

The worker delivers epochs in batches; this panel redraws from the state's
accumulated history on a 4 Hz timer, and only when the history changed, so a
fast run costs the screen a few redraws a second whatever its epoch rate.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

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

        layout = QVBoxLayout(self)
        layout.addWidget(self.loss_plot, 3)
        layout.addWidget(self.lr_plot, 2)
        layout.addWidget(self.summary)

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self.redraw)
        state.runStarted.connect(self._on_started)
        # The final history is drawn at once, not at the next tick.
        for sig in (state.runFinished, state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self._on_ended())

    def _on_started(self) -> None:
        self.loss_plot.enableAutoRange()
        self.lr_plot.enableAutoRange()
        self.redraw()
        self.timer.start()

    def _on_ended(self) -> None:
        self.timer.stop()
        self.redraw()

    def redraw(self) -> None:
        h = self.state.history
        if h.version == self._drawn_version:
            return
        self._drawn_version = h.version
        self.redraw_count += 1
        n = min(len(h.epoch), len(h.loss), len(h.lr))
        x = np.asarray(h.epoch[:n], dtype=float)
        loss = np.asarray(h.loss[:n], dtype=float)
        lr = np.asarray(h.lr[:n], dtype=float)
        self.loss_curve.setData(x, loss)
        self.lr_curve.setData(x, lr)
        for note in self.notes:
            note.setVisible(n == 0)
        if n:
            self.summary.setText(f"epoch {int(x[-1])}: loss {loss[-1]:.4g} (best {loss.min():.4g}), "
                                 f"lr {lr[-1]:.2e}")
        else:
            self.summary.setText("Waiting for the first epoch…")

    def point_count(self) -> int:
        x, _ = self.loss_curve.getOriginalDataset()
        return 0 if x is None else len(x)
