"""Small pyqtgraph building blocks shared by the panels (display only, no science).

Images are row-major (image[row, col], rows going down the screen) and drawn
with fixed levels: data reaching the window is already in [0, 1], so a fixed
0..1 scale keeps one image comparable with the next instead of re-stretching
every redraw.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")

# Display targets for a natural-colour composite (nm): red, green, blue.
RGB_TARGETS_NM = (640.0, 550.0, 460.0)


def plain_axes(plot) -> None:
    """No automatic SI scaling ('x0.001'): reflectances and learning rates read best as they are."""
    item = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    for name in ("left", "bottom"):
        item.getAxis(name).enableAutoSIPrefix(False)


def curve_pen(i: int, n: int, width: float = 2.0, style=None):
    pen = pg.mkPen(pg.intColor(i, hues=max(n, 1), values=1, maxValue=220, sat=230), width=width)
    if style is not None:
        pen.setStyle(style)
    return pen


def default_rgb_bands(num_bands: int, wavelengths: Optional[Sequence[float]]) -> tuple:
    """Bands nearest 640/550/460 nm when the wavelengths are known, else spread along the cube."""
    if num_bands < 3:
        return (0, 0, 0)
    if wavelengths is not None and len(wavelengths) == num_bands:
        wl = np.asarray(wavelengths, dtype=float)
        if wl.min() <= 500 and wl.max() >= 600:
            return tuple(int(np.argmin(np.abs(wl - t))) for t in RGB_TARGETS_NM)
    return (int(num_bands * 0.55), int(num_bands * 0.3), int(num_bands * 0.08))


def composite(cube: np.ndarray, bands: Sequence[int]) -> np.ndarray:
    """Stack three bands (or one, as grey) of an H x W x C cube for display."""
    c = cube.shape[2]
    if c == 1:
        return cube[:, :, 0]
    idx = [min(max(int(b), 0), c - 1) for b in bands]
    return np.ascontiguousarray(cube[:, :, idx])


def band_name(band: int, wavelengths) -> str:
    if wavelengths is not None and 0 <= band < len(wavelengths):
        return f"band {band} ({wavelengths[band]:.0f} nm)"
    return f"band {band}"


class ImageView(pg.GraphicsLayoutWidget):
    """An image in a ViewBox with square pixels, rows going down; reports hovered / clicked pixels."""
    pixelHovered = Signal(int, int)     # row, col
    pixelClicked = Signal(int, int)

    def __init__(self, title: str = "", parent=None, levels=(0.0, 1.0)):
        super().__init__(parent)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot(title=title)
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.hideAxis("bottom")
        self.plot.hideAxis("left")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.image = pg.ImageItem()
        self.image.setLevels(levels)
        self.plot.addItem(self.image)
        self.levels = levels
        self.marker = pg.ScatterPlotItem(size=11, pen=pg.mkPen("m", width=2), brush=None, symbol="s")
        self.plot.addItem(self.marker)
        self._shape = None
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.setMinimumSize(120, 120)

    def set_image(self, array: Optional[np.ndarray], levels=None) -> None:
        if array is None:
            self.image.clear()
            self._shape = None
            self.marker.clear()
            return
        new_shape = array.shape[:2]
        self.image.setImage(array, autoLevels=False, levels=levels or self.levels)
        if new_shape != self._shape:
            self._shape = new_shape
            self.plot.autoRange(padding=0.01)

    def set_title(self, text: str) -> None:
        self.plot.setTitle(text, size="9pt")

    def set_marker(self, row: Optional[int], col: Optional[int]) -> None:
        if row is None:
            self.marker.clear()
        else:
            self.marker.setData([col + 0.5], [row + 0.5])

    def _pixel_at(self, scene_pos):
        if self._shape is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.image.mapFromScene(scene_pos)
        row, col = int(np.floor(p.y())), int(np.floor(p.x()))
        if 0 <= row < self._shape[0] and 0 <= col < self._shape[1]:
            return row, col
        return None

    def _moved(self, pos):
        hit = self._pixel_at(pos)
        if hit is not None:
            self.pixelHovered.emit(*hit)

    def _clicked(self, event):
        if event.button() != Qt.LeftButton:
            return
        hit = self._pixel_at(event.scenePos())
        if hit is not None:
            self.pixelClicked.emit(*hit)


class BandPicker(QWidget):
    """Three band spin boxes (R, G, B) for a composite."""
    changed = Signal(tuple)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.spins = []
        for name, colour in (("R", "#c62828"), ("G", "#2e7d32"), ("B", "#1565c0")):
            label = QLabel(f"<b style='color:{colour}'>{name}</b>")
            spin = QSpinBox()
            spin.setRange(0, 0)
            spin.setToolTip(f"Hyperspectral band shown in the {name} channel")
            spin.valueChanged.connect(lambda _v: self.changed.emit(self.bands()))
            lay.addWidget(label)
            lay.addWidget(spin)
            self.spins.append(spin)
        lay.addStretch(1)
        self.wavelengths = None

    def bands(self) -> tuple:
        return tuple(s.value() for s in self.spins)

    def configure(self, num_bands: int, wavelengths, bands: Sequence[int]) -> None:
        """New cube: new range, and the default bands when the band count changed."""
        self.wavelengths = wavelengths
        for spin, b in zip(self.spins, bands):
            spin.blockSignals(True)
            spin.setRange(0, max(num_bands - 1, 0))
            spin.setValue(b)
            spin.blockSignals(False)
            spin.setToolTip(band_name(b, wavelengths))
