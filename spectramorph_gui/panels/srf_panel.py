"""SRF panel: how each multispectral band sees the hyperspectral bands.

A preset (band count) with its fwhm_factor, or a file; in real-world mode
also the SRF source (file / preset / estimated from the pair) and the
training input. The response curves are drawn over the HSI bands, on their
true wavelengths when known and on the preset's evenly spread fallback axis
otherwise; the panel says which. All curves come from the engine's `srf`
module (or from the prepared inputs when the SRF is estimated from the pair).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout,
                               QWidget)

from spectramorph_engine import InputError
from spectramorph_engine.config import SRF_PRESET_BANDS, SRF_SOURCES, TRAINING_INPUTS

from . import dialogs
from .fields import ConfigForm, Field, tooltip
from .plotting import curve_pen, plain_axes

PRESET_NAMES = {1: "IKONOS panchromatic", 3: "IKONOS RGB", 4: "IKONOS B, G, R, NIR",
                8: "WorldView-2", 16: "WorldView-3 (VNIR + SWIR)"}
SRF_FILTER = "SRF tables (*.mat *.npy *.txt *.csv *.h5);;All files (*)"
WL_FILTER = "Wavelength lists (*.txt *.csv *.npy *.mat *.hdr);;All files (*)"

SRF_FIELDS = [
    Field("num_msi_bands", "Preset", "MSI band count of the synthetic HR-MSI; each preset is a set of "
          "real sensor bands modelled as Gaussians.", kind="choice", choices=SRF_PRESET_BANDS,
          choice_labels=[f"{n} band{'s' if n > 1 else ''} – {PRESET_NAMES[n]}" for n in SRF_PRESET_BANDS]),
    Field("fwhm_factor", "FWHM factor", "Each preset band's standard deviation is (upper edge − lower "
          "edge) / fwhm_factor: larger means narrower bands.", minimum=0.1, maximum=50, step=0.1,
          decimals=2),
    Field("srf_source", "SRF source", "Real-world mode: 'file' reads srf_file, 'preset' uses the preset "
          "for the HR-MSI's band count, 'estimate' fits the SRF to the image pair, 'auto' = file if "
          "given, else estimate.", kind="choice", choices=SRF_SOURCES),
    Field("training_input", "Training input", "What the network learns from at low resolution: 'srf' = "
          "the SRF applied to the LR-HSI (the paper), 'msi_lr' = the real HR-MSI brought to the LR grid "
          "(no SRF needed), 'auto' = chosen by fit.", kind="choice", choices=TRAINING_INPUTS),
]


class SrfPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self.srf = None
        self.x_axis = None

        self.form = ConfigForm(state, SRF_FIELDS)
        self.msi_label = QLabel()
        self.form.form.insertRow(0, "MSI bands", self.msi_label)

        self.file_check = QCheckBox("Use an SRF file")
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
        self.wl_button = QPushButton("Wavelength file…")
        self.wl_button.setToolTip(tooltip("wavelengths", "The HSI band centres in nm (one per band), used "
                                          "to place the preset bands; without it they come from the cube's "
                                          "metadata, or the bands are spread evenly over the preset's range."))
        self.wl_clear = QPushButton("Clear")
        self.wl_clear.setToolTip("Forget the wavelength file: use the cube's metadata (if any).")
        wl_row = QHBoxLayout()
        wl_row.addWidget(self.wl_label, 1)
        wl_row.addWidget(self.wl_button)
        wl_row.addWidget(self.wl_clear)

        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setObjectName("srfNote")
        self.plot = pg.PlotWidget(title="Spectral response functions")
        self.plot.setLabel("left", "response (row sums to 1)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        plain_axes(self.plot)
        self.legend = self.plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
        self.curves: list = []
        self.save_button = QPushButton("Save SRF…")
        self.save_button.setToolTip("Write the SRF shown (c × C, with wavelengths when known) to a file "
                                    "that srf_file accepts.")

        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addLayout(file_row)
        layout.addLayout(wl_row)
        layout.addWidget(self.note)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.save_button)

        self.file_check.toggled.connect(self._file_toggled)
        self.browse.clicked.connect(lambda: self.choose_file())
        self.wl_button.clicked.connect(lambda: self.choose_wavelengths())
        self.wl_clear.clicked.connect(lambda: state.update_config(wavelengths=None))
        self.save_button.clicked.connect(lambda: self.save_srf())
        state.configChanged.connect(lambda _c: self.redraw())
        state.preparedChanged.connect(lambda _p: self.redraw())
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
        from spectramorph_engine import srf
        bands = self.state.num_hsi_bands()
        if bands is not None:
            try:
                srf.load_srf(path, bands, wavelengths=self._wavelengths())
            except InputError as exc:
                dialogs.show_error(self, str(exc))
                return False
        return self.state.update_config(provide_srf=True, srf_file=path)

    def choose_wavelengths(self, path: str | None = None) -> bool:
        if path is None:
            path = dialogs.ask_open_file(self, "Open the HSI wavelengths", WL_FILTER)
            if not path:
                return False
        from spectramorph_engine import io
        try:
            wl = io.load_wavelengths(path)
        except InputError as exc:
            dialogs.show_error(self, str(exc))
            return False
        bands = self.state.num_hsi_bands()
        if bands is not None and len(wl) != bands:
            dialogs.show_error(self, f"'{path}' gives {len(wl)} wavelengths but the hyperspectral cube has "
                                     f"{bands} bands.")
            return False
        return self.state.update_config(wavelengths=path)

    def save_srf(self, path: str | None = None) -> None:
        if self.srf is None:
            dialogs.show_error(self, "There is no SRF to save yet: load data first.")
            return
        if path is None:
            path = dialogs.ask_save_file(self, "Save the SRF", "NumPy (*.npy);;Text (*.csv *.txt);;"
                                         "MATLAB (*.mat)", "srf.npy")
            if not path:
                return
        from spectramorph_engine import srf
        matrix, wl = self.srf.copy(), self._wavelengths()
        self.state.run_task(lambda: srf.save_srf(path, matrix, wavelengths=wl), f"Saving {path}",
                            lambda _v: self.state.message.emit(f"SRF saved to {path}"))

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
        from spectramorph_engine import srf as srf_mod
        s, config = self.state, self.state.config
        real = not config.synthetic
        self.form.set_row_visible("srf_source", real)
        self.form.set_row_visible("training_input", real)
        self.form.set_row_visible("num_msi_bands", not real)
        self.form.form.setRowVisible(self.msi_label, real)
        self.file_check.blockSignals(True)
        self.file_check.setChecked(config.provide_srf)
        self.file_check.blockSignals(False)
        self.file_edit.setText(config.srf_file or "")
        wl_cfg = config.wavelengths
        if isinstance(wl_cfg, str):
            self.wl_label.setText(f"Wavelengths: file <b>{wl_cfg}</b>")
        elif isinstance(wl_cfg, list):
            self.wl_label.setText(f"Wavelengths: {len(wl_cfg)} values in the config")
        else:
            wl = s.wavelengths_for_inputs()
            self.wl_label.setText("Wavelengths: from the cube's metadata" if wl is not None
                                  else "Wavelengths: <b>unknown</b>")
        self.wl_clear.setEnabled(wl_cfg is not None)

        bands = s.num_hsi_bands()
        p = s.prepared
        msi = p.hr_msi.shape[2] if p is not None else (
            s.hr_msi.data.shape[2] if s.hr_msi is not None and s.hr_msi.data.ndim == 3 else None)
        self.msi_label.setText("—" if msi is None else f"{msi} (the HR-MSI's)")
        wl = self._wavelengths()
        if wl is not None and bands is not None and len(wl) != bands:
            wl = None
        matrix, note = None, ""
        if bands is None:
            note = "Load data to see the SRF over its hyperspectral bands."
        else:
            try:
                source = config.srf_source
                if self._uses_file(config):
                    matrix = srf_mod.load_srf(config.srf_file, bands, wavelengths=wl)
                    note = f"Custom SRF from '{config.srf_file}'."
                elif not real or source == "preset":
                    count = config.num_msi_bands if not real else msi
                    if count is None:
                        note = "Open the HR-MSI to know its band count."
                    else:
                        matrix = srf_mod.preset_srf(count, bands, config.fwhm_factor, wavelengths=wl)
                        note = (f"{count}-band preset placed on the cube's true wavelengths." if wl is not None
                                else f"{count}-band preset; wavelengths unknown, so the {bands} bands are "
                                     f"spread evenly over the preset's range.")
                elif p is not None:
                    matrix = p.srf
                    note = p.srf_note + "."
                else:
                    note = "The SRF is estimated from the image pair once both are open."
            except InputError as exc:
                note = f"<span style='color:#b71c1c'>{exc}</span>"
        self.note.setText(note)
        self.srf = matrix
        self._draw(matrix, wl, config)

    def _draw(self, matrix, wl, config) -> None:
        from spectramorph_engine import srf as srf_mod
        for c in self.curves:
            self.plot.removeItem(c)
        self.curves = []
        self.legend.clear()
        if matrix is None:
            return
        c, bands = matrix.shape
        if wl is not None:
            x, label = np.asarray(wl, dtype=float), "wavelength (nm)"
        elif not self._uses_file(config) and c in SRF_PRESET_BANDS:
            x, label = np.asarray(srf_mod.preset_wavelengths(c, bands), dtype=float), \
                "wavelength (nm, evenly spread: assumed)"
        else:
            x, label = np.arange(bands, dtype=float), "HSI band"
        self.x_axis = x
        self.plot.setLabel("bottom", label)
        for i in range(c):
            curve = self.plot.plot(x, matrix[i], pen=curve_pen(i, c), name=f"MSI band {i + 1}")
            self.curves.append(curve)
        self.legend.setVisible(c <= 8)
