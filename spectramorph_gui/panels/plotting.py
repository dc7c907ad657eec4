"""Small pyqtgraph building blocks shared by the panels (display only, no science).

Images are row-major (image[row, col], rows going down the screen) and drawn
with the levels the caller gives (band choice and percentile stretch come from
`spectramorph_engine.quality.previews`); nothing here re-stretches on its own.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import pyqtgraph as pg
from contextlib import contextmanager

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QSpinBox, QWidget

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")


def plain_axes(plot) -> None:
    """No automatic SI scaling ('x0.001'): reflectances and learning rates read best as they are."""
    item = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    for name in ("left", "bottom"):
        item.getAxis(name).enableAutoSIPrefix(False)


class LogAxis(pg.AxisItem):
    """A log axis that labels its decades and, when the range spans few of them, 2 and 5 (1.5,
    2, 3, 5, 7 within one decade) between them; pyqtgraph's own labels every 2..9 and they
    pile up into an unreadable column under each decade."""

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        ticks = [(spacing, t) for spacing, t in stdTicks if spacing >= 1.0]
        if len(ticks) < 3:
            span = maxVal - minVal
            mult = (1.5, 2, 3, 5, 7) if span < 1.0 else (2, 5) if span < 2.5 else ()
            if not ticks:          # no decade level from the standard ticks: label the decades too
                mult = (1,) + mult
            minor = [v + math.log10(m) for v in range(int(math.floor(minVal)), int(math.ceil(maxVal)))
                     for m in mult]
            ticks.append((None, [x for x in minor if minVal < x < maxVal]))
        return ticks


def _plot_item(plot):
    return plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot


# ------------------------------------------------------------------ titles and legends that fit
def set_title(plot, text: str, size: str = "9pt") -> None:
    """The plot's title over its whole width, elided ("…") where the plot is narrower than the
    text, the whole text then its tooltip; elided again whenever the plot is resized.

    pyqtgraph's title keeps its text's width as its minimum: a long title made the plot wider
    than its widget, and the title's end, the legend and the curves' long-wavelength ends were
    cut off at the widget's edge (issue 21)."""
    item = _plot_item(plot)
    item.fitted_title = (text or "", size)
    if not getattr(item, "_title_fits", False):
        item._title_fits = True
        label = item.titleLabel
        item.layout.removeItem(label)
        item.layout.addItem(label, 0, 0, 1, 3)      # over the axes' columns too
        item.geometryChanged.connect(lambda: _elide_title(item))
    _elide_title(item)


def _elide_title(item) -> None:
    text, size = item.fitted_title
    label = item.titleLabel
    if not text:
        if label.isVisible():
            item.setTitle(None)
        label.setToolTip("")
        return
    font = QFont(label.item.font())
    if size.endswith("pt"):
        font.setPointSizeF(float(size[:-2]))
    room = max(item.width() - 14, 24.0)      # the text item's own margins, and a little air
    shown = QFontMetricsF(font).elidedText(text, Qt.ElideRight, room)
    if shown != label.text or not label.isVisible():
        item.setTitle(shown, size=size)
    label.setMinimumWidth(0)                 # never wider than the plot: it is elided instead
    label.setToolTip(text if shown != text else "")


class FigureLegend(pg.LegendItem):
    """A legend in its own row under the plot, so that it never covers a curve: the entries in
    as many columns as the plot's width holds, each name in full.

    It is the plot's legend (`plot.legend`): curves plotted with a name join it, as with
    pyqtgraph's `addLegend`, whose legend floats over the data in a corner of the view."""

    GAP = 12        # between one entry and the next in a row

    def __init__(self, plot, label_size: str = "8pt"):
        super().__init__(offset=None, labelTextSize=label_size, frame=False, horSpacing=3, verSpacing=-6)
        # pyqtgraph's legend ignores transformations (it floats at a fixed size over a zoomed
        # view), which also kept it small in a scaled export while the rest grew
        self.setFlag(self.GraphicsItemFlag.ItemIgnoresTransformations, False)
        self._plot = _plot_item(plot)
        self._plot.layout.addItem(self, 4, 0, 1, 3)
        # as wide as its entries, centred under the plot (not spread over the whole width)
        self.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Maximum)
        self._plot.layout.setAlignment(self, Qt.AlignHCenter)
        self._plot.legend = self
        self._columns = 0
        self._wanted = True
        self._plot.geometryChanged.connect(self._relayout)

    def setVisible(self, visible: bool) -> None:
        """Shown when its owner wants it and it has entries; hidden, it takes no room."""
        self._wanted = bool(visible)
        self._relayout(force=True)

    def updateSize(self) -> None:
        """The plot's layout sizes the legend (pyqtgraph's own placed it at the view's corner)."""
        self.layout.invalidate()
        self.updateGeometry()

    def addItem(self, item, name) -> None:
        super().addItem(item, name)
        self._relayout(force=True)

    def removeItem(self, item) -> None:
        super().removeItem(item)
        self._relayout(force=True)

    def clear(self) -> None:
        super().clear()
        self._relayout(force=True)

    def _removeItemFromLayout(self, *args) -> None:
        # every entry leaves the layout (a hidden legend's were out already: pyqtgraph's own
        # removal warned of them); `_relayout` puts back those that stay
        for i in range(self.layout.count() - 1, -1, -1):
            self.layout.removeAt(i)
        for item in args:
            item.close()
            if item.scene() is not None:
                item.scene().removeItem(item)

    def setColumnCount(self, columnCount) -> None:
        """The columns follow the plot's width (kept for pyqtgraph's callers)."""

    def set_label_size(self, size: str) -> None:
        """Another text size for every entry (an exported figure's)."""
        self.opts["labelTextSize"] = size
        for _sample, label in self.items:
            label.setText(label.text, size=size)
        self._relayout(force=True)

    def entry_widths(self) -> list:
        return [sample.boundingRect().width() + self.layout.horizontalSpacing() + label.itemRect().width()
                for sample, label in self.items]

    def _relayout(self, force: bool = False) -> None:
        widths = self.entry_widths()
        room = self._plot.width() - 24         # the layouts' margins, and a little air
        columns = 1
        for n in range(len(widths), 1, -1):          # the most columns that fit side by side
            need = sum(max(widths[c::n]) for c in range(n)) + self.GAP * (n - 1)
            if need <= room:
                columns = n
                break
        if not force and columns == self._columns:
            return
        self._columns = columns
        for i in range(self.layout.count() - 1, -1, -1):
            self.layout.removeAt(i)
        shown = self._wanted and bool(self.items)
        super().setVisible(shown)
        for i, (sample, label) in enumerate(self.items if shown else []):
            row, col = divmod(i, columns)
            self.layout.addItem(sample, row, 2 * col, alignment=Qt.AlignVCenter)
            self.layout.addItem(label, row, 2 * col + 1)
            if col:
                self.layout.setColumnSpacing(2 * col - 1, self.GAP)
        self.columnCount, self.rowCount = columns, -(-len(self.items) // columns)
        self.updateSize()


@contextmanager
def figure_layout(plot, size=(900, 560), text_size: str = "10pt"):
    """The plot laid out as a figure for a file: `size` (logical pixels) whatever its widget's,
    its legend's text at `text_size`; yields the scene rectangle to render. The widget gets its
    own layout back afterwards (before anything is painted on screen)."""
    item = _plot_item(plot)
    old = item.geometry()
    legend = item.legend if isinstance(item.legend, FigureLegend) else None
    old_text = legend.opts["labelTextSize"] if legend is not None else None
    try:
        if legend is not None:
            legend.set_label_size(text_size)
        item.setGeometry(QRectF(old.x(), old.y(), size[0], size[1]))
        item.layout.activate()
        yield item.sceneBoundingRect()
    finally:
        if legend is not None:
            legend.set_label_size(old_text)
        item.setGeometry(old)
        item.layout.activate()


def empty_note(plot, text: str):
    """A grey sentence in the middle of an empty plot ("appears here when ..."); returns the
    item, to hide once there is data."""
    item = pg.TextItem(text, color="#888888", anchor=(0.5, 0.5))
    vb = plot.getPlotItem().getViewBox() if hasattr(plot, "getPlotItem") else plot.getViewBox()
    vb.addItem(item, ignoreBounds=True)

    def centre(*_):
        item.setPos(vb.viewRect().center())
    vb.sigRangeChanged.connect(centre)
    vb.sigResized.connect(centre)
    centre()
    return item


def curve_pen(i: int, n: int, width: float = 2.0, style=None):
    pen = pg.mkPen(pg.intColor(i, hues=max(n, 1), values=1, maxValue=220, sat=230), width=width)
    if style is not None:
        pen.setStyle(style)
    return pen


def band_name(band: int, wavelengths) -> str:
    if wavelengths is not None and 0 <= band < len(wavelengths):
        return f"band {band} ({wavelengths[band]:.0f} nm)"
    return f"band {band}"


# Images larger than this (rows or columns) are drawn from every k-th pixel: a screen shows
# no more, and colouring a 2048 x 2048 RGB float image takes the window ~0.8 s on each redraw.
DISPLAY_MAX_SIDE = 1024


def display_copy(array: np.ndarray, max_side: int = DISPLAY_MAX_SIDE):
    """(what to draw, k): every k-th row and column of `array` so that neither side exceeds
    `max_side` (k = 1: the array itself)."""
    step = max(1, int(np.ceil(max(array.shape[:2]) / max_side)))
    if step == 1:
        return array, 1
    return np.ascontiguousarray(array[::step, ::step]), step


class ImageView(pg.GraphicsLayoutWidget):
    """An image in a ViewBox with square pixels, rows going down; reports hovered / clicked pixels."""
    pixelHovered = Signal(int, int)     # row, col
    pixelClicked = Signal(int, int)
    pointClicked = Signal(float, float, bool, bool)   # row, col (image coordinates), double, shift
    left = Signal()                     # the mouse left the view

    def __init__(self, title: str = "", parent=None, levels=(0.0, 1.0), square: bool = False):
        super().__init__(parent)
        self._square = square
        if square:   # as tall as wide (plus its title): no empty bands above and below the image
            policy = QSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
            policy.setHeightForWidth(True)
            self.setSizePolicy(policy)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.plot = self.addPlot()
        self._title, self._title_override = title, None
        set_title(self.plot, title)
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.hideAxis("bottom")
        self.plot.hideAxis("left")
        self.plot.setMenuEnabled(False)
        # the "A" button in the corner (shown once zoomed) puts the whole image back
        # No setLevels before the first image: pyqtgraph defers such levels and applies them
        # *after* the first setImage, overriding the levels given there (the first composite
        # after a run came out stretched 0..1, unlike the same view redrawn).
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.levels = levels
        self.marker = pg.ScatterPlotItem(size=11, pen=pg.mkPen("m", width=2), brush=None, symbol="s")
        self.plot.addItem(self.marker, ignoreBounds=True)
        # where the mouse is, in this view and in any view linked to it (same pixel everywhere)
        self.cursor = pg.ScatterPlotItem(size=15, pen=pg.mkPen("#ffea00", width=1.5), brush=None, symbol="+")
        self.plot.addItem(self.cursor, ignoreBounds=True)
        self._shape = None
        self.scene().sigMouseMoved.connect(self._moved)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.setMinimumSize(120, 120)

    def hasHeightForWidth(self) -> bool:
        return self._square

    def heightForWidth(self, width: int) -> int:
        return width + 22 if self._square else super().heightForWidth(width)

    def sizeHint(self):
        hint = super().sizeHint()
        if self._square:
            hint.setHeight(self.heightForWidth(hint.width()))
        return hint

    def set_image(self, array: Optional[np.ndarray], levels=None, extent=None) -> None:
        """Show `array` (H x W, or H x W x 3 RGB) with fixed `levels`: (lo, hi), or one (lo, hi)
        row per colour channel; the view's default levels when None. `extent` (H, W): `array`
        is already a thinned copy of an image of that size (previews), drawn over its extent."""
        if array is None:
            self.image.clear()
            self._shape = None
            self.marker.clear()
            return
        new_shape = tuple(extent) if extent is not None else array.shape[:2]
        levels = self.levels if levels is None else levels
        shown, step = display_copy(array)
        step = max(step, int(round(new_shape[0] / shown.shape[0])))
        self.image.setImage(shown, autoLevels=False, levels=levels)
        # drawn over the full image's extent: coordinates stay the full image's pixels
        self.image.setRect(QRectF(0, 0, new_shape[1], new_shape[0]))
        self.display_step = step
        if new_shape != self._shape:
            self._shape = new_shape
            self.fit()

    @property
    def shape(self):
        """(rows, cols) of the image shown, or None."""
        return self._shape

    def fit(self) -> None:
        """Back to the whole image (after zooming with the wheel or panning); it stays fitted
        as the view is resized until the user zooms or pans again."""
        if getattr(self, "_follow_other", None) is not None:      # a linked view shows what its partner shows
            self._follow_other()
            return
        vb = self.plot.getViewBox()
        vb.setDefaultPadding(0.01)
        vb.autoRange(padding=0.01)
        vb.enableAutoRange()

    def set_cursor(self, row: Optional[int], col: Optional[int]) -> None:
        if row is None:
            self.cursor.clear()
        else:
            self.cursor.setData([col + 0.5], [row + 0.5])

    def set_pins(self, pins) -> None:
        """Markers at several pinned pixels: [(row, col, colour), ...]."""
        if not pins:
            self.marker.clear()
            return
        self.marker.setData([c + 0.5 for _r, c, _k in pins], [r + 0.5 for r, _c, _k in pins],
                            pen=[pg.mkPen(k, width=2) for _r, _c, k in pins])

    def link_to(self, other: "ImageView") -> None:
        """Show the same part of the image as `other`: its centre and its image pixels per screen
        pixel, whatever it does (fit, zoom, resize); and `other` follows this view when the user
        pans or zooms here. (pyqtgraph's own axis links match ranges by screen position, made for
        stacked plots; copying ranges both ways made two aspect-locked views of different shapes
        widen each other's range back and forth.)"""
        mine, theirs = self.plot.getViewBox(), other.plot.getViewBox()
        busy = [False]

        def follow(src, dst):
            def copy(*_):
                if busy[0] or not dst.isVisible() or not src.isVisible():
                    return
                sw, sh = src.boundingRect().width(), src.boundingRect().height()
                dw, dh = dst.boundingRect().width(), dst.boundingRect().height()
                if min(sw, sh, dw, dh) <= 1:
                    return
                busy[0] = True
                try:
                    (x0, x1), (y0, y1) = src.viewRange()
                    scale = max((x1 - x0) / sw, (y1 - y0) / sh)
                    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                    dst.setRange(xRange=(cx - scale * dw / 2, cx + scale * dw / 2),
                                 yRange=(cy - scale * dh / 2, cy + scale * dh / 2), padding=0)
                finally:
                    busy[0] = False
            return copy

        from_other = follow(theirs, mine)
        theirs.sigRangeChanged.connect(from_other)
        mine.sigResized.connect(from_other)
        self._follow_other = from_other
        mine.sigRangeChangedManually.connect(follow(mine, theirs))

    def sync_to_link(self) -> None:
        """Take the linked view's part of the image now (after being shown)."""
        follow = getattr(self, "_follow_other", None)
        if follow is not None:
            follow()

    def leaveEvent(self, event) -> None:
        super().leaveEvent(event)
        self.left.emit()

    def set_title(self, text: str) -> None:
        """What the view shows; an override (a swipe's title) stands above it until cleared."""
        self._title = text
        set_title(self.plot, self._title_override or text)

    def set_title_override(self, text: Optional[str]) -> None:
        self._title_override = text
        set_title(self.plot, text or self._title)

    def title(self) -> str:
        return self._title_override or self._title

    def set_colormap(self, name: Optional[str], levels=None) -> None:
        """A single-band image drawn through colormap `name` with a colour bar for `levels`
        (lo, hi) beside it; None: plain grey / RGB again, no bar."""
        bar = getattr(self, "_bar", None)
        if name is None:
            self.image.setLookupTable(None)
            if bar is not None:
                bar.setVisible(False)
            return
        cmap = pg.colormap.get(name)
        if bar is None:
            bar = pg.ColorBarItem(values=levels, colorMap=cmap, interactive=False, width=12, pen="k")
            bar.axis.enableAutoSIPrefix(False)      # 0.05, not "50" with a hidden "(x0.001)"
            self.addItem(bar, row=0, col=1)
            self._bar = bar
        bar.setColorMap(cmap)
        bar.setLevels(levels)
        bar.setVisible(True)
        bar.setImageItem(self.image)
        # the layout makes room for the bar now, not at the next resize
        self.ci.layout.invalidate()
        self.ci.layout.activate()

    def set_marker(self, row: Optional[int], col: Optional[int]) -> None:
        if row is None:
            self.marker.clear()
        else:
            self.marker.setData([col + 0.5], [row + 0.5])

    def _pixel_at(self, scene_pos):
        if self._shape is None or not self.plot.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.plot.getViewBox().mapSceneToView(scene_pos)      # the full image's pixels
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
        if self._shape is not None and self.plot.sceneBoundingRect().contains(event.scenePos()):
            p = self.plot.getViewBox().mapSceneToView(event.scenePos())
            self.pointClicked.emit(float(p.y()), float(p.x()), bool(event.double()),
                                   bool(event.modifiers() & Qt.ShiftModifier))
        hit = self._pixel_at(event.scenePos())
        if hit is not None:
            self.pixelClicked.emit(*hit)


class WavelengthSpin(QSpinBox):
    """A band index shown as its wavelength ("650 nm") when the cube's wavelengths are known;
    typing a wavelength picks the nearest band (typing "b12" picks band 12)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.wavelengths = None

    def textFromValue(self, value: int) -> str:
        wl = self.wavelengths
        if wl is not None and 0 <= value < len(wl):
            return f"{wl[value]:.0f} nm"
        return f"band {value}"

    def valueFromText(self, text: str) -> int:
        t = text.strip().lower().replace("nm", "").replace("band", "").strip()
        if t.startswith("b"):
            t, by_index = t[1:], True
        else:
            by_index = self.wavelengths is None
        try:
            v = float(t)
        except ValueError:
            return self.value()
        if by_index:
            return int(round(v))
        return int(np.argmin(np.abs(np.asarray(self.wavelengths) - v)))

    def validate(self, text, pos):
        from PySide6.QtGui import QValidator
        t = text.strip().lower().replace("nm", "").replace("band", "").strip().lstrip("b")
        try:
            float(t)
            return QValidator.Acceptable, text, pos
        except ValueError:
            return QValidator.Intermediate, text, pos

    def fixup(self, text):
        return self.textFromValue(self.valueFromText(text))


class BandPicker(QWidget):
    """Three band spin boxes (R, G, B) for a composite, shown and typed as wavelengths."""
    changed = Signal(tuple)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.spins = []
        for name, colour in (("R", "#c62828"), ("G", "#2e7d32"), ("B", "#1565c0")):
            label = QLabel(f"<b style='color:{colour}'>{name}</b>")
            spin = WavelengthSpin()
            spin.setRange(0, 0)
            spin.setMinimumWidth(70)
            spin.setToolTip(f"Band shown in the {name} channel: type a wavelength (nm) for the nearest "
                            f"band, or b and a band number")
            spin.valueChanged.connect(lambda _v: self.changed.emit(self.bands()))
            lay.addWidget(label)
            lay.addWidget(spin)
            self.spins.append(spin)
        lay.addStretch(1)
        self.wavelengths = None

    def bands(self) -> tuple:
        return tuple(s.value() for s in self.spins)

    def set_wavelengths_nm(self, targets) -> None:
        """Pick the bands nearest to these (R, G, B) wavelengths, e.g. (650, 550, 450)."""
        from spectramorph_engine.quality.inspection import rgb_by_wavelength
        bands = rgb_by_wavelength(self.wavelengths, targets)
        for spin, b in zip(self.spins, bands):
            spin.blockSignals(True)
            spin.setValue(b)
            spin.blockSignals(False)
        self.changed.emit(self.bands())

    def configure(self, num_bands: int, wavelengths, bands: Sequence[int]) -> None:
        """New cube: new range, and the default bands when the band count changed."""
        self.wavelengths = wavelengths
        for spin, b in zip(self.spins, bands):
            spin.blockSignals(True)
            spin.wavelengths = None if wavelengths is None or len(wavelengths) != num_bands else \
                np.asarray(wavelengths, dtype=float)
            spin.setRange(0, max(num_bands - 1, 0))
            spin.setValue(b)
            spin.blockSignals(False)
            spin.setToolTip(f"{band_name(b, wavelengths)}: type a wavelength (nm) for the nearest band, or "
                            f"b and a band number")
