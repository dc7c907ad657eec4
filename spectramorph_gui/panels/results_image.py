"""The results panel's image: the shown run's result (or truth, error or misfit map) in the
main view, the display levels and their histogram, the band choice and band playback, and
the reading of bands of big cubes on the task thread (`_fetch`).

What is shown -- display choice, bands, levels, preset -- is the view state's
(`self.view_state`): the widgets here write it on input and the drawing reads it.
A mixin of `ResultsPanel`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QLabel, QSizePolicy, QSlider,
                               QSplitter, QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from spectramorph_engine.quality.inspection import percentile_levels
from spectramorph_engine.quality.previews import composite

from .plotting import BandPicker, ImageView, band_name
from .regions import RegionTools

PLAY_INTERVAL_MS = 150            # band playback: about 7 bands a second
# Band images of cubes bigger than this are read on the task thread (a memory-mapped
# 2048 x 2048 x 200 result takes a second or more per read), so the window never blocks.
SYNC_READ_BYTES = 256 << 20
MAPPED_BLOCK_BYTES = 64 << 20     # rows of a memory-mapped result read at a time


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


class ResultsImage:
    """The main image view, its levels and bands."""

    # ------------------------------------------------------------------ building
    def _build_image_area(self) -> QWidget:
        """The shown run's image, its comparison (side by side, swipe or difference), the
        levels histogram, the band controls and the region tools."""
        self.view = ImageView("Result (HR-HSI)")
        self.view.setMinimumSize(200, 200)
        self._build_compare_widgets()
        self.histogram = pg.HistogramLUTWidget(image=self.view.image)
        self.histogram.setObjectName("levelsHistogram")
        self.histogram.setMinimumWidth(96)
        self.histogram.setMaximumWidth(112)
        # pyqtgraph adds the RGB channels' histograms onto the background (made for a dark one):
        # on our white background they vanished. Drawn over it, in colours that show on white.
        from PySide6.QtGui import QPainter
        for plot, colour in zip(self.histogram.item.plots[1:4], ((200, 0, 0), (0, 140, 0), (0, 0, 220))):
            plot.setCompositionMode(QPainter.CompositionMode_SourceOver)
            plot.setPen(pg.mkPen(colour + (220,), width=1))
            plot.setBrush(pg.mkBrush(colour + (60,)))
        self.histogram.setToolTip("Display levels: drag the band's ends (per colour channel for RGB); the "
                                  "buttons below set a percentile stretch. The comparison shares them.")
        self.regions = RegionTools(self.view, self.view_state, self)

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
        self.show_combo.currentIndexChanged.connect(self._display_chosen)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.band_slider.valueChanged.connect(self._band_chosen)
        self.band_picker.changed.connect(self._rgb_chosen)
        self.fit_button.clicked.connect(self.view.fit)
        self.play_button.toggled.connect(self._play)
        self.play_timer.timeout.connect(self._next_band)
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
        self._connect_compare()
        self.regions.pinsChanged.connect(self._pins_changed)
        self.regions.changed.connect(self._region_changed)

    # ------------------------------------------------------------------ image: what is drawn
    # what the widgets choose is written to the view state, then drawn from it
    def _display_chosen(self, _i) -> None:
        self.view_state.display = self.show_combo.currentData()
        self._draw_image()

    def _mode_changed(self, _i) -> None:
        self.view_state.mode = self.mode_combo.currentData()
        self.band_stack.setCurrentIndex(0 if self.view_state.mode == "rgb" else 1)
        if self.view_state.mode != "band":
            self.play_button.setChecked(False)
        self._draw_image(new_levels=True)

    def _band_chosen(self, band: int) -> None:
        self.view_state.band = int(band)
        self._draw_image(new_levels=True)

    def _rgb_chosen(self, bands) -> None:
        self.view_state.rgb_bands = tuple(int(b) for b in bands)
        self._draw_image(new_levels=True)

    def _show_bands(self, num_bands: int, wavelengths) -> None:
        """The band controls set to the view state's bands for a new spectral axis."""
        vs = self.view_state
        self.band_picker.configure(num_bands, wavelengths, vs.rgb_bands)
        vs.rgb_bands = tuple(self.band_picker.bands())
        self.band_slider.blockSignals(True)
        self.band_slider.setRange(0, num_bands - 1)
        self.band_slider.setValue(vs.band)
        self.band_slider.blockSignals(False)
        vs.band = self.band_slider.value()

    def _show_display(self) -> None:
        """The display chooser set to the view state's choice (without drawing)."""
        self.show_combo.blockSignals(True)
        self.show_combo.setCurrentIndex(max(self.show_combo.findData(self.view_state.display), 0))
        self.show_combo.blockSignals(False)

    def _image_spec(self) -> tuple:
        return self.view_state.band_spec

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
        choice = self.view_state.display
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
        need_levels = new_levels or self.view_state.needs_levels(spec)
        preset = self.view_state.preset

        def job():
            shown = cube_image(cube, spec)
            base = shown if cube is r.hr_hsi or not need_levels else cube_image(r.hr_hsi, spec)
            return shown, (stretch(base, preset) if need_levels else None)

        def ready(value):
            shown, levels = value
            if levels is not None:
                self.view_state.set_levels(levels, spec)
            self._primary_image = shown
            self._show_primary(shown, self.view_state.levels)
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
        lv = np.asarray(self.view_state.levels if levels is None else levels, dtype=float).reshape(-1, 2)
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
        if self.view_state.display in ("result", "truth"):
            self.view_state.set_levels(levels)
            if self.compare_view.isVisible() and self._compare is not None and self._compare.same_bands \
                    and self.view_state.compare_mode == "side":
                self.compare_view.image.setLevels(levels)
            if self.swipe_item.isVisible() and self._compare is not None and self._compare.same_bands:
                self.swipe_item.setLevels(levels)

    def set_level_preset(self, percentiles) -> None:
        """Stretch from these (low, high) percentiles of the result's image (per channel)."""
        self.view_state.set_preset(percentiles)
        self._draw_image(new_levels=True)

    def displayed_levels(self) -> np.ndarray:
        """The levels the main image is drawn with: (2,) or (channels, 2)."""
        return np.asarray(self.view.image.levels, dtype=float)

    # ------------------------------------------------------------------ bands
    def _play(self, on: bool) -> None:
        if on:
            if self.view_state.mode != "band":
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
