"""SRF panel: how each multispectral band sees the hyperspectral bands.

A preset (band count) with its fwhm_factor, a named camera, or a file; in real-world mode
also the SRF source (file / preset / estimated from the pair) and the
training input, the SRF estimated from the loaded pair with its fit quality
per band, and a line saying what the run will use. The response curves are
drawn over the HSI bands, on their true wavelengths when known and on the
preset's evenly spread fallback axis otherwise; the panel says which. All
curves come from the engine (`srf` module, the prepared inputs, or
`srf_estimation.estimate_srf` run by the state on its task thread).
"""
from __future__ import annotations

from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QSizePolicy, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from spectramorph_engine import InputError
from spectramorph_engine.run.config import SRF_PRESET_BANDS, SRF_SOURCES, TRAINING_INPUTS
from spectramorph_engine.quality.previews import msi_band_centres
from spectramorph_engine.sensors.srf import CAMERAS

from . import dialogs
from .fields import ConfigForm, Field, tooltip
from .method_text import short_name
from .plotting import FigureLegend, plain_axes, set_title

PRESET_NAMES = {1: "IKONOS panchromatic", 3: "IKONOS RGB", 4: "IKONOS B, G, R, NIR",
                8: "WorldView-2", 16: "WorldView-3 (VNIR + SWIR)"}
SRF_FILTER = "SRF tables (*.mat *.npy *.txt *.csv *.h5);;All files (*)"
SRF_SAVE_FILTER = "CSV table (*.csv);;NumPy (*.npy);;MATLAB (*.mat);;Text (*.txt)"

# Bands beyond the visible (NIR, SWIR) in turn: dark colours that no visible band takes
INFRARED_COLOURS = ("#6d4c41", "#7b1fa2", "#455a64", "#ad1457", "#33691e", "#5d4037", "#283593", "#827717")


def visible_colour(nm: float) -> tuple:
    """(r, g, b) 0-255 of light at `nm` (380-700 nm; a piecewise-linear spectrum), darkened a
    little so that yellows read on a white plot."""
    if nm < 440:
        r, g, b = (440 - nm) / 60, 0.0, 1.0
    elif nm < 490:
        r, g, b = 0.0, (nm - 440) / 50, 1.0
    elif nm < 510:
        r, g, b = 0.0, 1.0, (510 - nm) / 20
    elif nm < 580:
        r, g, b = (nm - 510) / 70, 1.0, 0.0
    elif nm < 645:
        r, g, b = 1.0, (645 - nm) / 65, 0.0
    else:
        r, g, b = 1.0, 0.0, 0.0
    r, g, b = (max(0.0, min(1.0, v)) for v in (r, g, b))
    return int(215 * r), int(185 * g), int(230 * b)


def band_colours(centres, in_nm: bool) -> list:
    """A colour per MSI band that matches the band: the colour of its centre wavelength in the
    visible, a dark colour of its own beyond; with no wavelengths, blue to red in the order of
    the bands' positions along the spectrum."""
    centres = np.asarray(centres, dtype=float)
    n = centres.size
    out: list = [None] * n
    if in_nm:
        infrared = 0
        for k in np.argsort(centres, kind="stable"):
            if centres[k] <= 700:
                out[k] = visible_colour(max(380.0, float(centres[k])))
            else:
                out[k] = INFRARED_COLOURS[infrared % len(INFRARED_COLOURS)]
                infrared += 1
        return out
    for rank, k in enumerate(np.argsort(centres, kind="stable")):
        out[k] = visible_colour(450.0 + (200.0 * rank / max(n - 1, 1)))
    return out


def band_pen(colour, width: float = 2.0, style=None):
    pen = pg.mkPen(colour, width=width)
    if style is not None:
        pen.setStyle(style)
    return pen


SRF_FIELDS = [
    Field("num_msi_bands", "Preset", "MSI band count of the synthetic HR-MSI; each preset is a set of "
          "real sensor bands modelled as Gaussians.", kind="choice", choices=SRF_PRESET_BANDS,
          choice_labels=[f"{n} band{'s' if n > 1 else ''} – {PRESET_NAMES[n]}" for n in SRF_PRESET_BANDS]),
    Field("msi_camera", "Camera", "A named camera's bands (published centres and widths, as Gaussians) "
          "placed on the cube's true wavelengths. Synthetic mode makes the HR-MSI with it (its band count "
          "replaces the preset's); real-world mode uses it as the SRF (gain and offset fitted on the pair) "
          "unless an SRF file is given or srf_source is 'estimate'. Needs the wavelengths.",
          kind="choice", choices=[None] + list(CAMERAS),
          choice_labels=["none (preset by band count)"] + [c.label for c in CAMERAS.values()]),
    Field("fwhm_factor", "FWHM factor", "Each preset band's standard deviation is (upper edge − lower "
          "edge) / fwhm_factor: larger means narrower bands.", minimum=0.1, maximum=50, step=0.1,
          decimals=2),
    Field("srf_source", "SRF source", "Real-world mode: 'file' reads srf_file, 'preset' uses the camera "
          "if one is chosen, else the preset for the HR-MSI's band count, 'estimate' fits the SRF to the "
          "image pair, 'auto' = the file if one is given, else the camera if chosen, else the estimate.", kind="choice", choices=SRF_SOURCES),
    Field("training_input", "Training input", "What the network learns from at low resolution: 'srf' = "
          "the SRF applied to the LR-HSI (the paper), 'msi_lr' = the real HR-MSI brought to the LR grid "
          "(no SRF needed), 'auto' = chosen by how well the estimated blur and SRF fit.", kind="choice",
          choices=TRAINING_INPUTS, methods=("spectramorph",),
          why_ignored="{method} trains no network: the training input is not used."),
]


class SrfPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.srf = None            # the SRF in use, as drawn (c x C)
        self.estimate = None       # the SRF estimated from the pair (real-world mode)
        self.x_axis = None

        self.form = ConfigForm(state, SRF_FIELDS)
        self.msi_label = QLabel()
        self.form.form.insertRow(0, "MSI bands", self.msi_label)

        self.file_check = QCheckBox("SRF file")
        self.file_check.setToolTip(tooltip("provide_srf", "Read the SRF from a file: c × C or C × c "
                                           "(transposed as needed), or a table of wavelength + one column "
                                           "per band; rows are normalised."))
        self.file_edit = QLineEdit()
        self.file_edit.setReadOnly(True)
        self.file_edit.setPlaceholderText("no file")
        self.file_edit.setToolTip(tooltip("srf_file", "The SRF file."))
        self.browse = QPushButton("Browse…")
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_check)
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse)

        self.wl_label = QLabel()
        self.wl_label.setWordWrap(True)
        self.wl_label.setToolTip(tooltip("wavelengths", "The HSI band centres in nm, which place the preset "
                                         "bands. Typed, pasted or read from a file in the Data panel."))

        self.use_label = QLabel()
        self.use_label.setObjectName("srfInUse")
        self.use_label.setWordWrap(True)
        self.use_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.use_label.setStyleSheet("QLabel#srfInUse { background: #eef4fb; border: 1px solid #90caf9; "
                                     "border-radius: 3px; padding: 4px; }")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("srfNote")

        self.plot = pg.PlotWidget()
        set_title(self.plot, "Spectral response functions")
        self.plot.setLabel("left", "response (row sums to 1)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMinimumHeight(180)
        plain_axes(self.plot)
        self.legend = FigureLegend(self.plot)      # under the plot, not over the curves
        self.curves: list = []            # the SRF in use, one curve per MSI band
        self.band_centres = np.zeros(0)   # where each MSI band sits (nm, or HSI band number)
        self.band_colours: list = []      # and the colour its curves are drawn in
        self.estimate_curves: list = []   # the estimate, dashed, when it is not the SRF in use

        self.fit_title = QLabel("<b>Fit of the SRF to the pair</b> (per MSI band)")
        self.fit_title.setWordWrap(True)
        self.fit_table = QTableWidget(0, 3)
        self.fit_table.setObjectName("srfFitTable")
        self.fit_table.verticalHeader().setVisible(False)
        self.fit_table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.fit_table.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.fit_table.setToolTip("How well each MSI band is explained by the LR-HSI seen through the SRF "
                                  "(HR-MSI brought to the LR grid): PSNR in dB (data range 1) and R². "
                                  "Below about 25 dB the SRF does not describe the camera.")
        fit_box = QWidget()
        fl = QVBoxLayout(fit_box)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.fit_title)
        fl.addWidget(self.fit_table)
        self.fit_box = fit_box

        self.save_button = QPushButton("Save SRF in use…")
        self.save_button.setToolTip("Write the SRF drawn with solid lines (c × C, with wavelengths when "
                                    "known) to a file that srf_file accepts.")
        self.save_estimate_button = QPushButton("Save estimated SRF…")
        self.save_estimate_button.setToolTip("Write the SRF estimated from the pair (rows normalised) as a "
                                             "custom SRF file (srf_file) for later runs or the CLI.")
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.save_estimate_button)

        self.fit_table.setVerticalScrollBarPolicy(Qt.ScrollBarAsNeeded)
        self.fit_table.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)

        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addLayout(file_row)
        layout.addWidget(self.wl_label)
        layout.addWidget(self.use_label)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(fit_box)
        layout.addLayout(buttons)

        self.file_check.toggled.connect(self._file_toggled)
        self.browse.clicked.connect(lambda: self.choose_file())
        self.save_button.clicked.connect(lambda: self.save_srf())
        self.save_estimate_button.clicked.connect(lambda: self.save_srf(which="estimate"))
        state.configChanged.connect(lambda _c: self.redraw())
        state.preparedChanged.connect(lambda _p: self.redraw())
        state.srfEstimateChanged.connect(lambda _e: self.redraw())
        state.inputsChanged.connect(self.redraw)
        state.runStarted.connect(lambda: self.setEnabled(False))
        for sig in (state.runFinished, state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self.setEnabled(True))
        self.redraw()

    # ------------------------------------------------------------------ user actions
    def choose_file(self, path: str | None = None) -> bool:
        if path is None:
            path = dialogs.ask_open_file(self, "Open an SRF", SRF_FILTER)
            if not path:
                return False
        from spectramorph_engine.sensors import srf
        bands = self.state.num_hsi_bands()
        if bands is not None:
            try:
                srf.load_srf(path, bands, wavelengths=self._wavelengths())
            except InputError as exc:
                dialogs.show_error(self, str(exc))
                return False
        changes = dict(provide_srf=True, srf_file=path)
        if self.state.config.srf_source in ("preset", "estimate"):
            changes["srf_source"] = "auto"     # choosing a file means using it ('auto' takes the file)
        return self.state.update_config(**changes)

    def save_srf(self, path: str | None = None, which: str = "in_use") -> None:
        """Write the SRF in use, or (which='estimate') the one estimated from the pair."""
        matrix = self.srf if which == "in_use" else (
            None if self.estimate is None else self.estimate.srf_normalized)
        if matrix is None:
            dialogs.show_error(self, "There is no SRF to save yet: load data first." if which == "in_use" else
                               "There is no estimated SRF yet: open an HR-MSI and an LR-HSI in real-world "
                               "mode first.")
            return
        if path is None:
            name = "srf_estimated.csv" if which == "estimate" else "srf.csv"
            path = dialogs.ask_save_file(self, "Save the SRF", SRF_SAVE_FILTER, name)
            if not path:
                return
        from spectramorph_engine.sensors import srf
        matrix, wl = np.array(matrix, copy=True), self._wavelengths()
        if wl is not None and len(wl) != matrix.shape[1]:
            wl = None
        self.state.run_task(lambda: srf.save_srf(path, matrix, wavelengths=wl), f"Saving {path}",
                            lambda _v: self.state.message.emit(
                                f"SRF saved to {path}: use it with 'SRF file' (srf_file)"))

    def _file_toggled(self, on: bool) -> None:
        if on == self.state.config.provide_srf:
            return
        if on and not self.state.config.srf_file:
            if not self.choose_file():
                self.redraw()
            return
        changes = {"provide_srf": on}
        if not on and self.state.config.srf_source == "file":
            changes["srf_source"] = "auto"
        self.state.update_config(**changes)

    # ------------------------------------------------------------------ reactions
    def _wavelengths(self):
        """The HSI wavelengths the run will use, as far as known without preparing."""
        s = self.state
        p = s.prepared
        if p is not None and p.wavelengths is not None:
            return p.wavelengths
        wl = s.config.wavelengths
        if isinstance(wl, list):
            return np.asarray(wl, dtype=float)
        return s.wavelengths_for_inputs()

    def _uses_file(self, config) -> bool:
        return bool(config.srf_file) and (config.srf_source == "file" or
                                          (config.srf_source == "auto" and config.provide_srf))

    def redraw(self) -> None:
        from spectramorph_engine.sensors import srf as srf_mod
        s, config = self.state, self.state.config
        real = not config.synthetic
        self.form.set_row_visible("srf_source", real)
        self.form.set_row_visible("training_input", real)
        ti = self.form.bound["training_input"]
        ti.set_ignored(None if config.method in ti.field.methods else
                       ti.field.why_ignored.format(method=short_name(config.method)))
        self.form.set_row_visible("num_msi_bands", not real)
        self.form.bound["num_msi_bands"].set_ignored(
            f"the camera ({config.msi_camera}) sets the band count." if config.msi_camera else None)
        self.form.bound["fwhm_factor"].set_ignored(
            "the camera's bands have their published widths." if config.msi_camera else None)
        self.form.form.setRowVisible(self.msi_label, real)
        self.file_check.blockSignals(True)
        self.file_check.setChecked(config.provide_srf)
        self.file_check.blockSignals(False)
        self.file_edit.setText(config.srf_file or "")

        bands = s.num_hsi_bands()
        p = s.prepared
        msi = p.hr_msi.shape[2] if p is not None else (
            s.hr_msi.data.shape[2] if s.hr_msi is not None and s.hr_msi.data.ndim == 3 else None)
        self.msi_label.setText("—" if msi is None else f"{msi} (the HR-MSI's)")
        wl = self._wavelengths()
        if wl is not None and bands is not None and len(wl) != bands:
            wl = None
        self.wl_label.setText(
            f"Wavelengths: {wl[0]:.0f}–{wl[-1]:.0f} nm (edit in the Data panel)" if wl is not None else
            "Wavelengths: <b style='color:#e65100'>unknown</b>: presets are spread evenly over their "
            "range. Give them in the Data panel.")

        matrix, note, kind = None, "", "none"
        estimate = s.srf_estimate if real else None
        if bands is None:
            note = "Load data to see the SRF over its hyperspectral bands."
        else:
            try:
                source = config.srf_source
                if self._uses_file(config):
                    matrix = srf_mod.load_srf(config.srf_file, bands, wavelengths=wl)
                    note, kind = f"Custom SRF from '{escape(config.srf_file)}'.", "file"
                elif config.msi_camera and (not real or source in ("auto", "preset")):
                    cam = CAMERAS[config.msi_camera]
                    matrix = srf_mod.camera_srf(cam.name, bands, wl)
                    kind = "camera"
                    note = (f"{escape(cam.label)}: bands from {escape(cam.source)}, placed on the cube's "
                            f"true wavelengths.")
                    if real and msi is not None and msi != len(cam.bands):
                        note += (f" <span style='color:#b71c1c'>The HR-MSI has {msi} bands, the camera "
                                 f"{len(cam.bands)}.</span>")
                elif not real or source == "preset":
                    count = config.num_msi_bands if not real else msi
                    if count is None:
                        note = "Open the HR-MSI to know its band count."
                    else:
                        matrix = srf_mod.preset_srf(count, bands, config.fwhm_factor, wavelengths=wl)
                        kind = "preset"
                        note = (f"{count}-band preset placed on the cube's true wavelengths." if wl is not None
                                else f"{count}-band preset; wavelengths unknown, so the {bands} bands are "
                                     f"spread evenly over the preset's range.")
                elif p is not None:
                    matrix, kind = p.srf, ("estimate" if p.srf_estimate is not None else "prepared")
                    note = ""
                else:
                    note = "The SRF is estimated from the image pair once both are open."
            except InputError as exc:
                note = f"<span style='color:#b71c1c'>{escape(str(exc))}</span>"
        if real and p is not None and s.srf_estimate is None and s.srf_estimate_error is None:
            note = (note + " " if note else "") + "Estimating the SRF from the pair…"
        elif real and s.srf_estimate_error:
            note = (note + " " if note else "") + \
                f"<span style='color:#b71c1c'>The SRF could not be estimated: {escape(s.srf_estimate_error)}</span>"
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self.srf = matrix
        self.estimate = estimate
        self._show_use(config, p)
        show_estimate = estimate if (estimate is not None and kind != "estimate") else None
        self._draw(matrix, wl, kind, show_estimate)
        self._fill_fit(p, estimate, kind)
        self.save_estimate_button.setVisible(real)
        self.save_estimate_button.setEnabled(estimate is not None)
        self.save_button.setEnabled(matrix is not None)

    def _show_use(self, config, p) -> None:
        """One box saying which SRF and which training input the run will use."""
        if p is None:
            self.use_label.setText("<b>The run will use</b>: — (no prepared pair yet)")
            return
        src = config.srf_source
        if config.synthetic:
            text = (f"<b>The run will use</b> the {escape(p.srf_note)}: the synthetic HR-MSI is made with it, and "
                    f"the network learns from the SRF applied to the LR-HSI.")
        else:
            ti = p.training_input
            ti_text = ("the real HR-MSI brought to the LR grid (<code>msi_lr</code>: no SRF needed)"
                       if ti == "msi_lr" else "the SRF applied to the LR-HSI (<code>srf</code>)")
            chosen = f"<code>srf_source: {src}</code>"
            tchosen = f"<code>training_input: {config.training_input}</code>"
            text = (f"<b>The run will use</b>: SRF = {escape(p.srf_note)} ({chosen}).<br>"
                    f"<b>Training input</b> = {ti_text} ({tchosen}).")
            fit = p.srf_fit or {}
            if fit.get("psnr") is not None and fit["psnr"] < 25.0 and ti == "srf":
                text += ("<br><span style='color:#b71c1c'><b>⚠ This SRF explains the HR-MSI poorly "
                         f"({fit['psnr']:.1f} dB)</b>: try srf_source estimate or training_input msi_lr.</span>")
        self.use_label.setText(text)

    def _x_axis(self, c, bands, wl, kind):
        from spectramorph_engine.sensors import srf as srf_mod
        if wl is not None:
            return np.asarray(wl, dtype=float), "wavelength (nm)"
        if kind == "preset" and c in SRF_PRESET_BANDS:
            return (np.asarray(srf_mod.preset_wavelengths(c, bands), dtype=float),
                    "wavelength, nm (assumed: evenly spread)")
        return np.arange(bands, dtype=float), "HSI band (wavelengths unknown)"

    def _draw(self, matrix, wl, kind, estimate) -> None:
        for c in self.curves + self.estimate_curves:
            self.plot.removeItem(c)
        self.curves, self.estimate_curves = [], []
        self.legend.clear()
        if matrix is None and estimate is None:
            self.x_axis = None
            return
        ref = matrix if matrix is not None else estimate.srf_normalized
        c, bands = ref.shape
        x, label = self._x_axis(c, bands, wl, kind)
        self.x_axis = x
        self.plot.setLabel("bottom", label)
        title = {"estimate": "SRF estimated from the pair (in use)", "preset": "Preset SRF",
                 "camera": "Camera SRF (published bands)",
                 "file": "SRF from file"}.get(kind, "Spectral response functions")
        if estimate is not None:
            title += " — dashed: estimated from the pair"
        set_title(self.plot, title)
        # each band in the colour of where it sits on the spectrum (blue band blue, ...)
        in_nm = label.startswith("wavelength")
        # an estimated SRF: the centres its estimator located (its rows' tails pull a weighted mean off)
        fitted = self.state.prepared.srf_estimate if kind == "estimate" and self.state.prepared is not None else (
            estimate if matrix is None else None)
        located = getattr(fitted, "located_centres", None)
        if located is not None and in_nm != (getattr(fitted, "wavelengths", None) is not None):
            located = None          # the estimate's centres are in other units than this axis
        self.band_centres = msi_band_centres(ref, x if in_nm else None, located=located)
        colours = band_colours(self.band_centres, in_nm)
        self.band_colours = colours

        def name(i, extra=""):
            at = f" · {self.band_centres[i]:.0f} nm" if in_nm else ""
            return f"MSI band {i + 1}{at}{extra}"
        if matrix is not None:
            for i in range(c):
                self.curves.append(self.plot.plot(x, matrix[i], pen=band_pen(colours[i]), name=name(i)))
        if estimate is not None:
            est = estimate.srf_normalized
            for i in range(est.shape[0]):
                self.estimate_curves.append(self.plot.plot(
                    x, est[i], pen=band_pen(colours[i % len(colours)], width=1.5, style=Qt.DashLine),
                    name=None if matrix is not None else name(i, " (estimated)")))
        self.legend.setVisible(c <= 8)
        self.plot.enableAutoRange()

    def _fill_fit(self, p, estimate, kind) -> None:
        """Per band: PSNR / R² of the estimate and, when another SRF is in use, of that one."""
        t = self.fit_table
        real = p is not None and p.mode == "real"
        self.fit_box.setVisible(real)
        t.setRowCount(0)
        if not real:
            return
        in_use_fit = p.srf_fit if kind != "estimate" else None
        headers = ["MSI\nband", "estimate\nPSNR dB", "estimate\nR²"]
        if in_use_fit:
            headers += [f"{kind}\nPSNR dB", f"{kind}\nR²"]
        t.setColumnCount(len(headers))
        t.setHorizontalHeaderLabels(headers)
        c = p.hr_msi.shape[2]
        for k in range(c):
            cells = [f"{k + 1}"]
            if estimate is not None:
                cells += [f"{float(estimate.psnr_db[k]):.1f}", f"{float(estimate.r2[k]):.3f}"]
            else:
                cells += ["…", "…"]
            if in_use_fit:
                cells += [f"{in_use_fit['psnr_per_band'][k]:.1f}", f"{in_use_fit['r2_per_band'][k]:.3f}"]
            row = t.rowCount()
            t.insertRow(row)
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if col in (1, 3) and text not in ("…",) and float(text) < 25.0:
                    item.setForeground(pg.mkColor("#b71c1c"))
                t.setItem(row, col, item)
        t.resizeRowsToContents()
        shown = min(t.rowCount(), 8)     # up to 8 bands without scrolling, then it scrolls
        t.setFixedHeight(t.horizontalHeader().sizeHint().height() + sum(t.rowHeight(i) for i in range(shown))
                         + 2 * t.frameWidth() + 2)
        summary = []
        if estimate is not None:
            blur = (f"blur σ {estimate.psf_sigma:g} px" if getattr(estimate, "kernel", None) is None else
                    f"free-form blur {estimate.kernel.shape[0]}×{estimate.kernel.shape[1]} (PSF tab)")
            summary.append(f"estimate {estimate.psnr:.1f} dB mean, {blur}, {estimate.pixels_used} LR pixels")
        if in_use_fit and in_use_fit.get("psnr") is not None:
            summary.append(f"{kind} {in_use_fit['psnr']:.1f} dB mean")
        self.fit_title.setText("<b>Fit to the pair</b> per MSI band" + (f": {'; '.join(summary)}" if summary else ""))
