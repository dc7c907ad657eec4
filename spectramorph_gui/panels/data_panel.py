"""Data panel: the mode, the files, the synthetic degradation, and what the pair looks like.

Synthetic mode starts from a ground-truth cube (the built-in demo or a file)
and the engine makes the HR-MSI / LR-HSI pair; real-world mode opens the two
images. The previews show the *prepared* pair (`prepare_inputs`), i.e. what
training will see, normalised to [0, 1].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton,
                               QRadioButton, QSizePolicy, QVBoxLayout, QWidget)

from . import dialogs
from .fields import ConfigForm, Field
from .plotting import BandPicker, ImageView, composite, default_rgb_bands

CUBE_FILTER = ("Cubes (*.mat *.h5 *.hdf5 *.he5 *.npy *.npz *.tif *.tiff *.hdr);;"
               "MATLAB (*.mat);;HDF5 (*.h5 *.hdf5);;NumPy (*.npy *.npz);;TIFF (*.tif *.tiff);;"
               "ENVI (*.hdr);;All files (*)")

SYNTHETIC_FIELDS = [
    Field("downsample_ratio", "Ratio r", "HR / LR pixel ratio: the LR-HSI is the blurred truth "
          "area-downsampled by r.", unit="×", minimum=2, maximum=32),
    Field("snr_spatial", "LR-HSI noise", "Signal-to-noise ratio of the white noise added to the LR-HSI.",
          kind="opt_float", unit="dB", minimum=-20, maximum=200, step=1, decimals=1, null_text="none"),
    Field("snr_spectral", "HR-MSI noise", "Signal-to-noise ratio of the white noise added to the HR-MSI.",
          kind="opt_float", unit="dB", minimum=-20, maximum=200, step=1, decimals=1, null_text="none"),
    Field("seed", "Seed", "Seed of the noise and of the network's initialisation: the same seed gives "
          "the same run.", minimum=0, maximum=2 ** 31 - 1),
]
REAL_FIELDS = [
    Field("num_bands_msi_non_synthetic", "MSI bands", "Band count the HR-MSI must have (a check); "
          "'auto' takes the file's own.", kind="opt_int", minimum=1, maximum=64, null_text="auto"),
]


def _fmt_shape(shape) -> str:
    return " × ".join(str(s) for s in shape)


class DataPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self._rgb_key = None

        # --- mode ---
        self.synthetic_radio = QRadioButton("Synthetic: degrade a ground-truth cube")
        self.synthetic_radio.setToolTip("The engine makes the LR-HSI and HR-MSI from a known cube, "
                                        "so the result can be scored against the truth (config key "
                                        "<code>synthetic: true</code>).")
        self.real_radio = QRadioButton("Real-world: my HR-MSI + LR-HSI")
        self.real_radio.setToolTip("Fuse two real images of the same scene; quality is reported as "
                                   "consistency (config key <code>synthetic: false</code>).")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.synthetic_radio)
        self.mode_group.addButton(self.real_radio)

        # --- synthetic source ---
        self.synthetic_box = QGroupBox("Ground truth")
        self.truth_label = QLabel("—")
        self.truth_label.setWordWrap(True)
        self.demo_button = QPushButton("Demo scene")
        self.demo_button.setToolTip("The built-in synthetic scene (vegetation, soil, river, road, roofs; "
                                    "400–2500 nm). No file needed.")
        self.open_truth_button = QPushButton("Open cube…")
        self.open_truth_button.setToolTip("A hyperspectral cube used as ground truth "
                                          "(.mat, .h5, .npy, .tif, ENVI).")
        self.synthetic_form = ConfigForm(state, SYNTHETIC_FIELDS)
        lay = QVBoxLayout(self.synthetic_box)
        row = QHBoxLayout()
        row.addWidget(self.demo_button)
        row.addWidget(self.open_truth_button)
        row.addStretch(1)
        lay.addWidget(self.truth_label)
        lay.addLayout(row)
        lay.addWidget(self.synthetic_form)

        # --- real-world files ---
        self.real_box = QGroupBox("Image pair")
        self.open_hr_button = QPushButton("Open HR-MSI…")
        self.open_hr_button.setToolTip("The high-resolution multispectral / RGB / pan image (H × W × c).")
        self.open_lr_button = QPushButton("Open LR-HSI…")
        self.open_lr_button.setToolTip("The low-resolution hyperspectral image (h × w × C), "
                                       "with H = r·h and W = r·w.")
        self.hr_label = QLabel("HR-MSI: —")
        self.lr_label = QLabel("LR-HSI: —")
        for lab in (self.hr_label, self.lr_label):
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.real_form = ConfigForm(state, REAL_FIELDS)
        grid = QGridLayout(self.real_box)
        grid.addWidget(self.open_hr_button, 0, 0)
        grid.addWidget(self.hr_label, 0, 1)
        grid.addWidget(self.open_lr_button, 1, 0)
        grid.addWidget(self.lr_label, 1, 1)
        grid.addWidget(self.real_form, 2, 0, 1, 2)
        grid.setColumnStretch(1, 1)

        # --- what the pair is ---
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info_label.setObjectName("dataInfo")
        self.hr_view = ImageView("HR-MSI")
        self.lr_view = ImageView("LR-HSI composite")
        for v in (self.hr_view, self.lr_view):
            v.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.band_picker = BandPicker()
        # One above the other: the dock is tall and narrow, and square images use its height best.
        previews = QVBoxLayout()
        previews.addWidget(self.hr_view, 1)
        previews.addWidget(self.lr_view, 1)
        picker_row = QHBoxLayout()
        picker_row.addWidget(QLabel("LR-HSI composite bands:"))
        picker_row.addWidget(self.band_picker, 1)
        previews.addLayout(picker_row)

        layout = QVBoxLayout(self)
        layout.addWidget(self.synthetic_radio)
        layout.addWidget(self.real_radio)
        layout.addWidget(self.synthetic_box)
        layout.addWidget(self.real_box)
        layout.addWidget(self.info_label)
        layout.addLayout(previews, 1)

        # --- connections ---
        self.synthetic_radio.toggled.connect(self._mode_clicked)
        self.demo_button.clicked.connect(lambda: state.load_demo())
        self.open_truth_button.clicked.connect(lambda: self.open_file("truth"))
        self.open_hr_button.clicked.connect(lambda: self.open_file("hr_msi"))
        self.open_lr_button.clicked.connect(lambda: self.open_file("lr_hsi"))
        self.band_picker.changed.connect(lambda _b: self._draw_previews())
        state.configChanged.connect(self._on_config)
        state.inputsChanged.connect(self._on_sources)
        state.preparedChanged.connect(self._on_prepared)
        state.runStarted.connect(lambda: self._set_editable(False))
        for sig in (state.runFinished, state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self._set_editable(True))
        self._on_config(state.config)
        self._on_sources()
        self._on_prepared(state.prepared)

    # ------------------------------------------------------------------ user actions
    def open_file(self, role: str, path: str | None = None) -> None:
        """Open a cube for `role` ('truth', 'hr_msi', 'lr_hsi'); asks for the file and, when it
        holds several arrays, for the variable. Tests pass `path` directly."""
        titles = {"truth": "Open a ground-truth cube", "hr_msi": "Open the HR-MSI",
                  "lr_hsi": "Open the LR-HSI"}
        if path is None:
            path = dialogs.ask_open_file(self, titles[role], CUBE_FILTER)
            if not path:
                return
        if not Path(path).is_file():
            dialogs.show_error(self, f"File '{path}' does not exist.")
            return
        if Path(path).suffix.lower() in (".mat", ".h5", ".hdf5", ".he5", ".npz"):
            self.state.list_arrays(path, lambda arrays: self._picked(role, path, arrays))
        else:
            self.state.open_cube(role, path)

    def _picked(self, role, path, arrays) -> None:
        candidates = [a for a in arrays if len(a[1]) in (2, 3)]
        key = None
        if len(candidates) > 1:
            labels = [f"{name}  ({_fmt_shape(shape)}, {dtype})" for name, shape, dtype in candidates]
            choice = dialogs.pick_variable(self, path, labels)
            if choice is None:
                return
            key = candidates[labels.index(choice)][0]
        elif len(candidates) == 1:
            key = candidates[0][0]
        self.state.open_cube(role, path, key)

    def _mode_clicked(self, synthetic: bool) -> None:
        if synthetic != self.state.config.synthetic:
            self.state.update_config(synthetic=synthetic)

    # ------------------------------------------------------------------ reactions
    def _set_editable(self, on: bool) -> None:
        for w in (self.synthetic_radio, self.real_radio, self.synthetic_box, self.real_box):
            w.setEnabled(on)

    def _on_config(self, config) -> None:
        radio = self.synthetic_radio if config.synthetic else self.real_radio
        radio.blockSignals(True)
        radio.setChecked(True)
        radio.blockSignals(False)
        self.synthetic_box.setVisible(config.synthetic)
        self.real_box.setVisible(not config.synthetic)

    def _on_sources(self) -> None:
        s = self.state
        self.truth_label.setText(self._describe(s.truth, "Cube"))
        self.hr_label.setText(self._describe(s.hr_msi, "HR-MSI"))
        self.lr_label.setText(self._describe(s.lr_hsi, "LR-HSI"))

    @staticmethod
    def _describe(src, what) -> str:
        if src is None:
            return f"{what}: none loaded"
        lo, hi = src.value_range
        name = src.label if src.path is None else Path(src.path).name + (f" [{src.key}]" if src.key else "")
        return (f"<b>{name}</b><br>{_fmt_shape(src.data.shape)} {src.data.dtype}, "
                f"values {lo:.4g} … {hi:.4g}")

    def _on_prepared(self, prepared) -> None:
        s = self.state
        if prepared is None:
            text = s.prepare_error or ("Preparing…" if s.preparing else "No data yet.")
            self.info_label.setText(f"<span style='color:#b71c1c'>{text}</span>"
                                    if s.prepare_error else text)
            self.hr_view.set_image(None)
            self.lr_view.set_image(None)
            return
        p = prepared
        wl = p.wavelengths
        wl_text = (f"{wl[0]:.0f}–{wl[-1]:.0f} nm ({len(wl)} bands)" if wl is not None
                   else "unknown (band numbers are used)")
        lines = [f"<b>HR-MSI</b> {_fmt_shape(p.hr_msi.shape)} &nbsp; <b>LR-HSI</b> {_fmt_shape(p.lr_hsi.shape)}"
                 f" &nbsp; <b>ratio</b> {p.ratio}",
                 f"<b>Wavelengths</b> {wl_text}",
                 f"<b>SRF</b> {p.srf_note}"]
        if p.mode == "real":
            lines.append(f"<b>Training input</b> {p.training_input}")
        for w in p.warnings:
            lines.append(f"<span style='color:#e65100'>⚠ {w}</span>")
        lines.append("<span style='color:#666'>Previews: inputs normalised to [0, 1] (1st/99th percentile).</span>")
        self.info_label.setText("<br>".join(lines))
        key = (p.lr_hsi.shape[2], None if wl is None else (float(wl[0]), float(wl[-1])))
        if key != self._rgb_key:   # a new kind of cube: reset the composite to natural colours
            self._rgb_key = key
            self.band_picker.configure(p.lr_hsi.shape[2], wl, default_rgb_bands(p.lr_hsi.shape[2], wl))
        self._draw_previews()

    def _draw_previews(self) -> None:
        p = self.state.prepared
        if p is None:
            return
        bands = self.band_picker.bands()
        self.lr_view.set_image(composite(p.lr_hsi, bands))
        # The HR-MSI in the same colours: each channel takes the MSI band whose SRF
        # responds most at the HSI band chosen for it (argmax of a column: display only).
        msi_bands = [int(np.argmax(p.srf[:, b])) for b in bands] if p.hr_msi.shape[2] >= 3 else [0, 0, 0]
        self.hr_view.set_image(composite(p.hr_msi, msi_bands))
        made = " (made from the truth)" if p.mode == "synthetic" else ""
        self.hr_view.set_title(f"HR-MSI{made} {p.hr_msi.shape[0]}×{p.hr_msi.shape[1]}, "
                               f"{p.hr_msi.shape[2]} band{'s' if p.hr_msi.shape[2] > 1 else ''}"
                               + (f", bands {msi_bands[0] + 1}/{msi_bands[1] + 1}/{msi_bands[2] + 1} as RGB"
                                  if p.hr_msi.shape[2] >= 3 else ""))
        self.lr_view.set_title(f"LR-HSI {p.lr_hsi.shape[0]}×{p.lr_hsi.shape[1]}, bands "
                               f"{bands[0]}/{bands[1]}/{bands[2]}")
