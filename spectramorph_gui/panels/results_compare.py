"""The comparison of the shown run with another run, the truth, bicubic, the LR-HSI or the
HR-MSI: side by side in a linked view, as a swipe over the result, or as a per-pixel
difference map. The comparison itself is the application's (`AppState.comparison`); how it
is shown is the view state's (`compare_mode`).

A mixin of `ResultsPanel`; the image mixin provides `_fetch`, `_show_map` and `_spec_text`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QComboBox

from spectramorph_engine import InputError

from .plotting import ImageView
from .results_image import cube_image, stretch


def _key_to_data(key):
    """A comparison key as combo-box data (Qt turns a Python tuple into a list)."""
    return f"run:{key[1]}" if isinstance(key, tuple) else key


def _key_from_data(data):
    return ("run", int(data[4:])) if isinstance(data, str) and data.startswith("run:") else data


class ResultsCompare:
    """The comparison view, the swipe and the difference map."""

    def _build_compare_widgets(self) -> None:
        """The comparison's view (linked to the main one), the swipe over the main view and the
        comparison choosers (laid out by the image area)."""
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

    def _connect_compare(self) -> None:
        self.compare_combo.activated.connect(
            lambda _i: self.state.set_comparison(_key_from_data(self.compare_combo.currentData())))
        self.compare_mode.currentIndexChanged.connect(self._compare_mode_chosen)
        self.swipe_line.sigPositionChanged.connect(lambda _l: self._place_swipe())

    def _compare_mode_chosen(self, _i) -> None:
        self.view_state.compare_mode = self.compare_mode.currentData()
        self._draw_compare()

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
            self.view.set_title_override(None)
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
        mode = self.view_state.compare_mode
        if mode.startswith("diff") and not comp.same_bands:
            self.state.message.emit(f"{comp.label} has other bands than the result: no difference map; "
                                    f"shown side by side.")
            mode = "side"
        swipe = mode == "swipe"
        self.swipe_item.setVisible(swipe)
        self.swipe_line.setVisible(swipe)
        if not swipe:
            self.view.set_title_override(None)      # the main view's own title again
        opening = self.compare_view.isHidden() and not swipe
        self.compare_view.setVisible(not swipe)
        if opening:          # side by side opens at half the width each, not as a strip
            half = max(self.views_splitter.width(), 2) // 2
            self.views_splitter.setSizes([half, half])
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
        vs = self.view_state
        if vs.display not in ("result", "truth"):
            spec = ("rgb", tuple(vs.rgb_bands)) if vs.levels_spec is None else vs.levels_spec
        own_levels = not comp.same_bands
        preset = vs.preset

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
            levels = vs.levels if levels is None else levels
            self._compare_image, self._compare_levels = image, levels
            title = f"{comp.label}" + ("" if own_levels else f", {self._spec_text(spec)}")
            if swipe:
                self._place_swipe(reset=True)
                self.view.set_title_override(f"Swipe: {rec.name} (left) | {comp.label} (right)")
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
