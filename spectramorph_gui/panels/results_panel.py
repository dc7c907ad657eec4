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
from pathlib import Path

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
                               QPushButton, QScrollArea, QSizePolicy, QSlider, QSplitter, QStackedWidget, QTabWidget,
                               QTableWidget, QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from spectramorph_engine import InputError
from spectramorph_engine.quality.inspection import percentile_levels
from spectramorph_engine.quality.previews import composite, default_rgb_bands, shared_range

from .fields import format_clock
from .method_text import has_training, short_name
from . import dialogs
from .plotting import BandPicker, ImageView, band_name, curve_pen, display_copy, plain_axes
from .regions import RegionTools
from ..view_state import Scene, fit_to_scene
from .style import RUN_STYLE, STOP_STYLE, WARNING_STYLE

ALLE_COLORMAP = "viridis"
PLAY_INTERVAL_MS = 150            # band playback: about 7 bands a second
# Band images of cubes bigger than this are read on the task thread (a memory-mapped
# 2048 x 2048 x 200 result takes a second or more per read), so the window never blocks.
SYNC_READ_BYTES = 256 << 20
MAPPED_BLOCK_BYTES = 64 << 20     # rows of a memory-mapped result read at a time
ALLE_MAX_SIDE = 384               # the abundance maps are thumbnails
LIBRARY_COLOURS = ("#6d4c41", "#546e7a", "#8d6e63", "#78909c", "#a1887f")


def _key_to_data(key):
    """A comparison key as combo-box data (Qt turns a Python tuple into a list)."""
    return f"run:{key[1]}" if isinstance(key, tuple) else key


def _key_from_data(data):
    return ("run", int(data[4:])) if isinstance(data, str) and data.startswith("run:") else data


def cube_image(cube, spec) -> np.ndarray:
    """The H x W x 3 composite (spec ("rgb", bands)) or H x W band (spec ("band", b)) of a cube.
    A memory-mapped cube is read by blocks of rows whose pages are released as it goes (its
    bands are interleaved by pixel: one band touches the whole file)."""
    if not isinstance(cube, np.memmap):
        if spec[0] == "rgb":
            return np.asarray(composite(cube, spec[1]), dtype=np.float32)
        return np.ascontiguousarray(cube[:, :, int(spec[1])], dtype=np.float32)
    from spectramorph_engine.io.common import release_pages
    h, w, c = cube.shape
    idx = [min(max(int(b), 0), c - 1) for b in (spec[1] if spec[0] == "rgb" else (spec[1],))]
    if c == 1:
        idx = [0]
    out = np.empty((h, w, len(idx)), dtype=np.float32)
    step = max(1, MAPPED_BLOCK_BYTES // max(w * c * cube.itemsize, 1))
    for r0 in range(0, h, step):
        out[r0:r0 + step] = cube[r0:r0 + step][:, :, idx]
        release_pages(cube)
    return out[:, :, 0] if len(idx) == 1 else out


def stretch(image, percentiles) -> np.ndarray:
    """Levels of a percentile stretch: (2,) for one band, (channels, 2) for a composite."""
    lo, hi = percentile_levels(image, *percentiles)
    if np.ndim(lo) == 0:
        return np.array([lo, hi], dtype=float)
    return np.column_stack([lo, hi]).astype(float)


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
        self._scene = None                 # view_state.Scene of the result on screen
        self._finished_at = ""
        self._levels = None        # display levels of the result's image, reused for the truth and comparison
        self._levels_spec = None   # the bands they were taken for
        self._preset = (1.0, 99.0)  # percentile stretch of new levels
        self._syncing_levels = False
        self._fetch_gen: dict = {}
        self._compare = None       # compare.Comparison shown, or None
        self._primary_image = None
        self._compare_image = None
        self._compare_levels = None
        self._difference = None    # the difference map shown, for tests and exports

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

        image_box = self._build_image_area()
        spectra_box = self._build_spectra_area()

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
        top.setSizes([620, 380])
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(_group("Endmember spectra (NMF of the LR-HSI)", self.endmember_stack))
        bottom.addWidget(_group("Abundance-like maps (ALLE), shared colour scale", self.alle_stack))
        bottom.setSizes([500, 500])
        self.splitter = QSplitter(Qt.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([580, 320])
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
        self._connect_image_area()
        self._connect_spectra_area()
        self.welcome_run.clicked.connect(self._welcome_clicked)
        state.resultChanged.connect(self.set_result)
        state.comparisonChanged.connect(self._on_comparison_changed)
        state.runsChanged.connect(self._fill_compare_combo)
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
        for w in (self.show_combo, self.mode_combo, self.band_stack, self.compare_combo, self.fit_button,
                  self.clear_regions_button, *self.tool_buttons.values(), *self.preset_buttons.values()):
            w.setEnabled(on)

    # ------------------------------------------------------------------ a new result
    def set_result(self, result) -> None:
        self.result = result
        self.welcome_progress.hide()
        self._update_welcome_button()
        if result is None:
            return
        self._fit_scene(result)
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
        has_misfit = result.misfit is not None
        for key, on in (("truth", has_truth), ("err_rmse", has_truth), ("err_sam", has_truth),
                        ("misfit_pair", has_misfit), ("misfit_result", has_misfit)):
            self.show_combo.model().item(self.show_combo.findData(key)).setEnabled(on)
        choice = str(self.show_combo.currentData())
        if (not has_truth and (choice == "truth" or choice.startswith("err"))) or \
                (not has_misfit and choice.startswith("misfit")):
            self.show_combo.blockSignals(True)
            self.show_combo.setCurrentIndex(0)
            self.show_combo.blockSignals(False)
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
        for plot in (self.band_scores_plot, self.band_rmse_plot):
            plot.setLabel("bottom", x_label)
        if self.pixel is None or self.pixel[0] >= h or self.pixel[1] >= w:
            self.pixel = (h // 2, w // 2)
        self._fill_compare_combo()
        self.compare_mode.setEnabled(self.state.comparison is not None)
        self._levels = None
        self._draw_image(new_levels=True)
        self._draw_endmembers()
        self._draw_alle()
        self._draw_metrics()
        self.library_tab.set_wavelengths(wl)
        if self.regions.pins and self.regions.pins[0] == self.pixel:
            self._pins_changed()
        else:
            self.select_pixel(*self.pixel)
        self._refresh_spectra()

    def _fit_scene(self, result) -> None:
        """Pins and regions re-validated for the new result before anything reads them: kept
        where they still fit the image, dropped with a note where they do not. Region statistics
        belong to the last result and are recomputed (another band count would draw the old
        means on the new axis and match them against a library resampled to the new bands)."""
        for number in list(self._region_items):
            for item in self._region_items.pop(number):
                self.spectrum_plot.removeItem(item)
        self.region_stats.clear()
        scene = Scene.of(result.hr_hsi.shape, result.prepared.wavelengths)
        previous, self._scene = self._scene, scene
        if scene == previous:
            return
        regions = list(self.regions.regions)
        fit = fit_to_scene(self.regions.pins, [g.vertices() for g in regions], [g.name for g in regions], scene)
        self.regions.pins = fit.pins
        self.pixel = fit.pins[0]
        self.regions.blockSignals(True)      # the panel redraws once, below, for the new scene
        try:
            for i, g in enumerate(regions):
                if i not in fit.keep_regions:
                    self.regions.remove(g)
        finally:
            self.regions.blockSignals(False)
        if fit.notes:
            self.state.message.emit("New scene: " + "; ".join(fit.notes) + ".")

    def _x(self):
        wl = self.result.prepared.wavelengths
        return np.asarray(wl, dtype=float) if wl is not None else np.arange(self.result.hr_hsi.shape[2],
                                                                            dtype=float)

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
            shown, step = display_copy(np.asarray(alle[:, :, i]), ALLE_MAX_SIDE)     # thumbnails
            img = pg.ImageItem(np.ascontiguousarray(shown), levels=(lo, hi))
            if step > 1:
                img.setRect(QRectF(0, 0, alle.shape[1], alle.shape[0]))
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

    # ------------------------------------------------------------------ building: image area
    def _build_image_area(self) -> QWidget:
        """The shown run's image, its comparison (side by side, swipe or difference), the
        levels histogram, the band controls and the region tools."""
        self.view = ImageView("Result (HR-HSI)")
        self.view.setMinimumSize(200, 200)
        self.compare_view = ImageView("")
        self.compare_view.setObjectName("compareView")
        self.compare_view.setMinimumSize(150, 150)
        self.compare_view.link_to(self.view)          # same zoom and pan
        self.compare_view.hide()
        # swipe: the comparison drawn over the right part of the result, left of it the result
        self.swipe_item = pg.ImageItem()
        self.swipe_item.setZValue(5)
        self.view.plot.addItem(self.swipe_item, ignoreBounds=True)
        self.swipe_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffea00", width=3))
        self.swipe_line.setZValue(20)
        self.view.plot.addItem(self.swipe_line, ignoreBounds=True)
        self.swipe_item.hide()
        self.swipe_line.hide()
        self.histogram = pg.HistogramLUTWidget(image=self.view.image)
        self.histogram.setObjectName("levelsHistogram")
        self.histogram.setMinimumWidth(96)
        self.histogram.setMaximumWidth(112)
        self.histogram.setToolTip("Display levels: drag the band's ends (per colour channel for RGB); the "
                                  "buttons below set a percentile stretch. The comparison shares them.")
        self.regions = RegionTools(self.view, self)

        self.show_combo = QComboBox()
        for text, key in (("Result", "result"), ("Ground truth", "truth"),
                          ("Error vs truth: RMSE", "err_rmse"), ("Error vs truth: SAM", "err_sam"),
                          ("Misfit: HR-MSI vs LR-HSI", "misfit_pair"), ("Misfit: result vs LR-HSI", "misfit_result")):
            self.show_combo.addItem(text, key)
        self.show_combo.setToolTip(
            "What the image shows. <b>Error vs truth</b> (synthetic mode): per pixel, the RMSE over the bands "
            "or the spectral angle (degrees) between the result and the ground truth.<br><b>Misfit</b> "
            "(real-world mode), per LR pixel, RMS in the normalised scale: <i>HR-MSI vs LR-HSI</i> = how far "
            "the HR-MSI brought to the LR grid and the LR-HSI seen through the SRF disagree (high where the "
            "scene changed between the two images, clouds, shadows, misregistration: trust the result less "
            "there); <i>result vs LR-HSI</i> = how far the result degraded back is from the LR-HSI.")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("RGB", "rgb")
        self.mode_combo.addItem("Band", "band")
        self.mode_combo.setToolTip("RGB composite of three bands (picked by wavelength), or one band in grey")
        self.compare_combo = QComboBox()
        self.compare_combo.setObjectName("compareCombo")
        self.compare_combo.setToolTip("Compare the shown run with another kept run, the ground truth, bicubic "
                                      "interpolation, the LR-HSI or the HR-MSI: same zoom, pan and cursor.")
        self.compare_mode = QComboBox()
        for text, key in (("side by side", "side"), ("swipe", "swipe"), ("difference: RMSE", "diff_rmse"),
                          ("difference: SAM", "diff_sam")):
            self.compare_mode.addItem(text, key)
        self.compare_mode.setToolTip("Side by side in linked views; a swipe (drag the yellow line); or the "
                                     "per-pixel difference over the bands (RMSE, or spectral angle in degrees).")
        self.compare_mode.setEnabled(False)
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Show the whole image again (the mouse wheel zooms, dragging pans)")

        self.band_slider = QSlider(Qt.Horizontal)
        self.band_slider.setRange(0, 0)
        self.band_slider.setToolTip("Band shown in single-band mode")
        self.band_label = QLabel("band 0")
        self.band_label.setObjectName("bandLabel")
        self.band_label.setMinimumWidth(120)
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play through the bands")
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_INTERVAL_MS)
        self.band_picker = BandPicker()
        self.band_stack = QStackedWidget()
        self.band_stack.addWidget(self.band_picker)
        slider_box = QWidget()
        sl = QHBoxLayout(slider_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.play_button)
        sl.addWidget(self.band_slider, 1)
        sl.addWidget(self.band_label)
        self.band_stack.addWidget(slider_box)
        self.band_stack.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.band_stack.setFixedHeight(max(self.band_picker.sizeHint().height(), slider_box.sizeHint().height()))

        # region tools and level presets
        self.tool_buttons = {}
        self.tool_group = QButtonGroup(self)
        self.tool_group.setExclusive(True)
        tools = QHBoxLayout()
        tools.setContentsMargins(0, 0, 0, 0)
        tools.setSpacing(2)
        for key, text, tip in (("pixel", "Pixel", "Click pins a pixel; Shift+click pins another beside it"),
                               ("rectangle", "Rect", "Drag out a rectangle region"),
                               ("polygon", "Polygon", "Click the corners; double-click closes the polygon"),
                               ("freehand", "Freehand", "Drag around a region")):
            b = QToolButton()
            b.setText(text)
            b.setCheckable(True)
            b.setToolTip(tip + ". Regions can be moved and reshaped; right-click one to remove it.")
            self.tool_group.addButton(b)
            self.tool_buttons[key] = b
            tools.addWidget(b)
        self.tool_buttons["pixel"].setChecked(True)
        self.clear_regions_button = QToolButton()
        self.clear_regions_button.setText("Clear")
        self.clear_regions_button.setToolTip("Remove every region and extra pinned pixel")
        tools.addWidget(self.clear_regions_button)
        tools.addStretch(1)
        # level presets, under the histogram they set
        self.preset_buttons = {}
        presets = QVBoxLayout()
        presets.setContentsMargins(0, 0, 0, 0)
        presets.setSpacing(1)
        for key, text in (((2.0, 98.0), "2–98%"), ((1.0, 99.0), "1–99%"), ((0.0, 100.0), "min–max")):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(f"Stretch each channel from its {text.replace('%', ' percentiles')}")
            b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            self.preset_buttons[key] = b
            presets.addWidget(b)

        controls = QWidget()
        cl = QGridLayout(controls)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setVerticalSpacing(2)
        for combo in (self.show_combo, self.compare_combo, self.compare_mode):
            combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(8)
        row0 = QHBoxLayout()
        row0.addWidget(self.show_combo, 2)
        row0.addWidget(self.mode_combo)
        row0.addWidget(self.fit_button)
        row1 = QHBoxLayout()
        row1.addWidget(QLabel("compare with:"))
        row1.addWidget(self.compare_combo, 2)
        row1.addWidget(self.compare_mode, 1)
        cl.addLayout(row0, 0, 0)
        cl.addLayout(row1, 1, 0)
        cl.addWidget(self.band_stack, 2, 0)
        cl.addLayout(tools, 3, 0)
        views = QSplitter(Qt.Horizontal)
        views.addWidget(self.view)
        views.addWidget(self.compare_view)
        views.setChildrenCollapsible(False)
        self.views_splitter = views
        image_row = QHBoxLayout()
        image_row.setContentsMargins(0, 0, 0, 0)
        image_row.addWidget(views, 1)
        levels_column = QVBoxLayout()
        levels_column.setContentsMargins(0, 0, 0, 0)
        levels_column.setSpacing(2)
        levels_column.addWidget(self.histogram, 1)
        levels_column.addLayout(presets)
        image_row.addLayout(levels_column)
        image_box = QWidget()
        il = QVBoxLayout(image_box)
        il.setContentsMargins(2, 2, 2, 2)
        il.setSpacing(2)
        il.addWidget(controls)
        il.addLayout(image_row, 1)
        self._fill_compare_combo()
        return image_box

    def _connect_image_area(self) -> None:
        self.show_combo.currentIndexChanged.connect(lambda _i: self._draw_image())
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.band_slider.valueChanged.connect(lambda _v: self._draw_image(new_levels=True))
        self.band_picker.changed.connect(lambda _b: self._draw_image(new_levels=True))
        self.compare_combo.activated.connect(
            lambda _i: self.state.set_comparison(_key_from_data(self.compare_combo.currentData())))
        self.compare_mode.currentIndexChanged.connect(lambda _i: self._draw_compare())
        self.fit_button.clicked.connect(self.view.fit)
        self.play_button.toggled.connect(self._play)
        self.play_timer.timeout.connect(self._next_band)
        self.swipe_line.sigPositionChanged.connect(lambda _l: self._place_swipe())
        self.histogram.item.sigLevelsChanged.connect(self._levels_dragged)
        for key, b in self.preset_buttons.items():
            b.clicked.connect(lambda _c=False, k=key: self.set_level_preset(k))
        for key, b in self.tool_buttons.items():
            b.toggled.connect(lambda on, k=key: on and self.regions.set_tool(k))
        self.clear_regions_button.clicked.connect(self._clear_regions)
        for view in (self.view, self.compare_view):
            view.pixelHovered.connect(self._hovered)
            view.left.connect(self._hover_ended)
        self.compare_view.pixelClicked.connect(lambda r, c: self.regions.pin(r, c))
        self.regions.pinsChanged.connect(self._pins_changed)
        self.regions.changed.connect(self._region_changed)

    # ------------------------------------------------------------------ image: what is drawn
    def _mode_changed(self, _i) -> None:
        self.band_stack.setCurrentIndex(0 if self.mode_combo.currentData() == "rgb" else 1)
        if self.mode_combo.currentData() != "band":
            self.play_button.setChecked(False)
        self._draw_image(new_levels=True)

    def _image_spec(self) -> tuple:
        if self.mode_combo.currentData() == "rgb":
            return ("rgb", tuple(self.band_picker.bands()))
        return ("band", self.band_slider.value())

    def _big(self, cube) -> bool:
        """Reading bands of this cube takes long enough (a memory-mapped 2048^2 result) to be
        done on the task thread, not here."""
        shape = getattr(cube, "shape", (0,))
        return int(np.prod(shape)) * 4 > SYNC_READ_BYTES

    def _fetch(self, what: str, fn, on_ready, big: bool) -> None:
        """on_ready(fn()): at once for small cubes, else fn on the task thread; only the newest
        request of each kind `what` is computed and drawn (a dragged slider does not queue)."""
        gen = self._fetch_gen[what] = self._fetch_gen.get(what, 0) + 1
        if not big:
            on_ready(fn())
            return
        result = self.result

        def job():
            return fn() if self._fetch_gen.get(what) == gen else None

        def done(value):
            if value is not None and self._fetch_gen.get(what) == gen and self.result is result:
                on_ready(value)
        self.state.workers.submit(job, done, lambda *_a: None, "Reading bands")

    def _draw_image(self, new_levels: bool = False) -> None:
        """The shown run's result (or the truth, an error map, a misfit map) in the main view,
        then its comparison. The levels are the result's, kept for the truth and the
        comparison so they compare as they are; new ones only for a new run, new bands or a
        preset (or dragged in the histogram)."""
        r = self.result
        if r is None:
            return
        choice = self.show_combo.currentData()
        if str(choice).startswith("misfit") and r.misfit is not None:
            self._draw_misfit(0 if choice == "misfit_pair" else 1)
            self._draw_compare()
            return
        if choice in ("err_rmse", "err_sam") and r.prepared.truth is not None:
            kind = choice[4:]
            self._fetch("primary", lambda: self._error_maps(), lambda maps: self._show_map(
                self.view, maps[kind], f"Error vs truth: {'RMSE' if kind == 'rmse' else 'SAM (°)'} per pixel"),
                self._big(r.hr_hsi))
            self._draw_compare()
            return
        self.view.set_colormap(None)
        show_truth = choice == "truth" and r.prepared.truth is not None
        cube = r.prepared.truth if show_truth else r.hr_hsi
        what = "Ground truth" if show_truth else "Result (HR-HSI)"
        spec = self._image_spec()
        need_levels = new_levels or self._levels is None or self._levels_spec != spec
        preset = self._preset

        def job():
            shown = cube_image(cube, spec)
            base = shown if cube is r.hr_hsi or not need_levels else cube_image(r.hr_hsi, spec)
            return shown, (stretch(base, preset) if need_levels else None)

        def ready(value):
            shown, levels = value
            if levels is not None:
                self._levels, self._levels_spec = levels, spec
            self._primary_image = shown
            self._show_primary(shown, self._levels)
            self.view.set_title(f"{what}, {self._spec_text(spec)}")
            if spec[0] == "band":
                self.band_label.setText(self._band_text(spec[1]))
            self._draw_compare()
        self._fetch("primary", job, ready, self._big(cube))

    def _spec_text(self, spec) -> str:
        wl = self.result.prepared.wavelengths
        if spec[0] == "band":
            return band_name(spec[1], wl)
        names = "/".join(f"{wl[b]:.0f}" if wl is not None else str(b) for b in spec[1])
        return f"R/G/B = {names}{' nm' if wl is not None else ''}"

    def _band_text(self, b: int) -> str:
        wl = self.result.prepared.wavelengths if self.result is not None else None
        if wl is not None and 0 <= b < len(wl):
            return f"{wl[b]:.1f} nm (band {b})"
        return f"band {b}"

    def _draw_misfit(self, which: int) -> None:
        """One of the two misfit maps, LR pixels drawn as r x r blocks over the result's grid (so
        the pixel under the mouse is the same everywhere), with its colour scale."""
        r = self.result
        ratio = r.prepared.ratio
        m = r.misfit[:, :, which]
        image = np.repeat(np.repeat(m, ratio, axis=0), ratio, axis=1)
        self._show_map(self.view, image, "Misfit (RMS): " + ("HR-MSI vs LR-HSI" if which == 0 else "result vs LR-HSI"),
                       cmap="viridis")

    def _show_map(self, view, image, title: str, cmap: str = "magma") -> None:
        """A per-pixel map (error, difference, misfit) with its colour bar, 0 to its 99.5th percentile."""
        image = np.ascontiguousarray(image, dtype=np.float32)
        finite = image[np.isfinite(image)]
        hi = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        levels = (0.0, hi if hi > 0 else 1e-6)
        if view is self.view:
            self._primary_image = image
            self._show_primary(image, levels)
        else:
            view.set_image(image, levels=levels)
        view.set_colormap(cmap, levels)
        view.set_title(title)

    def _error_maps(self) -> dict:
        """Per-pixel RMSE and SAM of the shown run against the truth (computed once per run)."""
        rec = self.state.shown_run
        notes = rec.notes if rec is not None else {}
        if "error_maps" not in notes:
            from spectramorph_engine.quality.inspection import pixel_error_maps
            rmse, sam = pixel_error_maps(self.result.hr_hsi, self.result.prepared.truth)
            notes["error_maps"] = {"rmse": rmse, "sam": sam}
        return notes["error_maps"]

    # ------------------------------------------------------------------ levels
    def _show_primary(self, image, levels) -> None:
        """The main view's image, then the histogram switched to its kind (one band / RGB) and
        its levels: in that order, as the histogram reads the image when it changes."""
        blocker = QSignalBlocker(self.view.image)
        self.view.set_image(image, levels=levels)
        blocker.unblock()
        self._sync_histogram(np.ndim(image) == 3, levels)

    def _sync_histogram(self, rgb: bool, levels=None) -> None:
        """The histogram follows the main view's image and shows its levels."""
        h = self.histogram.item
        mode = "rgba" if rgb else "mono"
        if h.levelMode != mode:
            h.setLevelMode(mode)
        lv = np.asarray(self._levels if levels is None else levels, dtype=float).reshape(-1, 2)
        self._syncing_levels = True
        try:
            h.imageChanged()
            if rgb:
                h.setLevels(rgba=[tuple(row) for row in lv[:3]])
            else:
                h.setLevels(float(lv[0, 0]), float(lv[0, 1]))
        finally:
            self._syncing_levels = False

    def _levels_dragged(self, _item) -> None:
        if self._syncing_levels or self.result is None:
            return
        levels = np.asarray(self.view.image.levels, dtype=float)
        if self.show_combo.currentData() in ("result", "truth"):
            self._levels = levels
            if self.compare_view.isVisible() and self._compare is not None and self._compare.same_bands \
                    and self.compare_mode.currentData() == "side":
                self.compare_view.image.setLevels(levels)
            if self.swipe_item.isVisible() and self._compare is not None and self._compare.same_bands:
                self.swipe_item.setLevels(levels)

    def set_level_preset(self, percentiles) -> None:
        """Stretch from these (low, high) percentiles of the result's image (per channel)."""
        self._preset = tuple(float(p) for p in percentiles)
        self._draw_image(new_levels=True)

    def displayed_levels(self) -> np.ndarray:
        """The levels the main image is drawn with: (2,) or (channels, 2)."""
        return np.asarray(self.view.image.levels, dtype=float)

    # ------------------------------------------------------------------ bands
    def _play(self, on: bool) -> None:
        if on:
            if self.mode_combo.currentData() != "band":
                self.mode_combo.setCurrentIndex(self.mode_combo.findData("band"))
            self.play_button.setText("■")
            self.play_timer.start()
        else:
            self.play_button.setText("▶")
            self.play_timer.stop()

    def _next_band(self) -> None:
        if self._fetch_busy():
            return                     # a big cube: wait for the band being read
        n = self.band_slider.maximum() + 1
        self.band_slider.setValue((self.band_slider.value() + 1) % max(n, 1))

    def _fetch_busy(self) -> bool:
        return self.state.workers.pending > 0 and self._big(getattr(self.result, "hr_hsi", None))

    # ------------------------------------------------------------------ comparison
    def _fill_compare_combo(self) -> None:
        from ..compare import FIXED_KEYS, unavailable_reason
        combo = self.compare_combo
        current = self.state.comparison
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("nothing", None)
        record = self.state.shown_run
        keys = [(("run", rec.number), f"{rec.name}: {rec.settings_text()}") for rec in self.state.runs]
        keys += list(FIXED_KEYS)
        for key, text in keys:
            why = None if record is None else unavailable_reason(self.state, record, key)
            if isinstance(key, tuple) and record is not None and key[1] == record.number:
                continue
            combo.addItem(text, _key_to_data(key))
            item = combo.model().item(combo.count() - 1)
            item.setEnabled(why is None)
            item.setToolTip(why or "")
        i = combo.findData(_key_to_data(current)) if current is not None else 0
        combo.setCurrentIndex(max(i, 0))
        combo.blockSignals(False)

    def _on_comparison_changed(self, key) -> None:
        i = self.compare_combo.findData(_key_to_data(key)) if key is not None else 0
        self.compare_combo.setCurrentIndex(max(i, 0))
        self.compare_mode.setEnabled(key is not None)
        self._draw_compare()
        self._refresh_spectra()

    def _draw_compare(self) -> None:
        """The comparison beside the result (linked), over it (swipe), or their difference."""
        from ..compare import resolve
        r, rec, key = self.result, self.state.shown_run, self.state.comparison
        self._compare = None
        if r is None or rec is None or key is None:
            self.compare_view.hide()
            self.swipe_item.hide()
            self.swipe_line.hide()
            return
        if key == "bicubic" and "bicubic" not in rec.notes and self._big(r.hr_hsi):
            # interpolating a big cube takes seconds: on the task thread, then drawn
            def made(_comp):
                if self.state.shown_run is rec and self.state.comparison == key:
                    self._draw_compare()
                    self._refresh_spectra()
            self.state.run_task(lambda: resolve(self.state, rec, key), "Interpolating bicubic", made)
            return
        try:
            comp = resolve(self.state, rec, key)
        except InputError as exc:
            self.state.message.emit(str(exc))
            self.state.set_comparison(None)
            return
        self._compare = comp
        mode = self.compare_mode.currentData()
        if mode.startswith("diff") and not comp.same_bands:
            self.state.message.emit(f"{comp.label} has other bands than the result: no difference map; "
                                    f"shown side by side.")
            mode = "side"
        swipe = mode == "swipe"
        self.swipe_item.setVisible(swipe)
        self.swipe_line.setVisible(swipe)
        self.compare_view.setVisible(not swipe)
        if mode.startswith("diff"):
            kind = mode[5:]
            cube = r.hr_hsi

            def job():
                from spectramorph_engine.quality.inspection import difference_map
                return difference_map(cube, comp.cube, kind=kind)

            def ready(diff):
                self._difference = diff
                unit = "RMSE" if kind == "rmse" else "SAM (°)"
                self._show_map(self.compare_view, diff, f"Difference ({unit}): {rec.name} vs {comp.label}")
                self.compare_view.sync_to_link()
            self._fetch("compare", job, ready, self._big(cube))
            return
        spec = self._image_spec()
        if self.show_combo.currentData() not in ("result", "truth"):
            spec = ("rgb", tuple(self.band_picker.bands())) if self._levels_spec is None else self._levels_spec
        own_levels = not comp.same_bands
        preset = self._preset

        def job():
            if comp.same_bands:
                image = cube_image(comp.cube, spec)
            else:      # the HR-MSI: its own bands (three, or its only one)
                from spectramorph_engine.quality.previews import composite, default_rgb_bands
                c = comp.cube.shape[2]
                image = composite(comp.cube, default_rgb_bands(c) if c >= 3 else (0, 0, 0))
            return image, (stretch(image, preset) if own_levels else None)

        def ready(value):
            image, levels = value
            levels = self._levels if levels is None else levels
            self._compare_image, self._compare_levels = image, levels
            title = f"{comp.label}" + ("" if own_levels else f", {self._spec_text(spec)}")
            if swipe:
                self._place_swipe(reset=True)
                self.view.set_title(f"Swipe: {rec.name} (left) | {comp.label} (right)")
            else:
                self.compare_view.set_colormap(None)
                self.compare_view.set_image(image, levels=levels)
                self.compare_view.set_title(title)
                self.compare_view.sync_to_link()
        self._fetch("compare", job, ready, self._big(getattr(comp.cube, "shape", None) and comp.cube))

    def _place_swipe(self, reset: bool = False) -> None:
        image = getattr(self, "_compare_image", None)
        if image is None or not self.swipe_item.isVisible():
            return
        h, w = image.shape[:2]
        if reset and not 0 < self.swipe_line.value() < w:
            self.swipe_line.blockSignals(True)
            self.swipe_line.setValue(w / 2)
            self.swipe_line.blockSignals(False)
        x = int(np.clip(round(self.swipe_line.value()), 0, w))
        part = np.ascontiguousarray(image[:, x:]) if x < w else np.zeros((h, 1) + image.shape[2:], image.dtype)
        self.swipe_item.setImage(part, autoLevels=False, levels=self._compare_levels)
        self.swipe_item.setRect(QRectF(x, 0, max(w - x, 1e-3), h))

    def swipe_to(self, column: float) -> None:
        """Move the swipe line (tests, keyboard)."""
        self.swipe_line.setValue(column)

    # ------------------------------------------------------------------ building: spectra
    def _build_spectra_area(self) -> QWidget:
        """Tabs: the spectra of pinned pixels and regions; the per-band scores; the library."""
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
        self.compare_curve = self.spectrum_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashDotLine))
        self.lr_plot = pg.PlotWidget()
        self.lr_plot.setTitle("LR-HSI spectrum of the LR pixel containing it", size="9pt")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.3)
        self.lr_plot.setLabel("left", "value")
        self.lr_plot.setXLink(self.spectrum_plot)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#1565c0", width=2))
        self.export_csv_button = QPushButton("Spectra → CSV…")
        self.export_csv_button.setToolTip("Every spectrum plotted above (pixels, region means and standard "
                                          "deviations, library spectra), one column each, over wavelength")
        self.export_plot_button = QPushButton("Plot → PNG/SVG…")
        self.export_plot_button.setToolTip("The spectrum plot as an image (.png) or a vector drawing (.svg)")
        self.regions_label = QLabel("")
        self.regions_label.setObjectName("regionsLabel")
        self.regions_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_csv_button)
        buttons.addWidget(self.export_plot_button)
        buttons.addStretch(1)
        spectra_tab = QWidget()
        spl = QVBoxLayout(spectra_tab)
        spl.setContentsMargins(2, 2, 2, 2)
        spl.setSpacing(2)
        spl.addWidget(self.pixel_label)
        spl.addWidget(self.regions_label)
        spl.addWidget(self.spectrum_plot, 3)
        spl.addWidget(self.lr_plot, 2)
        spl.addLayout(buttons)

        # per-band scores against the truth
        self.band_scores_plot = pg.PlotWidget()
        self.band_scores_plot.setObjectName("bandScoresPlot")
        self.band_scores_plot.showGrid(x=True, y=True, alpha=0.3)
        self.band_scores_plot.setTitle("PSNR per band against the ground truth", size="9pt")
        self.band_scores_plot.setLabel("left", "PSNR (dB)")
        self.band_scores_legend = self.band_scores_plot.addLegend(offset=(-5, -5), labelTextSize="8pt")
        self.band_rmse_plot = pg.PlotWidget()
        self.band_rmse_plot.showGrid(x=True, y=True, alpha=0.3)
        self.band_rmse_plot.setTitle("RMSE per band", size="9pt")
        self.band_rmse_plot.setLabel("left", "RMSE")
        self.band_rmse_plot.setXLink(self.band_scores_plot)
        self.band_psnr_curve = self.band_scores_plot.plot(pen=pg.mkPen("#c62828", width=2), name="shown run")
        self.band_psnr_compare = self.band_scores_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashLine),
                                                            name="comparison")
        self.band_rmse_curve = self.band_rmse_plot.plot(pen=pg.mkPen("#c62828", width=2))
        self.band_rmse_compare = self.band_rmse_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashLine))
        self.band_scores_note = _note_label("bandScoresNote")
        self.band_scores_note.setText("Per-band scores need a ground truth (synthetic mode). In real-world mode "
                                      "see the misfit maps (image menu) and the consistency scores below.")
        scores_page = QWidget()
        bl = QVBoxLayout(scores_page)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.band_scores_plot, 1)
        bl.addWidget(self.band_rmse_plot, 1)
        self.band_scores_stack = QStackedWidget()
        self.band_scores_stack.addWidget(scores_page)
        self.band_scores_stack.addWidget(self.band_scores_note)

        from .library_tab import LibraryTab
        self.library_tab = LibraryTab(self.state, self._match_targets)
        self.spectra_tabs = QTabWidget()
        self.spectra_tabs.setObjectName("spectraTabs")
        self.spectra_tabs.addTab(spectra_tab, "Spectra")
        self.spectra_tabs.addTab(self.band_scores_stack, "Per-band scores")
        self.spectra_tabs.addTab(self.library_tab, "Library")
        self._band_scores_stale = False
        self.spectra_tabs.currentChanged.connect(self._on_spectra_tab)
        for plot in (self.band_scores_plot, self.band_rmse_plot):
            plain_axes(plot)
        box = QWidget()
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.spectra_tabs)
        self._pin_curves: list = []
        self._region_items: dict = {}      # region number -> plot items
        self.region_stats: dict = {}       # region number -> {source: (mean, std, n)}
        self._library_curves: list = []
        return box

    def _connect_spectra_area(self) -> None:
        self.export_csv_button.clicked.connect(lambda: self.export_spectra_csv())
        self.export_plot_button.clicked.connect(lambda: self.export_spectrum_plot())
        self.library_tab.overlaysChanged.connect(self._draw_library_overlays)

    # ------------------------------------------------------------------ pixels
    def _hovered(self, row: int, col: int) -> None:
        self.view.set_cursor(row, col)
        self.compare_view.set_cursor(row, col)
        self.show_pixel(row, col, pinned=False)

    def _hover_ended(self) -> None:
        """The mouse left the image: the plots go back to the pinned pixel (as the marker shows)."""
        self.view.set_cursor(None, None)
        self.compare_view.set_cursor(None, None)
        if self.pixel is not None and self.result is not None:
            self.show_pixel(*self.pixel, pinned=True)

    def select_pixel(self, row: int, col: int) -> None:
        """Pin a pixel: its spectra stay in the plots and a marker shows where it is."""
        if self.result is None:
            return
        self.regions.pin(row, col)

    def _pins_changed(self) -> None:
        if self.result is None or not self.regions.pins:
            return
        h, w = self.result.hr_hsi.shape[:2]
        self.regions.pins = [(r_, c_) for r_, c_ in self.regions.pins if r_ < h and c_ < w] or [(h // 2, w // 2)]
        self.pixel = self.regions.pins[0]
        pins = [(r_, c_, self.regions.pin_colour(i)) for i, (r_, c_) in enumerate(self.regions.pins)]
        self.view.set_pins(pins)
        self.compare_view.set_pins(pins)
        self.show_pixel(*self.pixel, pinned=True)
        self._draw_extra_pins()
        self.library_tab.targets_changed()

    def show_pixel(self, row: int, col: int, pinned: bool = True) -> None:
        r = self.result
        if r is None:
            return
        prep = r.prepared
        x = self._x()
        self.result_curve.setData(x, np.asarray(r.hr_hsi[row, col, :], dtype=np.float64))
        if prep.truth is not None:
            self.truth_curve.setData(x, prep.truth[row, col, :])
            self.truth_curve.show()
        else:
            self.truth_curve.setData([], [])
            self.truth_curve.hide()
        comp = self._compare
        self.spectrum_legend.removeItem(self.compare_curve)
        if comp is not None and comp.same_bands and comp.key != "truth":
            self.compare_curve.setData(x, np.asarray(comp.cube[row, col, :], dtype=np.float64))
            self.compare_curve.show()
            self.spectrum_legend.addItem(self.compare_curve, comp.label)
        else:
            self.compare_curve.setData([], [])
            self.compare_curve.hide()
        lr_row, lr_col = row // prep.ratio, col // prep.ratio
        lr_spectrum = np.asarray(prep.lr_hsi[lr_row, lr_col, :], dtype=np.float64)
        if r.units == "input" and prep.lr_units is not None:    # shown in the same units as the result
            lr_spectrum = lr_spectrum * prep.lr_units[1] + prep.lr_units[0]
        self.lr_curve.setData(x, lr_spectrum)
        more = len(self.regions.pins) - 1
        self.pixel_label.setText(
            f"{'Pinned' if pinned else 'Hovered'} pixel <b>(row {row}, col {col})</b>, in LR pixel (row {lr_row}, "
            f"col {lr_col}); " + (f"{more} more pinned (Shift+click); " if more > 0 else "")
            + ("click the image to pin another" if pinned else "click to pin it") + ".")

    def _draw_extra_pins(self) -> None:
        """Pinned pixels after the first: their result spectra in their marker's colour."""
        for c in self._pin_curves:
            self.spectrum_plot.removeItem(c)
        self._pin_curves = []
        if self.result is None:
            return
        x = self._x()
        for i, (row, col) in enumerate(self.regions.pins[1:], start=1):
            curve = self.spectrum_plot.plot(x, np.asarray(self.result.hr_hsi[row, col, :], dtype=np.float64),
                                            pen=pg.mkPen(self.regions.pin_colour(i), width=1.5),
                                            name=f"pixel ({row}, {col})")
            self._pin_curves.append(curve)

    def spectrum_data(self):
        """(x, reconstructed spectrum) now drawn; for tests."""
        return self.result_curve.getOriginalDataset()

    # ------------------------------------------------------------------ regions
    def _clear_regions(self) -> None:
        self.regions.clear()
        if self.pixel is not None:
            self.regions.pin(*self.pixel)

    def _region_sources(self) -> list:
        """(name, cube) whose statistics a region shows: result, comparison, truth, LR-HSI."""
        from ..compare import NearestUpsampled, unit_map
        r = self.result
        prep = r.prepared
        scale, offset = unit_map(r)
        out = [("result", r.hr_hsi)]
        comp = self._compare
        if comp is not None and comp.same_bands and comp.key not in ("truth", "lr_hsi"):
            out.append((comp.label, comp.cube))
        if prep.truth is not None:
            out.append(("truth", prep.truth))
        out.append(("LR-HSI", NearestUpsampled(prep.lr_hsi, prep.ratio, r.hr_hsi.shape[:2], scale, offset)))
        return out

    def _region_changed(self, region) -> None:
        if self.result is None:
            return
        targets = self.regions.regions if region is None else [region]
        if region is None:       # removed or cleared: forget what is gone
            for number in list(self._region_items):
                if number not in {g.number for g in self.regions.regions}:
                    for item in self._region_items.pop(number):
                        self.spectrum_plot.removeItem(item)
                    self.region_stats.pop(number, None)
        for g in targets:
            self._compute_region(g)
        self._update_regions_label()
        self.library_tab.targets_changed()

    def _compute_region(self, region) -> None:
        from spectramorph_engine.quality.inspection import roi_statistics
        shape = self.result.hr_hsi.shape
        mask = region.mask(shape)
        sources = self._region_sources()

        def job():
            return {name: roi_statistics(cube, mask) for name, cube in sources}

        def ready(stats):
            if region in self.regions.regions:
                self.region_stats[region.number] = stats
                self._draw_region(region)
                self._update_regions_label()
                self.library_tab.targets_changed()
        self._fetch(f"region{region.number}", job, ready, self._big(self.result.hr_hsi))

    def _draw_region(self, region) -> None:
        for item in self._region_items.pop(region.number, []):
            self.spectrum_plot.removeItem(item)
        stats = self.region_stats.get(region.number)
        if not stats:
            return
        x = self._x()
        items = []
        styles = {"result": Qt.SolidLine, "truth": Qt.DotLine, "LR-HSI": Qt.DashDotDotLine}
        for name, (mean, std, n) in stats.items():
            style = styles.get(name, Qt.DashLine)
            width = 2.0 if name == "result" else 1.3
            curve = self.spectrum_plot.plot(x, mean, pen=pg.mkPen(region.colour, width=width, style=style))
            # named for the CSV export, kept out of the legend (the regions line explains the styles)
            curve.opts["name"] = f"{region.name} {name} mean"
            curve.region_std = std
            items.append(curve)
            if name == "result":       # mean +/- sd as a shaded band
                # plain curves: a PlotDataItem with pen=None builds no path, and the band was empty
                lo = pg.PlotCurveItem(x, mean - std)
                hi = pg.PlotCurveItem(x, mean + std)
                colour = pg.mkColor(region.colour)
                colour.setAlpha(45)
                fill = pg.FillBetweenItem(lo, hi, brush=colour)
                self.spectrum_plot.addItem(fill)
                items.append(fill)
        self._region_items[region.number] = items

    def _update_regions_label(self) -> None:
        parts = []
        for g in self.regions.regions:
            stats = self.region_stats.get(g.number, {})
            n = stats["result"][2] if "result" in stats else "…"     # … while it is computed
            parts.append(f"<span style='color:{g.colour}'>■</span> {g.name} ({g.kind}, {n} px)")
        self.regions_label.setText("Regions: " + ", ".join(parts) if parts else "")
        self.regions_label.setToolTip("Each region's mean spectrum: solid with its ± standard deviation shaded, "
                                      "the result; dashed, the comparison; dotted, the ground truth; dash-dot, "
                                      "the LR-HSI. Right-click a region to remove it; drag it or its corners "
                                      "to change it.")
        self.regions_label.setVisible(bool(parts))

    def _refresh_spectra(self) -> None:
        """Comparison or result changed: redraw pixel spectra, region statistics and scores."""
        if self.result is None:
            return
        if self.pixel is not None:
            self.show_pixel(*self.pixel, pinned=True)
        self._draw_extra_pins()
        for g in self.regions.regions:
            self._compute_region(g)
        self._draw_band_scores()

    # ------------------------------------------------------------------ per-band scores
    def _band_scores(self, cube, key) -> dict:
        rec = self.state.shown_run
        cache = rec.notes.setdefault("band_scores", {}) if rec is not None else {}
        if key not in cache:
            from spectramorph_engine.quality.inspection import per_band_scores
            cache[key] = per_band_scores(cube, self.result.prepared.truth)
        return cache[key]

    def _on_spectra_tab(self, _index) -> None:
        if self._band_scores_stale:
            self._draw_band_scores()

    def _draw_band_scores(self) -> None:
        r = self.result
        if r is None:
            return
        if r.prepared.truth is None:
            self.band_scores_stack.setCurrentIndex(1)
            return
        self.band_scores_stack.setCurrentIndex(0)
        # a pass over the whole cube per source: only for a tab someone looks at
        self._band_scores_stale = self.spectra_tabs.currentWidget() is not self.band_scores_stack
        if self._band_scores_stale:
            return
        x = self._x()
        comp = self._compare
        sources = [("shown", r.hr_hsi)]
        if comp is not None and comp.same_bands and comp.key != "truth":
            sources.append((comp.key, comp.cube))

        def job():
            return [self._band_scores(cube, key) for key, cube in sources]

        def ready(scores):
            self.band_psnr_curve.setData(x, scores[0]["psnr"])
            self.band_rmse_curve.setData(x, scores[0]["rmse"])
            self.band_scores_legend.removeItem(self.band_psnr_compare)
            self.band_scores_legend.removeItem(self.band_psnr_curve)
            name = self.state.shown_run.name if self.state.shown_run is not None else "result"
            self.band_scores_legend.addItem(self.band_psnr_curve, name)
            if len(scores) > 1:
                self.band_psnr_compare.setData(x, scores[1]["psnr"])
                self.band_rmse_compare.setData(x, scores[1]["rmse"])
                self.band_scores_legend.addItem(self.band_psnr_compare, comp.label)
            else:
                for c in (self.band_psnr_compare, self.band_rmse_compare):
                    c.setData([], [])
        self._fetch("band_scores", job, ready, self._big(r.hr_hsi))

    # ------------------------------------------------------------------ library
    def _match_targets(self) -> list:
        """(label, spectrum) a library can be matched against: the pinned pixels, then each
        region's mean (the result's)."""
        r = self.result
        if r is None:
            return []
        truth = r.prepared.truth
        out = []
        for row, col in self.regions.pins:
            out.append((f"pixel ({row}, {col})", np.asarray(r.hr_hsi[row, col, :], dtype=np.float64)))
            if truth is not None:
                out.append((f"pixel ({row}, {col}), truth", np.asarray(truth[row, col, :], dtype=np.float64)))
        for g in self.regions.regions:
            stats = self.region_stats.get(g.number)
            if stats:
                out.append((f"{g.name} mean", stats["result"][0]))
                if "truth" in stats:
                    out.append((f"{g.name} mean, truth", stats["truth"][0]))
        return out

    def _draw_library_overlays(self) -> None:
        """Chosen library spectra over the spectra, each scaled to the matched spectrum (least
        squares; the match itself is by angle, which ignores brightness)."""
        for c in self._library_curves:
            self.spectrum_plot.removeItem(c)
        self._library_curves = []
        if self.result is None:
            return
        x = self._x()
        for i, (name, spectrum) in enumerate(self.library_tab.overlays()):
            curve = self.spectrum_plot.plot(x, spectrum, pen=pg.mkPen(LIBRARY_COLOURS[i % len(LIBRARY_COLOURS)],
                                                                     width=1.5, style=Qt.DotLine),
                                            name=f"library: {name}")
            self._library_curves.append(curve)

    # ------------------------------------------------------------------ exports
    def plotted_spectra(self) -> tuple:
        """(x, [(name, values), ...]): every spectrum now in the spectrum plot -- pixels, region
        means and standard deviations, library spectra -- as the CSV export writes them."""
        x = self._x() if self.result is not None else np.zeros(0)
        columns = []
        for item in self.spectrum_plot.getPlotItem().listDataItems():
            if not item.isVisible() or item.name() is None:
                continue
            xs, ys = item.getOriginalDataset()
            if ys is None or len(ys) != len(x):
                continue
            columns.append((item.name(), np.asarray(ys, dtype=float)))
            std = getattr(item, "region_std", None)
            if std is not None and item.name().endswith("result mean"):
                columns.append((item.name()[:-len("mean")] + "sd", np.asarray(std, dtype=float)))
        return x, columns

    def export_spectra_csv(self, path: str | None = None) -> None:
        if self.result is None:
            return
        if path is None:
            path = dialogs.ask_save_file(self, "Export the plotted spectra", "CSV (*.csv)", "spectra.csv")
            if not path:
                return
        x, columns = self.plotted_spectra()
        wl_known = self.result.prepared.wavelengths is not None
        header = ["wavelength_nm" if wl_known else "band"] + [name for name, _ in columns]
        table = np.column_stack([x] + [v for _, v in columns])

        def job():
            import csv
            import io as _io
            from spectramorph_engine.io import atomic_write_text
            buf = _io.StringIO()
            writer = csv.writer(buf)
            writer.writerow(header)
            for row in table:
                writer.writerow([repr(float(v)) for v in row])
            atomic_write_text(path, buf.getvalue())
        self.state.run_task(job, f"Saving {path}", lambda _v: self.state.message.emit(
            f"{len(columns)} spectra saved to {path}"))

    def export_spectrum_plot(self, path: str | None = None) -> None:
        if path is None:
            path = dialogs.ask_save_file(self, "Export the spectrum plot", "PNG image (*.png);;SVG drawing (*.svg)",
                                         "spectra.png")
            if not path:
                return
        widget = self.spectrum_plot
        if str(path).lower().endswith(".svg"):
            # Qt's own SVG painter: pyqtgraph's SVGExporter fails on the shaded +/- sd bands
            from PySide6.QtCore import QRect
            from PySide6.QtGui import QPainter
            from PySide6.QtSvg import QSvgGenerator
            gen = QSvgGenerator()
            gen.setFileName(str(path))
            gen.setSize(widget.size())
            gen.setViewBox(QRect(0, 0, widget.width(), widget.height()))
            gen.setTitle("SpectraMorph Studio spectra")
            painter = QPainter()
            ok = painter.begin(gen)
            if ok:
                widget.render(painter)
                painter.end()
        else:
            import pyqtgraph.exporters as exporters
            exporter = exporters.ImageExporter(widget.getPlotItem())
            exporter.parameters()["width"] = max(int(widget.width()) * 2, 800)
            try:
                exporter.export(str(path))
                ok = True
            except OSError:
                ok = False
        if not ok or not Path(path).is_file():
            self.state.errorRaised.emit(f"Cannot write the plot to '{path}'.")
            return
        self.state.message.emit(f"Plot saved to {path}")


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
    from spectramorph_engine.quality.metrics import METRIC_INFO
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
