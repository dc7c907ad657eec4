"""The results panel's spectra: the pinned and hovered pixels' spectra (result, truth,
comparison, LR-HSI), the regions' mean and spread, the per-band scores and the library's
overlays and match targets.

The pins and the region records are the view state's (kept through `self.regions`, the
`RegionTools` that draws them); the statistics computed here (`region_stats`) and the plot
items are the widget layer's. A mixin of `ResultsPanel`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedWidget, QTabWidget, QVBoxLayout, QWidget

from .plotting import FigureLegend, plain_axes, set_title
from .results_overview import note_label

LIBRARY_COLOURS = ("#6d4c41", "#546e7a", "#8d6e63", "#78909c", "#a1887f")


class ResultsSpectra:
    """Spectra of pixels and regions, per-band scores, library overlays."""

    # ------------------------------------------------------------------ building: spectra
    def _build_spectra_area(self) -> QWidget:
        """Tabs: the spectra of pinned pixels and regions; the per-band scores; the library."""
        self.pixel_label = QLabel("Hover over or click the image to see a pixel's spectra.")
        self.pixel_label.setObjectName("pixelLabel")
        self.pixel_label.setWordWrap(True)
        self.spectrum_plot = pg.PlotWidget()
        set_title(self.spectrum_plot, "Pixel spectra")
        self.spectrum_plot.showGrid(x=True, y=True, alpha=0.3)
        self.spectrum_plot.setLabel("left", "value (normalised)")
        self.spectrum_legend = FigureLegend(self.spectrum_plot)      # under the plot, not over the curves
        self.result_curve = self.spectrum_plot.plot(pen=pg.mkPen("#c62828", width=2), name="reconstructed")
        self.truth_curve = self.spectrum_plot.plot(pen=pg.mkPen("k", width=1.5, style=Qt.DashLine),
                                                   name="ground truth")
        self.compare_curve = self.spectrum_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashDotLine))
        self.lr_plot = pg.PlotWidget()
        set_title(self.lr_plot, "LR-HSI: the LR pixel containing it")
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
        set_title(self.band_scores_plot, "PSNR per band (vs ground truth)")
        self.band_scores_plot.setLabel("left", "PSNR (dB)")
        self.band_scores_legend = FigureLegend(self.band_scores_plot)
        self.band_rmse_plot = pg.PlotWidget()
        self.band_rmse_plot.showGrid(x=True, y=True, alpha=0.3)
        set_title(self.band_rmse_plot, "RMSE per band")
        self.band_rmse_plot.setLabel("left", "RMSE")
        self.band_rmse_plot.setXLink(self.band_scores_plot)
        self.band_psnr_curve = self.band_scores_plot.plot(pen=pg.mkPen("#c62828", width=2), name="shown run")
        self.band_psnr_compare = self.band_scores_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashLine),
                                                            name="comparison")
        self.band_rmse_curve = self.band_rmse_plot.plot(pen=pg.mkPen("#c62828", width=2))
        self.band_rmse_compare = self.band_rmse_plot.plot(pen=pg.mkPen("#1565c0", width=1.5, style=Qt.DashLine))
        self.band_scores_note = note_label("bandScoresNote")
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
        self.spectra_tabs.addTab(self.band_scores_stack, "Per band")
        self.spectra_tabs.addTab(self.library_tab, "Library")
        self.spectra_tabs.setTabToolTip(0, "The pinned pixels' and the regions' spectra")
        self.spectra_tabs.setTabToolTip(1, "PSNR and RMSE of each band against the ground truth")
        self.spectra_tabs.setTabToolTip(2, "Match spectra against a spectral library")
        # short names that fit the panel at 1400 x 900; narrower, they elide (no scroll arrows)
        self.spectra_tabs.setElideMode(Qt.ElideRight)
        self.spectra_tabs.setUsesScrollButtons(False)
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
        self.view_state.pins_inside()
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
                    self._remove_region_items(number)
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

    def _remove_region_items(self, number) -> None:
        for item in self._region_items.pop(number, []):
            self.spectrum_legend.removeItem(item)
            self.spectrum_plot.removeItem(item)

    def _draw_region(self, region) -> None:
        self._remove_region_items(region.number)
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
            # named for the CSV export; the result's mean is in the legend (an exported plot says
            # which curve is which), the other sources' means are explained by the regions line
            curve.opts["name"] = f"{region.name} {name} mean"
            curve.region_std = std
            items.append(curve)
            if name == "result":
                self.spectrum_legend.addItem(curve, f"{region.name} mean ± sd")
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
