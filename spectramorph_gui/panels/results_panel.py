"""Results: the fused image, pixel spectra, endmembers, ALLE maps and the scores.

Everything drawn here is read from the `FusionResult`: the panel picks bands,
indexes pixels and lays out plots, nothing more. Hovering over the image
shows that pixel's spectra; a click pins the pixel (marked in magenta) so the
spectra stay when the mouse leaves.

Before the first result the panel is a short guide with a big Run button
(a Stop button and the run's progress while training).
"""
from __future__ import annotations

from html import escape

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QSlider, QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from spectramorph_engine.previews import composite, default_rgb_bands, display_levels, shared_range

from .fields import format_clock
from .method_text import has_training, short_name
from .plotting import BandPicker, ImageView, band_name, curve_pen, plain_axes
from .style import RUN_STYLE, STOP_STYLE, WARNING_STYLE

ALLE_COLORMAP = "viridis"


def _group(title: str, widget: QWidget, extra: QWidget | None = None) -> QWidget:
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


class ResultsPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.result = None
        self.pixel = None          # pinned (row, col)
        self.alle_images: list = []
        self.endmember_curves: list = []
        self._band_key = None
        self._finished_at = ""
        self._levels = None        # display levels of the result composite, reused for the truth

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

        # --- result image and its controls ---
        self.view = ImageView("Result (HR-HSI)")
        self.view.setMinimumSize(200, 200)
        self.show_combo = QComboBox()
        self.show_combo.addItem("Result", "result")
        self.show_combo.addItem("Ground truth", "truth")
        self.show_combo.addItem("Misfit: HR-MSI vs LR-HSI", "misfit_pair")
        self.show_combo.addItem("Misfit: result vs LR-HSI", "misfit_result")
        self.show_combo.setToolTip(
            "Which cube the image shows (the ground truth exists in synthetic mode); the spectra always show "
            "all of them.<br><b>Misfit</b> (real-world mode), per LR pixel, RMS in the normalised scale: "
            "<i>HR-MSI vs LR-HSI</i> = how far the HR-MSI brought to the LR grid and the LR-HSI seen through "
            "the SRF disagree (high where the scene changed between the two images, clouds, shadows, "
            "misregistration: trust the result less there); <i>result vs LR-HSI</i> = how far the result "
            "degraded back is from the LR-HSI.")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("RGB", "rgb")
        self.mode_combo.addItem("Band", "band")
        self.mode_combo.setToolTip("RGB composite of three bands, or one band in grey")
        self.band_slider = QSlider(Qt.Horizontal)
        self.band_slider.setRange(0, 0)
        self.band_slider.setToolTip("Band shown in single-band mode")
        self.band_label = QLabel("band 0")
        self.band_label.setMinimumWidth(110)
        self.band_picker = BandPicker()
        self.band_stack = QStackedWidget()
        self.band_stack.addWidget(self.band_picker)
        slider_box = QWidget()
        sl = QHBoxLayout(slider_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.band_slider, 1)
        sl.addWidget(self.band_label)
        self.band_stack.addWidget(slider_box)
        self.band_stack.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.band_stack.setFixedHeight(self.band_picker.sizeHint().height())
        controls = QWidget()
        cl = QGridLayout(controls)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setVerticalSpacing(2)
        cl.addWidget(self.show_combo, 0, 0)
        cl.addWidget(self.mode_combo, 0, 1)
        cl.setColumnStretch(2, 1)
        cl.addWidget(self.band_stack, 1, 0, 1, 3)
        image_box = QWidget()
        il = QVBoxLayout(image_box)
        il.setContentsMargins(2, 2, 2, 2)
        il.setSpacing(2)
        il.addWidget(controls)
        il.addWidget(self.view, 1)

        # --- spectra of one pixel ---
        self.pixel_label = QLabel("Hover over or click the image to see a pixel's spectra.")
        self.pixel_label.setObjectName("pixelLabel")
        self.pixel_label.setWordWrap(True)
        self.spectrum_plot = pg.PlotWidget()
        self.spectrum_plot.setTitle("Pixel spectrum: result vs ground truth", size="9pt")
        self.spectrum_plot.showGrid(x=True, y=True, alpha=0.3)
        self.spectrum_plot.setLabel("left", "value (normalised)")
        self.spectrum_legend = self.spectrum_plot.addLegend(offset=(-5, -5), labelTextSize="8pt",
                                                            brush=(255, 255, 255, 210))
        self.result_curve = self.spectrum_plot.plot(pen=pg.mkPen("#c62828", width=2), name="reconstructed")
        self.truth_curve = self.spectrum_plot.plot(pen=pg.mkPen("k", width=1.5, style=Qt.DashLine),
                                                   name="ground truth")
        self.lr_plot = pg.PlotWidget()
        self.lr_plot.setTitle("LR-HSI spectrum of the LR pixel containing it", size="9pt")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.3)
        self.lr_plot.setLabel("left", "value")
        self.lr_plot.setXLink(self.spectrum_plot)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#1565c0", width=2))
        spectra_box = QWidget()
        spl = QVBoxLayout(spectra_box)
        spl.setContentsMargins(2, 2, 2, 2)
        spl.setSpacing(2)
        spl.addWidget(self.pixel_label)
        spl.addWidget(self.spectrum_plot, 3)
        spl.addWidget(self.lr_plot, 2)

        # --- endmembers, ALLE grid, scores ---
        self.endmember_plot = pg.PlotWidget()
        self.endmember_plot.showGrid(x=True, y=True, alpha=0.3)
        self.endmember_plot.setLabel("left", "value (normalised)")
        self.endmember_legend = self.endmember_plot.addLegend(offset=(-5, 5), labelTextSize="8pt",
                                                              brush=(255, 255, 255, 200))
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
        self.endmember_note = _note_label("endmemberNote")
        self.alle_note = _note_label("alleNote")
        self.endmember_stack = QStackedWidget()
        self.endmember_stack.addWidget(self.endmember_plot)
        self.endmember_stack.addWidget(self.endmember_note)
        self.alle_stack = QStackedWidget()
        self.alle_stack.addWidget(self.alle_widget)
        self.alle_stack.addWidget(self.alle_note)

        top = QSplitter(Qt.Horizontal)
        top.addWidget(image_box)
        top.addWidget(spectra_box)
        top.setSizes([500, 500])
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(_group("Endmember spectra (NMF of the LR-HSI)", self.endmember_stack))
        bottom.addWidget(_group("Abundance-like maps (ALLE), shared colour scale", self.alle_stack))
        bottom.setSizes([500, 500])
        self.splitter = QSplitter(Qt.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([520, 380])
        self.splitter.setObjectName("resultsSplitter")
        for w in (top, bottom, self.splitter):
            w.setChildrenCollapsible(False)
        result_page = QWidget()
        rl = QVBoxLayout(result_page)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(2)
        rl.addWidget(self.splitter, 1)
        rl.addWidget(metrics_box)

        # In a scroll area: the word-wrapped guide then never dictates the window's height.
        welcome_scroll = QScrollArea()
        welcome_scroll.setWidgetResizable(True)
        welcome_scroll.setFrameShape(QScrollArea.NoFrame)
        welcome_scroll.setWidget(welcome)
        self.pages = QStackedWidget()
        self.pages.addWidget(welcome_scroll)
        self.pages.addWidget(result_page)
        for plot in (self.spectrum_plot, self.lr_plot, self.endmember_plot):
            plain_axes(plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(3)
        layout.addWidget(self.banner)
        layout.addWidget(self.run_summary)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.pages, 1)

        # --- connections ---
        self.show_combo.currentIndexChanged.connect(lambda _i: self._draw_image())
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.band_slider.valueChanged.connect(lambda _v: self._draw_image())
        self.band_picker.changed.connect(lambda _b: self._draw_image(new_levels=True))
        self.view.pixelHovered.connect(self._hovered)
        self.view.pixelClicked.connect(self.select_pixel)
        self.welcome_run.clicked.connect(self._welcome_clicked)
        state.resultChanged.connect(self.set_result)
        state.runStarted.connect(self._on_run_started)
        state.runProgress.connect(self._on_progress)
        state.runCancelled.connect(lambda _t: self._on_run_ended("Stopped"))
        state.runFailed.connect(lambda _t: self._on_run_ended("Failed"))
        state.preparedChanged.connect(lambda _p: self._update_welcome())
        state.inputsChanged.connect(self._update_welcome)
        state.inputsChanged.connect(lambda: self._mark_stale(True))
        state.configChanged.connect(lambda c: self._mark_stale(
            self.result is not None and (self.result.prepared.mode == "synthetic") != c.synthetic))
        state.busyChanged.connect(lambda _l: self._update_welcome_button())
        self._enable(False)
        self._update_welcome()

    # ------------------------------------------------------------------ before any result
    def _welcome_clicked(self) -> None:
        s = self.state
        if s.running:
            s.stop_run()
        elif s.prepared is not None:
            s.start_run()

    def _update_welcome_button(self) -> None:
        s = self.state
        if s.running:
            self.welcome_run.setText("■  Stop")
            self.welcome_run.setStyleSheet(STOP_STYLE)
            self.welcome_run.setToolTip("Stop training within a second; no result is kept (Esc).")
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
            status = ("<p style='color:#e65100'><b>Training…</b> The loss and learning-rate curves grow in "
                      "<i>Live curves</i> (right); <b>Stop</b> ends the run within a second.</p>")
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

    def _enable(self, on: bool) -> None:
        for w in (self.show_combo, self.mode_combo, self.band_stack):
            w.setEnabled(on)

    # ------------------------------------------------------------------ a new result
    def set_result(self, result) -> None:
        self.result = result
        self.welcome_progress.hide()
        self._update_welcome_button()
        if result is None:
            return
        self._finished_at = time.strftime("%H:%M:%S")
        self.pages.setCurrentIndex(1)
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
        self._enable(True)
        has_truth = prep.truth is not None
        item = self.show_combo.model().item(1)
        item.setEnabled(has_truth)
        has_misfit = result.misfit is not None
        for i in (2, 3):
            self.show_combo.model().item(i).setEnabled(has_misfit)
        if (not has_truth and self.show_combo.currentData() == "truth") or \
                (not has_misfit and str(self.show_combo.currentData()).startswith("misfit")):
            self.show_combo.setCurrentIndex(0)
        wl = prep.wavelengths
        key = (c, None if wl is None else (float(wl[0]), float(wl[-1])))
        if key != self._band_key:
            self._band_key = key
            self.band_picker.configure(c, wl, default_rgb_bands(c, wl))
            self.band_slider.blockSignals(True)
            self.band_slider.setRange(0, c - 1)
            self.band_slider.setValue(default_rgb_bands(c, wl)[0])
            self.band_slider.blockSignals(False)
        x_label = "wavelength (nm)" if wl is not None else "band (wavelengths unknown)"
        for plot in (self.spectrum_plot, self.lr_plot, self.endmember_plot):
            plot.setLabel("bottom", x_label)
            plot.setLabel("left", "value (LR-HSI units)" if result.units == "input" else "value (normalised)")
        self.spectrum_plot.setTitle("Pixel spectrum: result vs ground truth" if has_truth else
                                    "Pixel spectrum of the result", size="9pt")
        self.spectrum_legend.removeItem(self.truth_curve)
        if has_truth:
            self.spectrum_legend.addItem(self.truth_curve, "ground truth")
        if self.pixel is None or self.pixel[0] >= h or self.pixel[1] >= w:
            self.pixel = (h // 2, w // 2)
        self._draw_image(new_levels=True)
        self._draw_endmembers()
        self._draw_alle()
        self._draw_metrics()
        self.select_pixel(*self.pixel)

    def _x(self):
        wl = self.result.prepared.wavelengths
        return np.asarray(wl, dtype=float) if wl is not None else np.arange(self.result.hr_hsi.shape[2],
                                                                            dtype=float)

    def _mode_changed(self, _i) -> None:
        self.band_stack.setCurrentIndex(0 if self.mode_combo.currentData() == "rgb" else 1)
        self._draw_image(new_levels=True)

    def _draw_image(self, new_levels: bool = False) -> None:
        """The result (or the truth) as an RGB composite or one band. The display stretch is
        taken from the result and kept for the truth, so the two compare as they are."""
        r = self.result
        if r is None:
            return
        choice = self.show_combo.currentData()
        if str(choice).startswith("misfit") and r.misfit is not None:
            self._draw_misfit(0 if choice == "misfit_pair" else 1)
            return
        self.view.set_colormap(None)
        show_truth = choice == "truth" and r.prepared.truth is not None
        cube = r.prepared.truth if show_truth else r.hr_hsi
        what = "Ground truth" if show_truth else "Result (HR-HSI)"
        wl = r.prepared.wavelengths
        if self.mode_combo.currentData() == "rgb":
            bands = self.band_picker.bands()
            if new_levels or self._levels is None:
                self._levels = display_levels(composite(r.hr_hsi, bands))
            self.view.set_image(composite(cube, bands), levels=self._levels)
            names = "/".join(f"{wl[b]:.0f}" if wl is not None else str(b) for b in bands)
            self.view.set_title(f"{what}, R/G/B = {names}{' nm' if wl is not None else ''}")
        else:
            b = self.band_slider.value()
            self.band_label.setText(band_name(b, wl))
            self._levels = None
            self.view.set_image(np.ascontiguousarray(cube[:, :, b]),
                                levels=display_levels(r.hr_hsi[:, :, b]))
            self.view.set_title(f"{what}, {band_name(b, wl)}")

    def _draw_misfit(self, which: int) -> None:
        """One of the two misfit maps, LR pixels drawn as r x r blocks over the result's grid (so
        the pixel under the mouse is the same everywhere), with its colour scale."""
        r = self.result
        ratio = r.prepared.ratio
        m = r.misfit[:, :, which]
        image = np.repeat(np.repeat(m, ratio, axis=0), ratio, axis=1)
        finite = m[np.isfinite(m)]
        hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        levels = (0.0, hi if hi > 0 else 1e-6)
        self.view.set_image(np.ascontiguousarray(image), levels=levels)
        self.view.set_colormap("viridis", levels)
        self.view.set_title("Misfit (RMS): " + ("HR-MSI vs LR-HSI" if which == 0 else "result vs LR-HSI"))

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
        self.endmember_legend.setColumnCount(min(k, 3))   # a short, wide legend covers less
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
        cols = math.ceil(math.sqrt(k))
        rows = math.ceil(k / cols)
        # One colour scale for every map, so their values can be compared at a glance.
        lo, hi = shared_range([alle])
        cmap = pg.colormap.get(ALLE_COLORMAP)
        for i in range(k):
            plot = self.alle_widget.addPlot(row=i // cols, col=i % cols)
            colour = curve_pen(i, k).color().name()
            plot.setTitle(f"<span style='color:{colour}'>■</span> <span style='color:#222'>ALLE {i + 1}</span>",
                          size="8pt")
            plot.setAspectLocked(True)
            plot.invertY(True)
            plot.hideAxis("left")
            plot.hideAxis("bottom")
            plot.setMenuEnabled(False)
            plot.hideButtons()
            img = pg.ImageItem(np.ascontiguousarray(alle[:, :, i]), levels=(lo, hi))
            img.setColorMap(cmap)
            plot.addItem(img)
            plot.autoRange(padding=0.01)
            self.alle_images.append(img)
        self.alle_bar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False, width=12,
                                        pen="k")
        self.alle_bar.setImageItem(self.alle_images)
        self.alle_widget.addItem(self.alle_bar, row=0, col=cols, rowspan=rows)

    def _draw_metrics(self) -> None:
        r = self.result
        columns = []    # (header, tooltip, fusion value, bicubic value)
        digits = 4
        name = escape(short_name(r.method))
        if r.metrics:
            from spectramorph_engine.metrics import METRIC_INFO
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

    # ------------------------------------------------------------------ pixels
    def _hovered(self, row: int, col: int) -> None:
        self.show_pixel(row, col, pinned=False)

    def select_pixel(self, row: int, col: int) -> None:
        """Pin a pixel: its spectra stay in the plots and a marker shows where it is."""
        if self.result is None:
            return
        self.pixel = (row, col)
        self.view.set_marker(row, col)
        self.show_pixel(row, col, pinned=True)

    def show_pixel(self, row: int, col: int, pinned: bool = True) -> None:
        r = self.result
        if r is None:
            return
        prep = r.prepared
        x = self._x()
        self.result_curve.setData(x, r.hr_hsi[row, col, :])
        if prep.truth is not None:
            self.truth_curve.setData(x, prep.truth[row, col, :])
            self.truth_curve.show()
        else:
            self.truth_curve.setData([], [])
            self.truth_curve.hide()
        lr_row, lr_col = row // prep.ratio, col // prep.ratio
        lr_spectrum = np.asarray(prep.lr_hsi[lr_row, lr_col, :], dtype=np.float64)
        if r.units == "input" and prep.lr_units is not None:    # shown in the same units as the result
            lr_spectrum = lr_spectrum * prep.lr_units[1] + prep.lr_units[0]
        self.lr_curve.setData(x, lr_spectrum)
        self.pixel_label.setText(f"{'Pinned' if pinned else 'Hovered'} pixel <b>(row {row}, col {col})</b>, "
                                 f"in LR pixel (row {lr_row}, col {lr_col}); "
                                 f"{'click the image to pin another' if pinned else 'click to pin it'}.")

    def spectrum_data(self):
        """(x, reconstructed spectrum) now drawn; for tests."""
        return self.result_curve.getOriginalDataset()


def _note_label(name: str) -> QLabel:
    label = QLabel("")
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setAlignment(Qt.AlignCenter)
    label.setStyleSheet("color: #616161; background: #fafafa; border: 1px dashed #bdbdbd; padding: 12px;")
    return label


def no_unmixing_note(method: str) -> str:
    name = short_name(method)
    return (f"{name} has no endmembers or abundance maps: it fuses the images directly, without "
            f"unmixing the scene into materials (only SpectraMorph does). Its result is above and its "
            f"scores below.")


def result_facts(r) -> str:
    """The method's own figures for the banner, ending with ', ' (or empty)."""
    info = r.method_info or {}
    if r.endmembers is not None:
        loss = "" if r.final_loss is None else f", final loss {r.final_loss:.4g}"
        return f"K = {r.endmembers.shape[0]} endmembers{loss}, "
    if r.loss_history:
        its = info.get("iterations", len(r.loss_history))
        return f"{its} iterations, final objective {r.final_loss:.4g}, "
    return ""


def _on_off(flag) -> str:
    return "on" if flag else "off"


def run_summary(r) -> tuple:
    """(one rich-text paragraph, a details tooltip) on how a result was made: the settings the
    method actually used and, for SpectraMorph, what auto-selection tried and chose."""
    info = r.method_info or {}
    name = escape(short_name(r.method))
    if r.method == "spectramorph":
        used = [f"coarse spectral prior <b>{_on_off(info.get('prior'))}</b>",
                f"K = <b>{info.get('num_endmembers', '?')}</b> ({escape(str(info.get('endmember_method', 'nmf')))} "
                f"endmembers)"]
        ref = info.get("refinement")
        if info.get("refined") and isinstance(ref, dict):
            how = f"{ref.get('iterations', '?')} iterations, subspace {ref.get('subspace_dim', '?')}"
            if ref.get("tv_weight"):
                how += ", with TV"
            used.append(f"refinement <b>on</b> ({how})")
        else:
            used.append(f"refinement <b>{_on_off(info.get('refined'))}</b>")
        text = f"<b>Settings used:</b> {', '.join(used)}."
        sel = r.selection
        details = ""
        if sel is None:
            text += " <b>Auto-selection:</b> off (the configured settings ran)."
        elif sel.get("skipped"):
            text += f" <b>Auto-selection skipped:</b> {escape(str(sel['skipped']))}."
        else:
            rows = sel.get("candidates") or []
            chosen = sel.get("chosen")
            base = next((c for c in rows if c.get("label") == "configured"), None)
            best = next((c for c in rows if c.get("label") == chosen), None)
            scores = " · ".join(
                (f"<b>{escape(str(c['label']))} {c['PSNR']:.2f}</b>" if c.get("label") == chosen
                 else f"{escape(str(c['label']))} {c['PSNR']:.2f}") for c in rows)
            verdict = "kept the configured settings" if chosen == "configured" else                 f"chose <b>{escape(str(chosen))}</b>"
            gain = ""
            if best is not None and base is not None and best is not base:
                gain = f", {best['PSNR'] - base['PSNR']:+.2f} dB over the configured settings"
            text += (f" <b>Auto-selection</b> {verdict}{gain} ({len(rows)} candidates on the "
                     f"reduced-resolution pair, PSNR in dB: {scores}; {sel.get('seconds', 0):.1f} s).")
            details = ("<table><tr><th align='left'>candidate</th><th>PSNR dB</th><th>SAM °</th><th>s</th></tr>"
                       + "".join(f"<tr><td>{'▶ ' if c.get('label') == chosen else ''}{escape(str(c['label']))}"
                                 f"</td><td align='right'>{c['PSNR']:.2f}</td><td align='right'>"
                                 f"{c.get('SAM', float('nan')):.2f}</td><td align='right'>"
                                 f"{c.get('seconds', 0):.1f}</td></tr>" for c in rows) + "</table>")
        if sel is not None and sel.get("summary"):
            details = (details + "<p>" if details else "<p>") + escape(str(sel["summary"])) + "</p>"
        return text, details
    if r.method == "glp":
        if "gain_median" in info:
            return (f"<b>{name}:</b> injection gains {info['gain_min']:.3f}–{info['gain_max']:.3f} (median "
                    f"{info['gain_median']:.3f}); regression of each band on the MSI bands, R² median "
                    f"{info.get('regression_r2_median', float('nan')):.3f}.", "")
        return "", ""
    if r.method == "hysure":
        objective = info.get("objective") or r.loss_history
        parts = [f"{info.get('iterations', len(objective))} ADMM iterations"]
        if "subspace" in info:
            energy = info.get("subspace_energy")
            parts.append(f"subspace {info['subspace']}" +
                         (f" ({100 * energy:.2f}% of the LR-HSI's energy)" if energy is not None else ""))
        if "tv_weight" in info:
            parts.append(f"TV weight {info['tv_weight']:g}")
        if len(objective) >= 2:
            parts.append(f"objective {objective[0]:.4g} → {objective[-1]:.4g}")
        return f"<b>{name}:</b> {', '.join(parts)}.", ""
    return "", ""


def _fmt(v, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def consistency_columns(consistency: dict):
    """Columns (header, tooltip, SpectraMorph value, bicubic value) of the real-world figures."""
    from spectramorph_engine.metrics import METRIC_INFO
    cols = []
    bic = consistency.get("bicubic") or {}
    units = {"PSNR": ("dB", True), "SAM": ("°", False)}

    def add(prefix, figures, base, tip):
        if not isinstance(figures, dict):
            return
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                b = base.get(name) if isinstance(base, dict) else None
                unit, higher = units.get(name, ("", METRIC_INFO.get(name, ("", True))[1]))
                header = f"{prefix}\n{name}\n{f'{unit} ' if unit else ''}{'↑' if higher else '↓'}"
                cols.append((header, tip + " " + METRIC_INFO.get(name, ("", True, ""))[2], value, b))

    add("LR", consistency.get("lr_consistency"), bic.get("lr_consistency", bic.get("lr")),
        "LR consistency: the result blurred and downsampled by r, against the LR-HSI.")
    add("MSI", consistency.get("msi_consistency"), bic.get("msi_consistency", bic.get("msi")),
        "MSI consistency: the result seen through the SRF, against the HR-MSI.")
    rr = consistency.get("reduced_resolution") or {}
    add("RR", rr.get("fusion"), rr.get("bicubic"),
        "Reduced resolution (Wald's protocol): both inputs degraded by r, fused, and scored against the "
        "original LR-HSI.")
    return cols


def consistency_rows(consistency: dict):
    """Rows (label, value, bicubic value, tooltip), the figures one per row (kept for callers)."""
    return [(h, _fmt(v), _fmt(b), tip) for h, tip, v, b in consistency_columns(consistency)]
