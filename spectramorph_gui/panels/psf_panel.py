"""PSF panel: the blur of the hyperspectral camera.

Type, sigma and kernel size (or a kernel file), with the kernel drawn live,
its radial profile, its sum and its FWHM. Every number comes from the
engine's `psf` module; the kernel is small, so it is recomputed on the GUI
thread at every edit. In real-world mode without a kernel file the run uses
the blur the engine estimated on the pair (PreparedInputs.psf: a free-form
kernel, or the fitted Gaussian where the free form predicts no better): that is
the kernel shown, its profile beside the fitted Gaussian's, and type / sigma
(synthetic mode's own degradation) are greyed out.
"""
from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from spectramorph_engine import InputError
from spectramorph_engine.run.config import PSF_TYPES

from . import dialogs
from .fields import ConfigForm, Field, tooltip
from .plotting import ImageView, plain_axes

MATRIX_FILTER = "Kernels (*.mat *.npy *.txt *.csv *.h5 *.tif *.tiff);;All files (*)"

PSF_FIELDS = [
    Field("psf_type", "Type", "Shape of the point spread function (SPEC 2). Every kernel is normalised "
          "to sum 1.", kind="choice", choices=PSF_TYPES),
    Field("sigma", "Sigma", "Spread of the kernel in HR pixels (the Gaussian's standard deviation, "
          "the scale radius of the other shapes). Unused by 'delta'.", unit="px", minimum=0.05,
          maximum=100, step=0.1, decimals=2),
    Field("kernel_size", "Kernel half-size", "The kernel is (2·k+1) pixels square.", unit="",
          minimum=1, maximum=64),
]


class PsfPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.kernel = None

        self.note = QLabel()
        self.note.setObjectName("psfNote")
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.RichText)
        self.form = ConfigForm(state, PSF_FIELDS)
        self.grid_label = QLabel()
        self.form.form.addRow("Grid", self.grid_label)

        self.file_check = QCheckBox("Kernel file")
        self.file_check.setToolTip(tooltip("provide_psf", "Read the PSF from a file (2-D, square, odd size) "
                                           "instead of the type above."))
        self.file_edit = QLineEdit()
        self.file_edit.setReadOnly(True)
        self.file_edit.setPlaceholderText("no file")
        self.file_edit.setToolTip(tooltip("psf_file", "The kernel file (.mat, .npy, .txt, .csv, .h5, .tif)."))
        self.browse = QPushButton("Browse…")
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_check)
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse)

        self.kernel_view = ImageView("Kernel", levels=(0.0, 1.0))
        self.kernel_view.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.kernel_view.image.setColorMap(pg.colormap.get("viridis"))
        self.profile_plot = pg.PlotWidget(title="Radial profile (mean per radius)")
        self.profile_plot.setLabel("bottom", "radius", units="px")
        self.profile_plot.setLabel("left", "weight")
        self.profile_plot.showGrid(x=True, y=True, alpha=0.3)
        plain_axes(self.profile_plot)
        self.profile_curve = self.profile_plot.plot(pen=pg.mkPen("#1565c0", width=2), symbol="o",
                                                    symbolSize=4, symbolBrush="#1565c0")
        # real pairs: the fitted Gaussian's profile beside the estimated kernel's
        self.gauss_curve = self.profile_plot.plot(pen=pg.mkPen("#6a1b9a", width=2, style=pg.QtCore.Qt.DotLine))
        # top right: the profiles fall to zero there, so the legend hides no curve
        self.profile_legend = self.profile_plot.addLegend(offset=(-5, 5))
        self.half_line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#e65100", style=pg.QtCore.Qt.DashLine))
        self.profile_plot.addItem(self.half_line)
        # a heavy-tailed kernel and a Gaussian look alike on a linear axis: their tails differ by
        # orders of magnitude where both are near zero
        self.log_check = QCheckBox("Log scale")
        self.log_check.setToolTip("Weight on a logarithmic axis (four decades below the peak): shows the "
                                  "kernel's tail, where a heavy-tailed blur and a Gaussian differ.")
        self.log_check.toggled.connect(lambda _on: self._scale_profile())
        self.stats = QLabel()
        self.stats.setObjectName("psfStats")
        self.stats.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.form)
        layout.addLayout(file_row)
        layout.addWidget(self.stats)
        layout.addWidget(self.kernel_view, 3)
        layout.addWidget(self.log_check)
        layout.addWidget(self.profile_plot, 2)

        self.file_check.toggled.connect(self._file_toggled)
        self.browse.clicked.connect(lambda: self.choose_file())
        state.configChanged.connect(self._on_config)
        state.preparedChanged.connect(lambda _p: self._on_config(self.state.config))
        state.runStarted.connect(lambda: self.setEnabled(False))
        for sig in (state.runFinished, state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self.setEnabled(True))
        self._on_config(state.config)

    # ------------------------------------------------------------------ user actions
    def choose_file(self, path: str | None = None) -> bool:
        if path is None:
            path = dialogs.ask_open_file(self, "Open a PSF kernel", MATRIX_FILTER)
            if not path:
                return False
        from spectramorph_engine.sensors import psf
        try:
            psf.load_psf(path)   # refuse a bad kernel before the config points at it
        except InputError as exc:
            dialogs.show_error(self, str(exc))
            return False
        return self.state.update_config(provide_psf=True, psf_file=path)

    def _file_toggled(self, on: bool) -> None:
        if on == self.state.config.provide_psf:
            return
        if on and not self.state.config.psf_file:
            if not self.choose_file():
                self._on_config(self.state.config)
            return
        self.state.update_config(provide_psf=on)

    # ------------------------------------------------------------------ reactions
    def _on_config(self, config) -> None:
        self.file_check.blockSignals(True)
        self.file_check.setChecked(config.provide_psf)
        self.file_check.blockSignals(False)
        self.file_edit.setText(config.psf_file or "")
        fitted = self.fitted_psf(config)
        settable = not config.provide_psf and config.synthetic
        for key in ("psf_type", "sigma", "kernel_size"):
            self.form.widget(key).setEnabled(settable)
        self.form.widget("sigma").setEnabled(settable and config.psf_type != "delta")
        if config.synthetic:
            note = "Synthetic mode: blurs the ground truth before it is downsampled into the LR-HSI."
        elif config.provide_psf:
            note = ("Real-world mode: the run uses this kernel file to bring the HR-MSI to the LR grid and "
                    "to degrade the result back against the LR-HSI (the consistency check).")
        elif fitted is not None and fitted[2] is not None:
            est = fitted[2]
            gain = (100.0 * (1.0 - est.kept_holdout_rmse / est.gaussian_holdout_rmse)
                    if est.gaussian_holdout_rmse > 0 else 0.0)
            form = ("free form" if est.form == "free-form" else
                    "heavy-tailed Moffat profile, alpha {:.2f} px, beta {:.2f}".format(*est.moffat[:2]))
            note = (f"Real-world mode: the run uses the <b>blur kernel estimated on the pair</b> ({form}, "
                    f"{fitted[0].shape[0]} × {fitted[0].shape[1]} px; it predicts held-out pixels {gain:.0f}% "
                    f"better than the best Gaussian, sigma {fitted[1]:g} px) to bring the HR-MSI to the LR grid, "
                    f"to degrade the result back against the LR-HSI and in every method. Type and sigma below "
                    f"are for synthetic mode; give a kernel file to use another blur.")
        elif fitted is not None:
            note = (f"Real-world mode: the run uses the <b>blur fitted on the pair</b> (Gaussian, sigma "
                    f"<b>{fitted[1]:g} px</b>; the pair did not support a free-form kernel better) to bring the "
                    f"HR-MSI to the LR grid and to degrade the result back against the LR-HSI. Type and sigma "
                    f"below are for synthetic mode; give a kernel file to use another blur.")
        else:
            note = ("Real-world mode: the blur is fitted on the pair once both images are open (type and "
                    "sigma below are for synthetic mode; a kernel file overrides the fit).")
        self.note.setText(note)
        n = 2 * config.kernel_size + 1 if fitted is None else fitted[0].shape[0]
        self.grid_label.setText(f"{n} × {n} px")
        self.redraw(config)

    def fitted_psf(self, config=None):
        """(kernel, Gaussian sigma, PsfEstimate or None) of the blur the engine fitted on the real
        pair, when the run uses it (real-world mode, no kernel file, inputs prepared); else None.
        The estimate is there when the kernel is the free-form one."""
        config = config or self.state.config
        p = self.state.prepared
        if config.synthetic or config.provide_psf or p is None or p.mode != "real" or p.psf is None:
            return None
        sigma = getattr(p, "psf_fitted_sigma", None)
        est = getattr(p, "psf_estimate", None)
        est = est if est is not None and est.estimated else None
        return (np.asarray(p.psf), float(sigma), est) if sigma is not None else None

    LOG_DECADES = 4

    def _scale_profile(self) -> None:
        """The profile's weight axis: linear, or logarithmic from LOG_DECADES below the peak."""
        log_y = self.log_check.isChecked()
        self.profile_plot.setLogMode(x=False, y=log_y)
        if not log_y:
            self.profile_plot.enableAutoRange(axis="y")
            return
        _x, y = self.profile_curve.getOriginalDataset()
        peak = float(np.max(y)) if y is not None and len(y) and np.max(y) > 0 else 1.0
        # a decade of headroom: the legend (top right) stays above the curves
        self.profile_plot.setYRange(np.log10(peak) - self.LOG_DECADES, np.log10(peak) + 1.0, padding=0)

    def redraw(self, config=None) -> None:
        from spectramorph_engine.sensors import psf
        config = config or self.state.config
        fitted = self.fitted_psf(config)
        try:
            if fitted is not None:
                kernel = fitted[0]
            elif config.provide_psf and config.psf_file:
                kernel = psf.load_psf(config.psf_file)
            else:
                kernel = psf.make_psf(config.psf_type, config.sigma, config.kernel_size)
            r, values = psf.radial_profile(kernel)
            fwhm = psf.psf_fwhm(kernel)
        except InputError as exc:
            self.kernel = None
            self.kernel_view.set_image(None)
            self.profile_curve.setData([], [])
            self.stats.setText(f"<span style='color:#b71c1c'>{escape(str(exc))}</span>")
            return
        self.kernel = kernel
        peak = float(kernel.max()) or 1.0
        self.kernel_view.set_image(np.asarray(kernel, dtype=np.float32), levels=(0.0, peak))
        free = fitted is not None and fitted[2] is not None
        what = "Estimated kernel" if free else ("Fitted Gaussian" if fitted is not None else "Kernel")
        self.kernel_view.set_title(f"{what} {kernel.shape[0]}×{kernel.shape[1]} (peak {peak:.3g})")
        self.profile_curve.setData(np.asarray(r, dtype=float), np.asarray(values, dtype=float))
        self.profile_legend.clear()
        if free:
            from spectramorph_engine.sensors.srf_estimation import gaussian_kernel
            gr, gv = psf.radial_profile(gaussian_kernel(fitted[1]))
            self.gauss_curve.setData(np.asarray(gr, dtype=float), np.asarray(gv, dtype=float))
            self.profile_legend.addItem(self.profile_curve, "estimated kernel")
            self.profile_legend.addItem(self.gauss_curve, f"fitted Gaussian σ {fitted[1]:g} px")
        else:
            self.gauss_curve.setData([], [])
        self.half_line.setValue(fwhm / 2.0)
        self._scale_profile()
        text = (f"<b>Sum</b> {float(kernel.sum()):.6f} &nbsp; <b>FWHM</b> {fwhm:.2f} px "
                f"&nbsp; <span style='color:#e65100'>(dashed: FWHM/2)</span>")
        if free:
            shape = psf.kernel_shape(kernel)
            major, minor = shape["widths"]
            spread = (f"round, sd {major:.2f} px" if major < 1.1 * minor else
                      f"sd {major:.2f} × {minor:.2f} px, long axis at {shape['angle']:.0f}°")
            cy, cx = shape["centre"]
            text += (f"<br><b>Shape</b> {spread}; centre {cx:+.2f} px across, {cy:+.2f} px down "
                     f"(an off-centre blur is a shift between the two images)")
        self.stats.setText(text)
