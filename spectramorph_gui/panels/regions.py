"""Regions of interest and pinned pixels drawn on an image view (pyqtgraph ROI items).

Tools: *pixel* (a click pins a pixel; Shift+click pins another beside it), *rectangle*
(drag out a box), *polygon* (click the corners, double-click to close) and *freehand* (drag
a closed outline). Each region becomes a pyqtgraph ROI that can be moved and reshaped
afterwards; `mask(shape)` gives the pixels it covers (engine `inspection`), whose statistics
the results panel plots. Display and hit-testing only; the numbers come from the engine.

The pins and the regions' records (number, kind, corners, colour) live in the view's
`ResultsViewState`; this module keeps the ROI items that draw them, matched by number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal

from spectramorph_engine.quality.inspection import polygon_mask, rectangle_mask

from ..view_state import ResultsViewState
PIN_COLOURS = ("#d500f9", "#00b8d4", "#ff6d00", "#64dd17", "#2962ff", "#c51162")
TOOLS = ("pixel", "rectangle", "polygon", "freehand")
MAX_FREEHAND_VERTICES = 200


@dataclass
class Region:
    number: int
    kind: str                       # rectangle | polygon | freehand
    item: object                    # the pyqtgraph ROI
    colour: str
    label: Optional[pg.TextItem] = None

    @property
    def name(self) -> str:
        return f"R{self.number}"

    def vertices(self) -> np.ndarray:
        """(n, 2) (row, col) corners in image coordinates (pixel (i, j) covers [i, i+1) x [j, j+1))."""
        item = self.item
        if isinstance(item, pg.RectROI):
            x, y = item.pos()
            w, h = item.size()
            return np.array([[y, x], [y, x + w], [y + h, x + w], [y + h, x]], dtype=float)
        pts = [item.mapToParent(h["item"].pos()) for h in item.handles]
        return np.array([[p.y(), p.x()] for p in pts], dtype=float)

    def mask(self, shape) -> np.ndarray:
        if isinstance(self.item, pg.RectROI):
            x, y = self.item.pos()
            w, h = self.item.size()
            return rectangle_mask(shape, int(round(y)), int(round(x)), int(round(y + h)), int(round(x + w)))
        return polygon_mask(shape, self.vertices())


class RegionTools(QObject):
    """The regions and pinned pixels of one ImageView."""
    changed = Signal(object)        # the Region added / moved (None: removed or cleared)
    pinsChanged = Signal()

    def __init__(self, view, view_state: ResultsViewState | None = None, parent=None):
        super().__init__(parent)
        self.view = view
        self.view_state = view_state if view_state is not None else ResultsViewState()
        self.tool = "pixel"
        self.regions: list = []         # Region (the ROI items), in the view state's order
        self._draft: list = []          # polygon / freehand vertices being drawn, (row, col)
        self._draft_curve = pg.PlotCurveItem(pen=pg.mkPen("#ff1744", width=2, style=Qt.DashLine))
        view.plot.addItem(self._draft_curve, ignoreBounds=True)
        self._rect_start = None
        vb = view.plot.getViewBox()
        self._vb = vb
        self._plain_drag = vb.mouseDragEvent
        vb.mouseDragEvent = self._drag
        view.pointClicked.connect(self._clicked)

    # -- tools ---------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(tool)
        self.tool = tool
        self._cancel_draft()

    def _cancel_draft(self) -> None:
        self._draft = []
        self._draft_curve.setData([], [])

    @property
    def pins(self) -> list:
        """(row, col), the first is "the" pinned pixel (the view state's)."""
        return self.view_state.pins

    @pins.setter
    def pins(self, pins) -> None:
        self.view_state.pins = list(pins)

    # -- regions ---------------------------------------------------------------
    def add_rectangle(self, r0: float, c0: float, r1: float, c1: float) -> Region:
        ra, rb = sorted((r0, r1))
        ca, cb = sorted((c0, c1))
        record = self.view_state.add_region("rectangle", [[ra, ca], [ra, cb], [rb, cb], [rb, ca]])
        item = pg.RectROI([ca, ra], [max(cb - ca, 1), max(rb - ra, 1)], pen=pg.mkPen(record.colour, width=2),
                          snapSize=1.0, translateSnap=True, scaleSnap=True, removable=True)
        return self._add(Region(record.number, "rectangle", item, record.colour))

    def add_polygon(self, vertices_rowcol, kind: str = "polygon") -> Region:
        v = np.asarray(vertices_rowcol, dtype=float)
        if len(v) > MAX_FREEHAND_VERTICES:       # a freehand outline: every k-th point is plenty
            v = v[np.linspace(0, len(v) - 1, MAX_FREEHAND_VERTICES).astype(int)]
        record = self.view_state.add_region(kind, v)
        item = pg.PolyLineROI([[c, r] for r, c in v], closed=True, pen=pg.mkPen(record.colour, width=2),
                              removable=True)
        return self._add(Region(record.number, kind, item, record.colour))

    def _add(self, region: Region) -> Region:
        self.view.plot.addItem(region.item, ignoreBounds=True)
        region.label = pg.TextItem(region.name, color=region.colour, anchor=(0, 1))
        self.view.plot.addItem(region.label, ignoreBounds=True)
        self._place_label(region)
        self.view_state.move_region(region.number, region.vertices())     # as the ROI snapped it
        region.item.sigRegionChangeFinished.connect(lambda _i, r=region: self._moved(r))
        region.item.sigRemoveRequested.connect(lambda _i, r=region: self.remove(r))
        self.regions.append(region)
        self.changed.emit(region)
        return region

    def _place_label(self, region: Region) -> None:
        v = region.vertices()
        region.label.setPos(float(v[:, 1].min()), float(v[:, 0].min()))

    def _moved(self, region: Region) -> None:
        self._place_label(region)
        self.view_state.move_region(region.number, region.vertices())
        self.changed.emit(region)

    def remove(self, region: Region) -> None:
        if region not in self.regions:
            return
        self.regions.remove(region)
        self.view_state.remove_region(region.number)
        self.view.plot.removeItem(region.item)
        self.view.plot.removeItem(region.label)
        self.changed.emit(None)

    def clear(self) -> None:
        for region in list(self.regions):
            self.view.plot.removeItem(region.item)
            self.view.plot.removeItem(region.label)
        self.regions.clear()
        self.view_state.clear_regions()
        self._cancel_draft()
        self.changed.emit(None)

    # -- pins ------------------------------------------------------------------
    def pin(self, row: int, col: int, add: bool = False) -> None:
        if add:
            self.view_state.add_pin(row, col)
        else:
            self.view_state.pin(row, col)
        self.pinsChanged.emit()

    def pin_colour(self, i: int) -> str:
        return PIN_COLOURS[i % len(PIN_COLOURS)]

    # -- mouse -------------------------------------------------------------------
    def _clicked(self, row: float, col: float, double: bool, shift: bool) -> None:
        if self.tool == "pixel":
            shape = self.view.shape
            if shape is not None and 0 <= row < shape[0] and 0 <= col < shape[1]:
                self.pin(int(row), int(col), add=shift)
        elif self.tool == "polygon":
            if double:
                if len(self._draft) >= 3:
                    vertices = self._draft
                    self._cancel_draft()
                    self.add_polygon(vertices, "polygon")
                return
            self._draft.append((row, col))
            self._draw_draft(close=False)

    def _draw_draft(self, close: bool) -> None:
        pts = self._draft + (self._draft[:1] if close else [])
        self._draft_curve.setData([c for _r, c in pts], [r for r, _c in pts])

    def _drag(self, ev, axis=None):
        if self.tool not in ("rectangle", "freehand") or ev.button() != Qt.LeftButton:
            return self._plain_drag(ev, axis)
        ev.accept()
        p = self._vb.mapSceneToView(ev.scenePos())
        here = (p.y(), p.x())
        if self.tool == "freehand":
            if ev.isStart():
                self._draft = [self._to_point(self._vb.mapSceneToView(ev.buttonDownScenePos()))]
            self._draft.append(here)
            self._draw_draft(close=False)
            if ev.isFinish():
                vertices = self._draft
                self._cancel_draft()
                if len(vertices) >= 3:
                    self.add_polygon(vertices, "freehand")
            return
        if ev.isStart():
            self._rect_start = self._to_point(self._vb.mapSceneToView(ev.buttonDownScenePos()))
        r0, c0 = self._rect_start
        self._draft = [(r0, c0), (r0, here[1]), here, (here[0], c0)]
        self._draw_draft(close=True)
        if ev.isFinish():
            self._cancel_draft()
            ra, rb = sorted((round(r0), round(here[0])))
            ca, cb = sorted((round(c0), round(here[1])))
            if rb > ra and cb > ca:
                self.add_rectangle(ra, ca, rb, cb)

    @staticmethod
    def _to_point(p: QPointF) -> tuple:
        return (p.y(), p.x())
