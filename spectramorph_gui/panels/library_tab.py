"""Spectral library tab: open a library, match the pinned pixel or a region against it, and
overlay chosen library spectra on the spectrum plot.

The library is read, resampled onto the result's wavelengths and matched by the engine
(`spectramorph_engine.quality.library`); this tab lists what it found.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from . import dialogs

LIBRARY_FILTER = "Spectral libraries (*.mat *.sli *.hdr *.csv *.txt);;All files (*)"
TOP_MATCHES = 15


class LibraryTab(QWidget):
    overlaysChanged = Signal()

    def __init__(self, state, targets: Callable[[], list], parent=None):
        super().__init__(parent)
        self.state = state
        self._targets = targets            # () -> [(label, spectrum on the result's wavelengths)]
        self.library = None                # engine SpectralLibrary as read
        self.resampled = None              # ... on the result's wavelengths
        self.wavelengths = None
        self.matches: list = []            # (name, index, angle) for the chosen target

        self.open_button = QPushButton("Open library…")
        self.open_button.setToolTip("A spectral library: the USGS .mat, an ENVI spectral library (.sli + .hdr) "
                                    "or a CSV with a wavelength column (nm or µm) and one column per spectrum.")
        self.info = QLabel("No library open. Open one to find the library spectra closest (by spectral "
                           "angle) to the pinned pixel or a region.")
        self.info.setObjectName("libraryInfo")
        self.info.setWordWrap(True)
        self.target_combo = QComboBox()
        self.target_combo.setToolTip("The spectrum matched: a pinned pixel, or a region's mean")
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("libraryMatches")
        self.table.setHorizontalHeaderLabels(["library spectrum (tick to plot)", "angle (°)"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.verticalHeader().hide()
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(QLabel("match:"))
        row.addWidget(self.target_combo, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row)
        lay.addWidget(self.info)
        lay.addWidget(self.table, 1)

        self.open_button.clicked.connect(lambda: self.open_library())
        self.target_combo.currentIndexChanged.connect(lambda _i: self.update_matches())
        self.table.itemChanged.connect(lambda _item: self.overlaysChanged.emit())

    # ------------------------------------------------------------------ loading
    def open_library(self, path: str | None = None, on_done=None) -> None:
        if path is None:
            path = dialogs.ask_open_file(self, "Open a spectral library", LIBRARY_FILTER)
            if not path:
                return
        from spectramorph_engine.quality.library import load_library

        def done(lib):
            self.library = lib
            self._resample()
            if on_done is not None:
                on_done(lib)
        self.state.run_task(lambda: load_library(path), f"Reading {path}", done)

    def set_wavelengths(self, wavelengths) -> None:
        self.wavelengths = None if wavelengths is None else np.asarray(wavelengths, dtype=float)
        self._resample()

    def _resample(self) -> None:
        lib = self.library
        if lib is None:
            return
        name = Path(lib.source).name
        if self.wavelengths is None:
            self.resampled = None
            self.info.setText(f"{name}: {len(lib)} spectra, {lib.wavelengths[0]:.0f}–{lib.wavelengths[-1]:.0f} nm. "
                              "The result has no wavelengths: type them in the Data panel to match.")
            self._fill([])
            return
        from spectramorph_engine.quality.library import resample_library
        self.resampled = resample_library(lib, self.wavelengths)
        covered = int(np.isfinite(self.resampled.spectra).any(axis=0).sum())
        self.info.setText(f"<b>{name}</b>: {len(lib)} spectra, {lib.wavelengths[0]:.0f}–{lib.wavelengths[-1]:.0f} nm, "
                          f"resampled onto the result's {len(self.wavelengths)} bands ({covered} covered). Ranked "
                          f"by spectral angle (brightness does not count); ticked ones are drawn scaled to the "
                          f"matched spectrum.")
        self.update_matches()

    # ------------------------------------------------------------------ matching
    def targets_changed(self) -> None:
        """The pinned pixels or regions changed: refresh the list of what can be matched."""
        labels = [label for label, _ in self._targets()]
        current = self.target_combo.currentText()
        self.target_combo.blockSignals(True)
        self.target_combo.clear()
        self.target_combo.addItems(labels)
        if current in labels:
            self.target_combo.setCurrentIndex(labels.index(current))
        self.target_combo.blockSignals(False)
        self.update_matches()

    def target(self):
        targets = dict(self._targets())
        return targets.get(self.target_combo.currentText())

    def update_matches(self) -> None:
        spectrum = self.target()
        if self.resampled is None or spectrum is None:
            self._fill([])
            return
        from spectramorph_engine.quality.library import match_spectrum
        self._fill(match_spectrum(spectrum, self.resampled, top=TOP_MATCHES))

    def _fill(self, matches: list) -> None:
        ticked = {name for name, _ in self.overlays(scaled=False)}
        self.matches = matches
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(matches))
        for i, (name, _index, angle) in enumerate(matches):
            item = QTableWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if name in ticked else Qt.Unchecked)
            t.setItem(i, 0, item)
            a = QTableWidgetItem(f"{angle:.2f}")
            a.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
            t.setItem(i, 1, a)
        t.blockSignals(False)
        self.overlaysChanged.emit()

    def set_overlay(self, row: int, on: bool = True) -> None:
        self.table.item(row, 0).setCheckState(Qt.Checked if on else Qt.Unchecked)

    def overlays(self, scaled: bool = True) -> list:
        """(name, spectrum on the result's wavelengths) of the ticked matches; scaled by the gain
        that brings each closest (least squares) to the matched spectrum."""
        out = []
        if self.resampled is None:
            return out
        target = self.target() if scaled else None
        for i, (name, index, _angle) in enumerate(self.matches):
            item = self.table.item(i, 0)
            if item is None or item.checkState() != Qt.Checked:
                continue
            spectrum = np.array(self.resampled.spectra[index], dtype=float)
            if target is not None:
                ok = np.isfinite(spectrum) & np.isfinite(target)
                denom = float(spectrum[ok] @ spectrum[ok]) if ok.any() else 0.0
                if denom > 0:
                    spectrum = spectrum * float(spectrum[ok] @ np.asarray(target)[ok]) / denom
            out.append((name, spectrum))
        return out
