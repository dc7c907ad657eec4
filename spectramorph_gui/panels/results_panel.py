"""Results: the fused image, pixel spectra, endmembers, ALLE maps and the scores.

Everything drawn here is read from the `FusionResult`: the panel picks bands,
indexes pixels and lays out plots, nothing more. Hovering over the image
shows that pixel's spectra; a click pins the pixel (marked in magenta) so the
spectra stay when the mouse leaves.

Before the first result the panel is a short guide with a big Run button
(a Stop button and the run's progress while training).

What the view shows -- the scene, the display choice, bands, levels, comparison mode, pins
and regions -- is one Qt-free `ResultsViewState` (`view_state`); the parts of the panel
write it on input and read it when they draw. The parts, one concern each:

- `results_overview`: the guide, the run's lifecycle, the banner; endmembers, ALLE, scores
- `results_image`: the image view, levels, bands and playback, reading big cubes
- `results_compare`: side by side, swipe, difference
- `results_spectra`: pixel and region spectra, per-band scores, the library
- `results_export`: spectra as CSV, the plot as PNG / SVG
- `..run_summary` (Qt-free): how the result was made, as text
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QScrollArea, QSplitter, QStackedWidget, QVBoxLayout, QWidget

from spectramorph_engine.quality.previews import default_rgb_bands

from ..run_summary import consistency_columns, consistency_rows, no_unmixing_note, result_facts, run_summary
from ..view_state import ResultsViewState, Scene
from .plotting import plain_axes, set_title
from .results_compare import ResultsCompare
from .results_export import ResultsExport
from .results_image import cube_image, stretch, ResultsImage
from .results_overview import ResultsOverview
from .results_spectra import ResultsSpectra


class ResultsPanel(ResultsOverview, ResultsImage, ResultsCompare, ResultsSpectra, ResultsExport, QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.view_state = ResultsViewState()
        self.result = None
        self.alle_images: list = []
        self.endmember_curves: list = []
        self._finished_at = ""
        self._syncing_levels = False
        self._fetch_gen: dict = {}
        self._compare = None       # compare.Comparison shown, or None
        self._primary_image = None
        self._compare_image = None
        self._compare_levels = None
        self._difference = None    # the difference map shown, for tests and exports

        welcome = self._build_overview()
        image_box = self._build_image_area()
        spectra_box = self._build_spectra_area()
        bottom = self._build_unmixing_area()

        top = QSplitter(Qt.Horizontal)
        top.addWidget(image_box)
        top.addWidget(spectra_box)
        top.setSizes([620, 380])
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
        rl.addWidget(self.metrics_box)

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

    @property
    def pixel(self):
        """The pinned (row, col) whose spectra the plots show (the view state's first pin)."""
        return self.view_state.pixel

    def _enable(self, on: bool) -> None:
        for w in (self.show_combo, self.mode_combo, self.band_stack, self.compare_combo, self.fit_button,
                  self.clear_regions_button, *self.tool_buttons.values(), *self.preset_buttons.values()):
            w.setEnabled(on)

    def set_result(self, result) -> None:
        self.result = result
        self.welcome_progress.hide()
        self._update_welcome_button()
        if result is None:
            return
        prep = result.prepared
        h, w, c = result.hr_hsi.shape
        wl = prep.wavelengths
        spectral_axis_changed = self._fit_scene(result)
        self._finished_at = time.strftime("%H:%M:%S")
        self.pages.setCurrentIndex(1)
        self._show_result_text(result)
        self._enable(True)
        has_truth = prep.truth is not None
        has_misfit = result.misfit is not None
        for key, on in (("truth", has_truth), ("err_rmse", has_truth), ("err_sam", has_truth),
                        ("misfit_pair", has_misfit), ("misfit_result", has_misfit)):
            self.show_combo.model().item(self.show_combo.findData(key)).setEnabled(on)
        available = {"result"} | ({"truth", "err_rmse", "err_sam"} if has_truth else set()) | \
            ({"misfit_pair", "misfit_result"} if has_misfit else set())
        if self.view_state.limit_display(available):
            self._show_display()
        if spectral_axis_changed:
            self._show_bands(c, wl)
        x_label = "wavelength (nm)" if wl is not None else "band (wavelengths unknown)"
        for plot in (self.spectrum_plot, self.lr_plot, self.endmember_plot):
            plot.setLabel("bottom", x_label)
            plot.setLabel("left", "value (LR-HSI units)" if result.units == "input" else "value (normalised)")
        set_title(self.spectrum_plot, "Pixel spectra: result vs ground truth" if has_truth else
                  "Pixel spectra of the result")
        self.spectrum_legend.removeItem(self.truth_curve)
        if has_truth:
            self.spectrum_legend.addItem(self.truth_curve, "ground truth")
        for plot in (self.band_scores_plot, self.band_rmse_plot):
            plot.setLabel("bottom", x_label)
        self._fill_compare_combo()
        self.compare_mode.setEnabled(self.state.comparison is not None)
        self._draw_image(new_levels=True)
        self._draw_endmembers()
        self._draw_alle()
        self._draw_metrics()
        self.library_tab.set_wavelengths(wl)
        self._pins_changed()
        self._refresh_spectra()

    def _fit_scene(self, result) -> bool:
        """The view state told of the new result before anything reads a pin or a region: they
        are kept where they still fit the image, dropped with a note where they do not, and the
        levels (and, on another spectral axis, the bands) start afresh. Region statistics
        belong to the last result and are recomputed (another band count would draw the old
        means on the new axis and match them against a library resampled to the new bands).
        True when the spectral axis changed."""
        for number in list(self._region_items):
            self._remove_region_items(number)
        self.region_stats.clear()
        vs = self.view_state
        for g in self.regions.regions:          # the records as the ROI items now stand
            vs.move_region(g.number, g.vertices())
        wl = result.prepared.wavelengths
        c = result.hr_hsi.shape[2]
        scene = Scene.of(result.hr_hsi.shape, wl)
        axis_changed = scene.spectral_axis_changed(vs.scene)
        notes = vs.scene_changed(scene, default_rgb_bands(c, wl))
        kept = {g.number for g in vs.regions}
        self.regions.blockSignals(True)      # the panel redraws once, below, for the new scene
        try:
            for g in list(self.regions.regions):
                if g.number not in kept:
                    self.regions.remove(g)
        finally:
            self.regions.blockSignals(False)
        if notes:
            self.state.message.emit("New scene: " + "; ".join(notes) + ".")
        return axis_changed

    def _x(self):
        wl = self.result.prepared.wavelengths
        return np.asarray(wl, dtype=float) if wl is not None else np.arange(self.result.hr_hsi.shape[2],
                                                                            dtype=float)


__all__ = ["ResultsPanel", "consistency_columns", "consistency_rows", "cube_image", "no_unmixing_note",
           "result_facts", "run_summary", "stretch"]
