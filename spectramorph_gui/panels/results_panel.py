"""Results: the fused image, pixel spectra, endmembers, ALLE maps and the scores.

Everything drawn here is read from the `FusionResult`: the panel picks bands,
indexes pixels and lays out plots, nothing more. Hovering over the image
shows that pixel's spectra; a click pins the pixel (marked in magenta) so the
spectra stay when the mouse leaves.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSlider,
                               QSplitter, QStackedWidget, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from .plotting import BandPicker, ImageView, band_name, composite, curve_pen, default_rgb_bands, plain_axes

ALLE_COLORMAP = "viridis"


def _group(title: str, widget: QWidget, extra: QWidget | None = None) -> QWidget:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(2, 2, 2, 2)
    head = QLabel(f"<b>{title}</b>")
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

        self.banner = QLabel("")
        self.banner.setObjectName("resultsBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()

        # --- before the first result: what this is and what to do ---
        self.welcome_text = QLabel()
        self.welcome_text.setObjectName("welcomeText")
        self.welcome_text.setWordWrap(True)
        self.welcome_text.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.welcome_run = QPushButton("▶  Run")
        self.welcome_run.setObjectName("welcomeRunButton")
        self.welcome_run.setMinimumSize(220, 48)
        self.welcome_run.setToolTip("Fuse the current inputs with the current parameters (Ctrl+R).")
        welcome = QWidget()
        wl = QVBoxLayout(welcome)
        wl.addStretch(1)
        # Stretches either side keep the text a readable width; an alignment flag instead
        # would make the word-wrapped label lose its height-for-width and cut lines off.
        text_row = QHBoxLayout()
        text_row.addStretch(1)
        text_row.addWidget(self.welcome_text, 6)
        text_row.addStretch(1)
        wl.addLayout(text_row)
        wl.addSpacing(16)
        wl.addWidget(self.welcome_run, 0, Qt.AlignHCenter)
        wl.addStretch(2)

        # --- result image and its controls ---
        self.view = ImageView("Result (HR-HSI)")
        self.show_combo = QComboBox()
        self.show_combo.addItem("Result (HR-HSI)", "result")
        self.show_combo.addItem("Ground truth", "truth")
        self.show_combo.setToolTip("Which cube the image shows; spectra always show all of them.")
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("RGB composite", "rgb")
        self.mode_combo.addItem("Single band", "band")
        self.band_slider = QSlider(Qt.Horizontal)
        self.band_slider.setRange(0, 0)
        self.band_slider.setToolTip("Band shown in single-band mode")
        self.band_label = QLabel("band 0")
        self.band_label.setMinimumWidth(120)
        self.band_picker = BandPicker()
        self.band_stack = QStackedWidget()
        self.band_stack.addWidget(self.band_picker)
        slider_box = QWidget()
        sl = QHBoxLayout(slider_box)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.band_slider, 1)
        sl.addWidget(self.band_label)
        self.band_stack.addWidget(slider_box)
        self.band_stack.setSizePolicy(self.band_stack.sizePolicy().horizontalPolicy(),
                                      self.band_picker.sizePolicy().verticalPolicy())
        controls = QWidget()
        cl = QHBoxLayout(controls)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.show_combo)
        cl.addWidget(self.mode_combo)
        cl.addWidget(self.band_stack, 1)
        image_box = QWidget()
        il = QVBoxLayout(image_box)
        il.setContentsMargins(2, 2, 2, 2)
        il.addWidget(controls)
        il.addWidget(self.view, 1)

        # --- spectra of one pixel ---
        self.pixel_label = QLabel("Hover over or click the image to see a pixel's spectra.")
        self.pixel_label.setObjectName("pixelLabel")
        self.pixel_label.setWordWrap(True)
        self.spectrum_plot = pg.PlotWidget()
        self.spectrum_plot.setTitle("HR pixel spectrum", size="9pt")
        self.spectrum_plot.showGrid(x=True, y=True, alpha=0.3)
        self.spectrum_plot.setLabel("left", "reflectance (normalised)")
        self.spectrum_plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.result_curve = self.spectrum_plot.plot(pen=pg.mkPen("#c62828", width=2), name="reconstructed")
        self.truth_curve = self.spectrum_plot.plot(pen=pg.mkPen("k", width=1.5, style=Qt.DashLine),
                                                   name="ground truth")
        self.lr_plot = pg.PlotWidget()
        self.lr_plot.setTitle("LR-HSI spectrum (the LR pixel containing it)", size="9pt")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.3)
        self.lr_plot.setXLink(self.spectrum_plot)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen("#1565c0", width=2))
        spectra_box = QWidget()
        spl = QVBoxLayout(spectra_box)
        spl.setContentsMargins(2, 2, 2, 2)
        spl.addWidget(self.pixel_label)
        spl.addWidget(self.spectrum_plot, 3)
        spl.addWidget(self.lr_plot, 2)

        # --- endmembers, ALLE grid, scores ---
        self.endmember_plot = pg.PlotWidget()
        self.endmember_plot.showGrid(x=True, y=True, alpha=0.3)
        self.endmember_plot.setLabel("left", "reflectance (normalised)")
        self.endmember_legend = self.endmember_plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.alle_widget = pg.GraphicsLayoutWidget()
        self.alle_widget.ci.setContentsMargins(2, 2, 2, 2)
        self.alle_bar = None
        self.metrics_table = QTableWidget(0, 3)
        self.metrics_table.setHorizontalHeaderLabels(["", "SpectraMorph", "Bicubic"])
        self.metrics_table.verticalHeader().setVisible(False)
        self.metrics_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.metrics_table.horizontalHeader().setStretchLastSection(True)
        self.metrics_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.metrics_title = QLabel("<b>Scores</b>")
        metrics_box = QWidget()
        ml = QVBoxLayout(metrics_box)
        ml.setContentsMargins(2, 2, 2, 2)
        ml.addWidget(self.metrics_title)
        ml.addWidget(self.metrics_table, 1)

        top = QSplitter(Qt.Horizontal)
        top.addWidget(image_box)
        top.addWidget(spectra_box)
        top.setSizes([500, 500])
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(_group("Endmember spectra (NMF of the LR-HSI)", self.endmember_plot))
        bottom.addWidget(_group("Abundance-like maps (ALLE), one colour scale", self.alle_widget))
        bottom.addWidget(metrics_box)
        bottom.setSizes([380, 420, 280])
        self.splitter = QSplitter(Qt.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([560, 400])
        self.splitter.setObjectName("resultsSplitter")

        self.pages = QStackedWidget()
        self.pages.addWidget(welcome)
        self.pages.addWidget(self.splitter)
        for plot in (self.spectrum_plot, self.lr_plot, self.endmember_plot):
            plain_axes(plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(self.pages, 1)

        # --- connections ---
        self.show_combo.currentIndexChanged.connect(lambda _i: self._draw_image())
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.band_slider.valueChanged.connect(lambda _v: self._draw_image())
        self.band_picker.changed.connect(lambda _b: self._draw_image())
        self.view.pixelHovered.connect(self._hovered)
        self.view.pixelClicked.connect(self.select_pixel)
        self.welcome_run.clicked.connect(lambda: state.start_run() if state.prepared is not None else None)
        state.resultChanged.connect(self.set_result)
        state.runStarted.connect(self._on_run_started)
        state.runCancelled.connect(lambda _t: self._on_run_ended("Stopped"))
        state.runFailed.connect(lambda _t: self._on_run_ended("Failed"))
        state.preparedChanged.connect(lambda _p: self._update_welcome())
        state.inputsChanged.connect(self._update_welcome)
        self._enable(False)
        self._update_welcome()

    # ------------------------------------------------------------------ before any result
    def _update_welcome(self, running: bool = False, ended: str = "") -> None:
        s = self.state
        src = s.truth if s.config.synthetic else s.lr_hsi
        if s.config.synthetic and src is not None:
            loaded = (f"the <b>{src.label}</b> ({' × '.join(map(str, src.data.shape))}) as ground truth; "
                      f"the engine degrades it into the LR-HSI and HR-MSI shown in the Data panel")
        elif not s.config.synthetic:
            loaded = "your HR-MSI and LR-HSI (Data panel)"
        else:
            loaded = "nothing yet"
        if running:
            status = ("<p style='color:#e65100'><b>Training…</b> The loss and learning-rate curves grow in "
                      "<i>Live curves</i>; <b>Stop</b> ends the run within a second.</p>")
        elif ended:
            status = f"<p style='color:#b71c1c'><b>{ended}</b>: no result. Press Run to start again.</p>"
        elif s.prepared is None:
            status = f"<p style='color:#b71c1c'>{s.prepare_error or 'Preparing the inputs…'}</p>"
        else:
            status = ""
        self.welcome_text.setText(
            "<h2>SpectraMorph Studio</h2>"
            "<p>Fuses a low-resolution hyperspectral image (LR-HSI) with a high-resolution multispectral "
            "image (HR-MSI) into a high-resolution hyperspectral image.</p>"
            f"<p><b>Loaded:</b> {loaded}.</p>"
            "<ol><li>Look at the inputs and the sensor models in the <i>Data</i>, <i>PSF</i> and <i>SRF</i> "
            "tabs (left). Every parameter is at its default; hover over one to see what it does.</li>"
            "<li>Press <b>Run</b>. The live curves show the training; it can be stopped at any time.</li>"
            "<li>The result appears here: the fused image (hover or click a pixel for its spectra), the "
            "endmember spectra, the abundance-like maps and the scores.</li></ol>" + status)
        self.welcome_run.setEnabled(s.prepared is not None and not running and not s.running)

    # ------------------------------------------------------------------ run state
    def _on_run_started(self) -> None:
        if self.result is None:
            self._update_welcome(running=True)
            return
        self.banner.setText("<b>Training…</b> " + ("the result below is the previous run's; it is replaced "
                                                    "when this run finishes." if self.result is not None
                                                    else "results appear here when the run finishes."))
        self.banner.setStyleSheet("color:#e65100")

    def _on_run_ended(self, what: str) -> None:
        if self.result is None:
            self._update_welcome(ended=what)
        else:
            self.banner.setText(f"<b>{what}</b>: this run produced no result; shown below is the "
                                f"previous run's (finished {self._finished_at}).")
        self.banner.setStyleSheet("color:#b71c1c")

    def _enable(self, on: bool) -> None:
        for w in (self.show_combo, self.mode_combo, self.band_stack):
            w.setEnabled(on)

    # ------------------------------------------------------------------ a new result
    def set_result(self, result) -> None:
        self.result = result
        if result is None:
            return
        self._finished_at = time.strftime("%H:%M:%S")
        self.pages.setCurrentIndex(1)
        self.banner.show()
        prep = result.prepared
        h, w, c = result.hr_hsi.shape
        self.banner.setStyleSheet("color:#1b5e20")
        self.banner.setText(f"<b>Result</b> {h}×{w}×{c}, K = {result.endmembers.shape[0]} endmembers, "
                            f"final loss {result.final_loss:.4g}, {sum(result.timings.values()):.1f} s on "
                            f"{result.device} (finished {self._finished_at}). Hover or click the image for "
                            f"pixel spectra.")
        self._enable(True)
        has_truth = prep.truth is not None
        item = self.show_combo.model().item(1)
        item.setEnabled(has_truth)
        if not has_truth:
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
        x_label = "wavelength (nm)" if wl is not None else "band"
        for plot in (self.spectrum_plot, self.lr_plot, self.endmember_plot):
            plot.setLabel("bottom", x_label)
        if self.pixel is None or self.pixel[0] >= h or self.pixel[1] >= w:
            self.pixel = (h // 2, w // 2)
        self._draw_image()
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
        self._draw_image()

    def _draw_image(self) -> None:
        r = self.result
        if r is None:
            return
        cube = r.prepared.truth if self.show_combo.currentData() == "truth" and r.prepared.truth is not None \
            else r.hr_hsi
        what = "Ground truth" if cube is not r.hr_hsi else "Result (HR-HSI)"
        wl = r.prepared.wavelengths
        if self.mode_combo.currentData() == "rgb":
            bands = self.band_picker.bands()
            self.view.set_image(composite(cube, bands))
            self.view.set_title(f"{what}, RGB = bands {bands[0]}/{bands[1]}/{bands[2]}")
        else:
            b = self.band_slider.value()
            self.band_label.setText(band_name(b, wl))
            self.view.set_image(np.ascontiguousarray(cube[:, :, b]))
            self.view.set_title(f"{what}, {band_name(b, wl)}")

    def _draw_endmembers(self) -> None:
        r = self.result
        for c in self.endmember_curves:
            self.endmember_plot.removeItem(c)
        self.endmember_legend.clear()
        k = r.endmembers.shape[0]
        x = self._x()
        self.endmember_curves = [self.endmember_plot.plot(x, r.endmembers[i], pen=curve_pen(i, k),
                                                          name=f"endmember {i + 1}") for i in range(k)]
        self.endmember_legend.setVisible(k <= 12)
        self.endmember_plot.autoRange()

    def _draw_alle(self) -> None:
        r = self.result
        self.alle_widget.clear()
        self.alle_images = []
        alle = r.alle
        k = alle.shape[2]
        cols = math.ceil(math.sqrt(k))
        rows = math.ceil(k / cols)
        # One colour scale for every map, so their values can be compared at a glance.
        lo, hi = float(np.min(alle)), float(np.max(alle))
        if hi <= lo:
            hi = lo + 1e-6
        cmap = pg.colormap.get(ALLE_COLORMAP)
        for i in range(k):
            plot = self.alle_widget.addPlot(row=i // cols, col=i % cols)
            plot.setTitle(f"ALLE {i + 1}", size="8pt", color=curve_pen(i, k).color())
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
        self.alle_bar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False, width=14,
                                        pen="k")
        self.alle_bar.setImageItem(self.alle_images)
        self.alle_widget.addItem(self.alle_bar, row=0, col=cols, rowspan=rows)

    def _draw_metrics(self) -> None:
        r = self.result
        t = self.metrics_table
        t.setRowCount(0)
        if r.metrics:
            from spectramorph_engine.metrics import METRIC_INFO
            self.metrics_title.setText(f"<b>Scores against the ground truth</b> (ratio {r.prepared.ratio})")
            t.setColumnCount(3)
            t.setHorizontalHeaderLabels(["metric", "SpectraMorph", "bicubic"])
            for name, value in r.metrics.items():
                unit, higher, text = METRIC_INFO.get(name, ("", True, ""))
                label = f"{name}{f' ({unit})' if unit else ''} {'↑' if higher else '↓'}"
                base = (r.bicubic_metrics or {}).get(name)
                self._add_row([label, f"{value:.4g}", "–" if base is None else f"{base:.4g}"],
                              f"{text} {'Higher' if higher else 'Lower'} is better.")
        elif r.consistency:
            self.metrics_title.setText("<b>Consistency</b> (no ground truth in real-world mode)")
            t.setColumnCount(3)
            t.setHorizontalHeaderLabels(["check", "SpectraMorph", "bicubic"])
            for label, value, base, tip in consistency_rows(r.consistency):
                self._add_row([label, value, base], tip)
        else:
            self.metrics_title.setText("<b>Scores</b>: none for this run")

    def _add_row(self, cells, tip: str = "") -> None:
        t = self.metrics_table
        row = t.rowCount()
        t.insertRow(row)
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col:
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            item.setToolTip(tip)
            t.setItem(row, col, item)

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
        self.lr_curve.setData(x, prep.lr_hsi[lr_row, lr_col, :])
        self.pixel_label.setText(f"{'Pinned' if pinned else 'Hovered'} pixel <b>(row {row}, col {col})</b> "
                                 f"in LR pixel (row {lr_row}, col {lr_col}); "
                                 f"{'click to pin another' if pinned else 'click to pin it'}.")

    def spectrum_data(self):
        """(x, reconstructed spectrum) now drawn; for tests."""
        return self.result_curve.getOriginalDataset()


def consistency_rows(consistency: dict):
    """Rows (label, value, bicubic value, tooltip) of the real-world consistency figures."""
    rows = []
    bic = consistency.get("bicubic") or {}

    def fmt(v):
        return f"{v:.4g}" if isinstance(v, (int, float)) else "–"

    def add(prefix, figures, base, tip):
        if not isinstance(figures, dict):
            return
        for name, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                b = base.get(name) if isinstance(base, dict) else None
                rows.append((f"{prefix} {name}", fmt(value), fmt(b), tip))

    add("LR", consistency.get("lr_consistency"), bic.get("lr_consistency", bic.get("lr")),
        "The result blurred and downsampled by r, against the LR-HSI.")
    add("MSI", consistency.get("msi_consistency"), bic.get("msi_consistency", bic.get("msi")),
        "The result with the SRF applied, against the HR-MSI.")
    rr = consistency.get("reduced_resolution") or {}
    add("Reduced-res.", rr.get("fusion"), rr.get("bicubic"),
        "Both inputs degraded by r, fused, and scored against the original LR-HSI (Wald's protocol).")
    return rows
