"""Exports of the results panel: the plotted spectra as CSV, the spectrum plot as PNG or SVG.
A mixin of `ResultsPanel` (reads the spectrum plot the spectra mixin draws)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import dialogs
from .plotting import figure_layout

EXPORT_SIZE = (900, 560)    # the exported spectrum plot, in points (as on screen)
EXPORT_SCALE = 2            # pixels per point in a PNG


class ResultsExport:
    """What the spectrum plot shows, written to files."""

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
        # Laid out as a figure (900 x 560, the legend's text as large as the axes'), whatever the
        # size of the panel: a narrow panel scaled up had made huge axes and a tiny legend.
        from PySide6.QtCore import QRect, QRectF
        from PySide6.QtGui import QColor, QImage, QPainter
        widget = self.spectrum_plot
        scene = widget.scene()
        with figure_layout(widget, EXPORT_SIZE) as source:
            w, h = EXPORT_SIZE
            painter = QPainter()
            if str(path).lower().endswith(".svg"):
                # Qt's own SVG painter: pyqtgraph's SVGExporter fails on the shaded +/- sd bands
                from PySide6.QtSvg import QSvgGenerator
                gen = QSvgGenerator()
                gen.setFileName(str(path))
                gen.setSize(source.size().toSize())
                gen.setViewBox(QRect(0, 0, w, h))
                gen.setTitle("SpectraMorph Studio spectra")
                ok = painter.begin(gen)
                if ok:
                    scene.render(painter, QRectF(0, 0, w, h), source)
                    painter.end()
            else:
                image = QImage(w * EXPORT_SCALE, h * EXPORT_SCALE, QImage.Format_ARGB32)
                image.fill(QColor("white"))
                painter.begin(image)
                painter.setRenderHint(QPainter.Antialiasing)
                scene.render(painter, QRectF(0, 0, image.width(), image.height()), source)
                painter.end()
                ok = image.save(str(path))
        if not ok or not Path(path).is_file():
            self.state.errorRaised.emit(f"Cannot write the plot to '{path}'.")
            return
        self.state.message.emit(f"Plot saved to {path}")
