"""The results panel's frame: the guide before the first result (with its big Run / Stop
button and the run's progress), the banner and the settings-used line over the result, and
the method's own views under the image -- endmember spectra, the ALLE grid, the scores.

A mixin of `ResultsPanel`: it reads `self.state` (the application) and `self.result`.
"""
from __future__ import annotations

from html import escape

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QSizePolicy, QSplitter,
                               QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spectramorph_engine.quality.previews import shared_range

from ..run_summary import _fmt, consistency_columns, no_unmixing_note, result_facts, run_summary
from .fields import format_clock
from .method_text import has_training, short_name
from .plotting import FigureLegend, curve_pen, display_copy
from .style import RUN_STYLE, STOP_STYLE, WARNING_STYLE

ALLE_COLORMAP = "viridis"
ALLE_MAX_SIDE = 384               # the abundance maps are thumbnails
ALLE_BAR_WIDTH = 60               # the shared colour bar with its tick labels (px)


def alle_grid(k: int, width: int, height: int) -> tuple:
    """(columns, rows) for k square maps in a width x height panel: as many columns as make the
    maps biggest (a square grid of 7 in the usual wide, short panel left each map a third of
    the height, drawn a fifth of its cell)."""
    if width < 60 or height < 60:          # not laid out yet: a square grid
        cols = max(1, math.ceil(math.sqrt(k)))
        return cols, math.ceil(k / cols)

    def side(cols):
        return min(width / cols, height / math.ceil(k / cols))
    cols = max(range(1, max(1, k) + 1), key=lambda c: (side(c), -c))
    return cols, math.ceil(k / cols)


def group(title: str, widget: QWidget, extra: QWidget | None = None) -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(2, 2, 2, 2)
    lay.setSpacing(2)
    head = QLabel(f"<b>{title}</b>")
    head.setWordWrap(True)
    lay.addWidget(head)
    if extra is not None:
        lay.addWidget(extra)
    lay.addWidget(widget, 1)
    return box


def note_label(name: str) -> QLabel:
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignCenter)
    label.setStyleSheet("color: #616161; background: #fafafa; border: 1px dashed #bdbdbd; padding: 12px;")
    return label


class ResultsOverview:
    """Welcome page, run lifecycle, banner; endmembers, ALLE maps and scores."""

    # ------------------------------------------------------------------ building
    def _build_overview(self) -> QWidget:
        """The banner, settings-used and warnings lines, and the guide (returned)."""
        self.banner = QLabel("")
        self.banner.setObjectName("resultsBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.warnings_label = QLabel("")
        self.warnings_label.setObjectName("resultWarnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(WARNING_STYLE)
        self.warnings_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.warnings_label.hide()
        # How the result was made: the settings actually used and what auto-selection chose.
        self.run_summary = QLabel("")
        self.run_summary.setObjectName("runSummary")
        self.run_summary.setWordWrap(True)
        self.run_summary.setTextFormat(Qt.RichText)
        self.run_summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.run_summary.hide()

        # --- before the first result: what this is and what to do ---
        self.welcome_text = QLabel()
        self.welcome_text.setObjectName("welcomeText")
        self.welcome_text.setWordWrap(True)
        self.welcome_text.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.welcome_run = QPushButton("▶  Run")
        self.welcome_run.setObjectName("welcomeRunButton")
        self.welcome_run.setMinimumSize(220, 52)
        self.welcome_run.setStyleSheet(RUN_STYLE)
        self.welcome_run.setToolTip("Fuse the current inputs with the current parameters (Ctrl+R).")
        self.welcome_progress = QProgressBar()
        self.welcome_progress.setObjectName("welcomeProgress")
        self.welcome_progress.setMinimumHeight(26)
        self.welcome_progress.hide()
        welcome = QWidget()
        wl = QVBoxLayout(welcome)
        wl.addStretch(1)
        # Stretches either side keep the text a readable width; an alignment flag instead
        # would make the word-wrapped label lose its height-for-width and cut lines off.
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(self.welcome_text, 8)
        text_row.addStretch(1)
        wl.addLayout(text_row)
        wl.addSpacing(12)
        wl.addWidget(self.welcome_run, 0, Qt.AlignHCenter)
        progress_row = QHBoxLayout()
        progress_row.addStretch(1)
        progress_row.addWidget(self.welcome_progress, 6)
        progress_row.addStretch(1)
        wl.addLayout(progress_row)
        wl.addStretch(2)
        return welcome

    def _build_unmixing_area(self) -> QWidget:
        """Endmember spectra beside the ALLE grid (returned); the scores table (`metrics_box`)."""
        self.endmember_plot = pg.PlotWidget()
        self.endmember_plot.showGrid(x=True, y=True, alpha=0.3)
        self.endmember_plot.setLabel("left", "value (normalised)")
        self.endmember_legend = FigureLegend(self.endmember_plot)     # under the plot, not over the curves
        self.alle_widget = pg.GraphicsLayoutWidget()
        self.alle_widget.ci.setContentsMargins(2, 2, 2, 2)
        self.alle_widget.ci.setSpacing(2)
        self.alle_bar = None
        # Scores: one row per method, one column per figure (as in papers); fits a laptop's width.
        self.metrics_table = QTableWidget(0, 0)
        self.metrics_table.setObjectName("metricsTable")
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.metrics_table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.metrics_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.metrics_table.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.metrics_table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.metrics_title = QLabel("<b>Scores</b>")
        self.metrics_title.setWordWrap(True)
        metrics_box = QWidget()
        ml = QVBoxLayout(metrics_box)
        ml.setContentsMargins(2, 2, 2, 2)
        ml.setSpacing(2)
        ml.addWidget(self.metrics_title)
        ml.addWidget(self.metrics_table)
        self.metrics_box = metrics_box

        # A method without endmembers (GLP-HS, HySure) shows a note in their place, not stale plots.
        self.endmember_note = note_label("endmemberNote")
        self.alle_note = note_label("alleNote")
        self.endmember_stack = QStackedWidget()
        self.endmember_stack.addWidget(self.endmember_plot)
        self.endmember_stack.addWidget(self.endmember_note)
        self.alle_stack = QStackedWidget()
        self.alle_stack.addWidget(self.alle_widget)
        self.alle_stack.addWidget(self.alle_note)
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(group("Endmember spectra (NMF of the LR-HSI)", self.endmember_stack))
        bottom.addWidget(group("Abundance-like maps (ALLE), shared colour scale", self.alle_stack))
        bottom.setSizes([500, 500])
        return bottom

    # ------------------------------------------------------------------ before any result
    def _welcome_clicked(self) -> None:
        s = self.state
        if s.running:
            from .training_panel import stop_asking
            stop_asking(s, self)
        elif s.prepared is not None:
            s.start_run()

    def _update_welcome_button(self) -> None:
        s = self.state
        if s.running:
            self.welcome_run.setText("■  Stop")
            self.welcome_run.setStyleSheet(STOP_STYLE)
            self.welcome_run.setToolTip("Stop: finish with the network trained so far, or discard the run "
                                        "(asks first; Esc).")
            self.welcome_run.setEnabled(True)
        else:
            self.welcome_run.setText("▶  Run")
            self.welcome_run.setStyleSheet(RUN_STYLE)
            self.welcome_run.setToolTip("Fuse the current inputs with the current parameters (Ctrl+R).")
            self.welcome_run.setEnabled(s.prepared is not None)

    def _update_welcome(self, running: bool = False, ended: str = "") -> None:
        s = self.state
        src = s.truth if s.config.synthetic else s.lr_hsi
        if s.config.synthetic and src is not None:
            loaded = (f"the <b>{escape(src.label)}</b> ({' × '.join(map(str, src.data.shape))}) as ground truth; "
                      f"the engine degrades it into the LR-HSI and HR-MSI shown in the <i>Data</i> panel")
        elif not s.config.synthetic:
            loaded = "your HR-MSI and LR-HSI (<i>Data</i> panel)"
        else:
            loaded = "nothing yet"
        if running and has_training(s.progress.method):
            first = ("" if s.config.synthetic else
                     "Your pair's settings are checked on a reduced-resolution copy first (short trainings; "
                     "the bar below says how far). ")
            status = (f"<p style='color:#e65100'><b>Running…</b> {first}While the network trains, the loss "
                      "and learning-rate curves grow in <i>Live curves</i> (right); <b>Stop</b> ends the run "
                      "within a second.</p>")
        elif running:
            status = (f"<p style='color:#e65100'><b>Fusing with {escape(short_name(s.progress.method))}…</b> "
                      f"<b>Stop</b> ends the run within a second.</p>")
        elif ended:
            status = f"<p style='color:#b71c1c'><b>{ended}</b>: no result. Press Run to start again.</p>"
        elif s.prepared is None:
            status = f"<p style='color:#b71c1c'>{escape(s.prepare_error or 'Preparing the inputs…')}</p>"
        else:
            status = ""
        self.welcome_text.setText(
            "<h2>SpectraMorph Studio</h2>"
            "<p>Fuses a low-resolution hyperspectral image (LR-HSI) with a high-resolution multispectral "
            "image (HR-MSI) into a high-resolution hyperspectral image.</p>"
            f"<p><b>Loaded:</b> {loaded}.</p>"
            "<ol><li>Look at the inputs and the sensor models in the <i>Data</i>, <i>PSF</i> and <i>SRF</i> "
            "tabs (left). Every parameter is at its default; hover over one to see what it does.</li>"
            "<li>Press <b>Run</b>. The live curves (right) show the training; Stop ends it at any time.</li>"
            "<li>The result appears here: the fused image (hover or click a pixel for its spectra), the "
            "endmember spectra, the abundance-like maps and the scores.</li>"
            "<li>Your own data: choose <i>Real-world</i> in the <i>Data</i> panel and open your HR-MSI "
            "and LR-HSI.</li></ol>" + status)
        self._update_welcome_button()

    # ------------------------------------------------------------------ run state
    def _on_run_started(self) -> None:
        self._update_welcome_button()
        if self.result is None:
            self._update_welcome(running=True)
            self.welcome_progress.setRange(0, 0)
            self.welcome_progress.setFormat("starting…")
            self.welcome_progress.show()
            return
        doing = "Training" if has_training(self.state.progress.method) else \
            f"Fusing with {escape(short_name(self.state.progress.method))}"
        self.banner.setText(f"<b>{doing}…</b> the result below is the previous run's; it is replaced "
                            "when this run finishes.")
        self.banner.setStyleSheet("color:#e65100")

    def _on_progress(self, p) -> None:
        if self.result is not None or not self.welcome_progress.isVisible():
            return
        bar = self.welcome_progress
        if p.stage == "train" and p.epochs:
            bar.setRange(0, p.epochs)
            bar.setValue(p.epoch)
            loss = "–" if p.loss is None else f"{p.loss:.4g}"
            bar.setFormat(f"epoch {p.epoch} / {p.epochs}   ·   loss {loss}   ·   {format_clock(p.eta)} left")
        elif p.stage in ("done", "stopped", "failed"):
            return
        else:
            from .training_panel import stage_text
            text = stage_text(p.stage, p.method)
            if p.fraction is not None:
                bar.setRange(0, 1000)
                bar.setValue(int(1000 * p.fraction))
                bar.setFormat(f"{text} {100 * p.fraction:.0f}%")
            else:
                bar.setRange(0, 0)
                bar.setFormat(text)

    def _on_run_ended(self, what: str) -> None:
        self.welcome_progress.hide()
        if self.result is None:
            self._update_welcome(ended=what)
        else:
            self._update_welcome_button()
            self.banner.setText(f"<b>{what}</b>: this run produced no result; shown below is the "
                                f"previous run's (finished {self._finished_at}).")
        self.banner.setStyleSheet("color:#b71c1c")

    def _mark_stale(self, stale: bool) -> None:
        """After new inputs, the result on screen is the last run's: say so (it stays until a new one)."""
        if self.result is None or not stale or self.state.running:
            return
        mode = "synthetic" if self.result.prepared.mode == "synthetic" else "real-world"
        self.banner.setStyleSheet("color:#e65100")
        self.banner.setText(f"<b>Shown: the last run's result</b> ({mode}, finished {self._finished_at}). "
                            f"The inputs have changed since: press <b>Run</b> for a result of the current ones.")


    # ------------------------------------------------------------------ a new result
    def _show_result_text(self, result) -> None:
        """The banner, the settings-used line and the warnings of a new result."""
        self.banner.show()
        prep = result.prepared
        h, w, c = result.hr_hsi.shape
        self.banner.setStyleSheet("color:#1b5e20")
        mode = "synthetic" if prep.mode == "synthetic" else "real-world"
        self.banner.setText(f"<b>Result of {escape(short_name(result.method))}</b> {h}×{w}×{c} ({mode}), "
                            f"{escape(result_facts(result))}{sum(result.timings.values()):.1f} s on "
                            f"{result.device} (finished {self._finished_at}). Hover or click the image for "
                            f"pixel spectra.")
        summary, details = run_summary(result)
        self.run_summary.setText(summary)
        self.run_summary.setToolTip(details)
        self.run_summary.setVisible(bool(summary))
        warnings = list(dict.fromkeys(result.warnings or []))
        self.warnings_label.setText("<br>".join(f"⚠ {escape(w_)}" for w_ in warnings))
        self.warnings_label.setVisible(bool(warnings))

    # ------------------------------------------------------------------ endmembers, ALLE, scores
    def _draw_endmembers(self) -> None:
        r = self.result
        for c in self.endmember_curves:
            self.endmember_plot.removeItem(c)
        self.endmember_legend.clear()
        self.endmember_curves = []
        if r.endmembers is None:
            self.endmember_note.setText(no_unmixing_note(r.method))
            self.endmember_stack.setCurrentIndex(1)
            return
        self.endmember_stack.setCurrentIndex(0)
        k = r.endmembers.shape[0]
        x = self._x()
        self.endmember_curves = [self.endmember_plot.plot(x, r.endmembers[i], pen=curve_pen(i, k),
                                                          name=f"E{i + 1}") for i in range(k)]
        self.endmember_legend.setVisible(k <= 12)
        self.endmember_plot.autoRange()

    def _draw_alle(self) -> None:
        r = self.result
        self.alle_widget.clear()
        self.alle_images = []
        alle = r.alle
        if alle is None:
            self.alle_bar = None
            self.alle_note.setText(f"No abundance maps: {short_name(r.method)} does not unmix the scene.")
            self.alle_stack.setCurrentIndex(1)
            return
        self.alle_stack.setCurrentIndex(0)
        k = alle.shape[2]
        cols, rows = alle_grid(k, self.alle_widget.width() - ALLE_BAR_WIDTH, self.alle_widget.height())
        # the thumbnails first: the colour scale is taken over what is drawn (on the GUI thread,
        # the whole 2048^2 maps' min and max took a third of the stall budget at a run's end)
        small, step = display_copy(alle, ALLE_MAX_SIDE)     # every step-th pixel of all maps at once
        thumbs = [np.ascontiguousarray(small[:, :, i]) for i in range(k)]
        # One colour scale for every map, so their values can be compared at a glance.
        lo, hi = shared_range(thumbs)
        cmap = pg.colormap.get(ALLE_COLORMAP)
        for i in range(k):
            # a bare view box per map, not a PlotItem: each PlotItem builds four axes and an
            # options form (9 took 0.3 s on the GUI thread at the end of every run); its number
            # and its endmember's colour on the map's corner, not in a title row above it (the
            # rows of titles left 7 maps a fifth of their cells)
            box = self.alle_widget.addViewBox(row=i // cols, col=i % cols, enableMenu=False)
            box.setAspectLocked(True)
            box.invertY(True)
            img = pg.ImageItem(thumbs[i], levels=(lo, hi))
            if step > 1:
                img.setRect(QRectF(0, 0, alle.shape[1], alle.shape[0]))
            img.setColorMap(cmap)
            box.addItem(img)
            colour = curve_pen(i, k).color().name()
            tag = pg.TextItem(html=f"<span style='background:#ffffff;font-size:8pt'><span style='color:{colour}'>"
                                   f"■</span><span style='color:#222'>&nbsp;ALLE {i + 1}</span></span>", anchor=(0, 0))
            tag.setPos(0, 0)
            box.addItem(tag, ignoreBounds=True)
            box.autoRange(padding=0.01)
            self.alle_images.append(img)
        self.alle_bar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False, width=12,
                                        pen="k")
        self.alle_bar.setImageItem(self.alle_images)
        self.alle_widget.addItem(self.alle_bar, row=0, col=cols, rowspan=rows)
        # its tick labels keep their room however many map columns share the width
        self.alle_widget.ci.layout.setColumnMinimumWidth(cols, ALLE_BAR_WIDTH)

    def _draw_metrics(self) -> None:
        r = self.result
        columns = []    # (header, tooltip, fusion value, bicubic value)
        digits = 4
        name = escape(short_name(r.method))
        if r.metrics:
            from spectramorph_engine.quality.metrics import METRIC_INFO
            self.metrics_title.setText(f"<b>Scores of {name} against the ground truth</b> (ratio "
                                       f"{r.prepared.ratio}; ↑ higher is better, ↓ lower is better)")
            for name, value in r.metrics.items():
                unit, higher, text = METRIC_INFO.get(name, ("", True, ""))
                base = (r.bicubic_metrics or {}).get(name)
                columns.append((f"{name}\n{f'{unit} ' if unit else ''}{'↑' if higher else '↓'}",
                                f"{text} {'Higher' if higher else 'Lower'} is better.", value, base))
            digits = 4
        elif r.consistency:
            digits = 3
            self.metrics_title.setText(f"<b>Consistency of {name}</b> (real-world mode has no ground truth): "
                                       "the result degraded back against the inputs, and Wald's "
                                       "reduced-resolution test. Hover a column for its meaning.")
            columns = consistency_columns(r.consistency)
        else:
            self.metrics_title.setText(f"<b>Scores of {name}</b>: none for this run")
        t = self.metrics_table
        t.clear()
        t.setColumnCount(len(columns))
        t.setRowCount(2 if columns else 0)
        t.setVerticalHeaderLabels([short_name(r.method), "bicubic"])
        for col, (header, tip, value, base) in enumerate(columns):
            head = QTableWidgetItem(header)
            head.setToolTip(tip)
            t.setHorizontalHeaderItem(col, head)
            for row, v in enumerate((value, base)):
                item = QTableWidgetItem(_fmt(v, digits))
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                item.setToolTip(tip)
                t.setItem(row, col, item)
        t.resizeRowsToContents()
        header = t.horizontalHeader().sizeHint().height() if columns else 0
        height = header + sum(t.rowHeight(i) for i in range(t.rowCount())) + 2 * t.frameWidth() + 2
        t.setFixedHeight(max(height, 30))

    def metric_value(self, name: str, row: int = 0):
        """The number shown in column `name` ('PSNR', 'LR SAM', ...; row 0 the method, 1 bicubic)."""
        t = self.metrics_table
        for col in range(t.columnCount()):
            head = t.horizontalHeaderItem(col).text().split("\n")
            label = head[0] if len(head) == 2 else " ".join(head[:2])   # 'PSNR' / 'LR PSNR'
            if label == name:
                return float(t.item(row, col).text())
        raise KeyError(name)
