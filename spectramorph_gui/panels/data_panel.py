"""Data panel: the mode, the files, the synthetic degradation, and what the pair looks like.

Synthetic mode starts from a ground-truth cube (the built-in demo or a file)
and the engine makes the HR-MSI / LR-HSI pair; real-world mode opens the two
images. The previews show the *prepared* pair (`prepare_inputs`), i.e. what
training will see, normalised to [0, 1].
"""
from __future__ import annotations

from html import escape

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QRadioButton, QVBoxLayout, QWidget)

from spectramorph_engine.run.config import ALIGN_MODES, OUTPUT_SCALES
from spectramorph_engine.quality.previews import (composite, default_rgb_bands, display_levels,
                                                  format_wavelengths, msi_band_centres, msi_rgb_bands)

from . import dialogs
from .fields import ConfigForm, Field, tooltip
from .plotting import BandPicker, ImageView

# A satellite product is opened by its metadata file (a file dialog cannot pick the folder).
CUBE_FILTER = ("Cubes (*.mat *.h5 *.hdf5 *.he5 *.npy *.npz *.tif *.tiff *.hdr MTD_MSIL2A.xml *-METADATA.XML);;"
               "Satellite products (MTD_MSIL2A.xml *-METADATA.XML *-SPECTRAL_IMAGE.TIF);;MATLAB (*.mat);;HDF5 (*.h5 *.hdf5);;NumPy (*.npy *.npz);;TIFF (*.tif *.tiff);;"
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
    Field("nodata", "Nodata value", "A value that marks a pixel without data when every band holds it, "
          "besides NaN/Inf and the file's own nodata (GeoTIFF nodata, ENVI data ignore value). Such pixels "
          "are left out of learning and the scores, and the result is NaN there.", kind="opt_float",
          minimum=-1e9, maximum=1e9, step=1, decimals=4, null_text="file's"),
    Field("output_scale", "Result scale", "input: the result in the LR-HSI's own units (reflectance, "
          "radiance, counts; nothing clipped). normalized: the engine's scale, the LR-HSI's 1st and 99th "
          "percentiles at 0 and 1.", kind="choice", choices=OUTPUT_SCALES,
          choice_labels=["the LR-HSI's units", "normalised"]),
    Field("align", "Alignment", "Two georeferenced images (GeoTIFF, ENVI map info): auto brings them onto "
          "nested grids over their common footprint (the HR-MSI cropped, the LR-HSI resampled, reprojected "
          "when the CRSs differ) and corrects a sub-pixel misregistration; off: their grids must nest "
          "already. Pairs without map coordinates are used as they are.", kind="choice", choices=ALIGN_MODES,
          choice_labels=["automatic", "off (grids must nest)"]),
]


# What the variable picker says it is asking for
ROLE_NAMES = {"truth": "ground-truth cube", "hr_msi": "HR-MSI (high-resolution multispectral image)",
              "lr_hsi": "LR-HSI (low-resolution hyperspectral image)"}


def _fmt_shape(shape) -> str:
    return " × ".join(str(s) for s in shape)


WL_FILTER = "Wavelength lists (*.txt *.csv *.npy);;All files (*)"


class DataPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state
        self._rgb_key = None

        # --- mode ---
        self.synthetic_radio = QRadioButton("Synthetic")
        self.synthetic_radio.setToolTip("The engine makes the LR-HSI and HR-MSI from a known cube, "
                                        "so the result can be scored against the truth (config key "
                                        "<code>synthetic: true</code>).")
        self.real_radio = QRadioButton("Real-world (your pair)")
        self.real_radio.setToolTip("Fuse your own HR-MSI and LR-HSI of the same scene; quality is reported "
                                   "as consistency (config key <code>synthetic: false</code>).")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.synthetic_radio)
        self.mode_group.addButton(self.real_radio)
        mode_row = QHBoxLayout()
        mode_row.addWidget(QLabel("<b>Mode</b>"))
        mode_row.addWidget(self.synthetic_radio)
        mode_row.addWidget(self.real_radio)
        mode_row.addStretch(1)

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
        self.open_pair_button = QPushButton("Open pair…")
        self.open_pair_button.setToolTip("Choose the HR-MSI, then the LR-HSI: both are opened together, so a "
                                         "new pair of another size replaces the current one.")
        self.open_hr_button = QPushButton("HR-MSI…")
        self.open_hr_button.setToolTip("Replace the high-resolution multispectral / RGB / pan image "
                                       "(H × W × c); .mat, .h5, .npy, .tif.")
        self.open_lr_button = QPushButton("LR-HSI…")
        self.open_lr_button.setToolTip("Replace the low-resolution hyperspectral image (h × w × C), "
                                       "with H = r·h and W = r·w; .mat, .h5, .npy, .tif.")
        self.hr_label = QLabel("HR-MSI: —")
        self.lr_label = QLabel("LR-HSI: —")
        for lab in (self.hr_label, self.lr_label):
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.real_form = ConfigForm(state, REAL_FIELDS)
        grid = QGridLayout(self.real_box)
        grid.addWidget(self.open_pair_button, 0, 0, 1, 2)
        grid.addWidget(self.open_hr_button, 1, 0)
        grid.addWidget(self.hr_label, 1, 1)
        grid.addWidget(self.open_lr_button, 2, 0)
        grid.addWidget(self.lr_label, 2, 1)
        grid.addWidget(self.real_form, 3, 0, 1, 2)
        grid.setColumnStretch(1, 1)

        # --- wavelengths of the hyperspectral bands ---
        self.wl_box = QGroupBox("Band wavelengths (nm)")
        self.wl_status = QLabel()
        self.wl_status.setObjectName("wavelengthStatus")
        self.wl_status.setWordWrap(True)
        self.wl_edit = QLineEdit()
        self.wl_edit.setObjectName("wavelengthEdit")
        self.wl_edit.setPlaceholderText("one value per band, e.g. 400, 410, …  or  400..2500")
        self.wl_edit.setToolTip(tooltip("wavelengths", "Centre of each hyperspectral band in nm: type or paste "
                                        "one value per band (commas, spaces or new lines), or <code>first..last"
                                        "</code> for evenly spaced bands. They must increase and their count "
                                        "must equal the band count. Used to place the SRF presets and on the "
                                        "plots' axes."))
        self.wl_apply = QPushButton("Apply")
        self.wl_apply.setToolTip("Check the values and use them for the run and the plots.")
        self.wl_file = QPushButton("File…")
        self.wl_file.setToolTip("A one-column text / CSV file or a .npy of the band centres.")
        self.wl_clear = QPushButton("Reset")
        self.wl_clear.setToolTip("Forget the values given here: use the wavelengths in the cube's file "
                                 "(if it has any; config key wavelengths: null).")
        wl_lay = QGridLayout(self.wl_box)
        wl_lay.addWidget(self.wl_status, 0, 0, 1, 4)
        wl_lay.addWidget(self.wl_edit, 1, 0, 1, 4)
        wl_lay.addWidget(self.wl_apply, 2, 0)
        wl_lay.addWidget(self.wl_file, 2, 1)
        wl_lay.addWidget(self.wl_clear, 2, 2)
        wl_lay.setColumnStretch(3, 1)

        # --- what the pair is ---
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.info_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info_label.setObjectName("dataInfo")
        self.hr_view = ImageView("HR-MSI", square=True)
        self.lr_view = ImageView("LR-HSI composite", square=True)
        for v in (self.hr_view, self.lr_view):
            v.setMinimumSize(120, 140)
        self.band_picker = BandPicker()
        # Side by side when the dock is wide, each a square; one above the other is too tall for a laptop.
        previews = QVBoxLayout()
        images = QHBoxLayout()
        images.addWidget(self.hr_view, 1)
        images.addWidget(self.lr_view, 1)
        previews.addLayout(images, 1)
        # the label above the R/G/B pickers: on one line they ran past the dock's default width
        previews.addWidget(QLabel("LR-HSI composite bands:"))
        previews.addWidget(self.band_picker)

        layout = QVBoxLayout(self)
        layout.addLayout(mode_row)
        layout.addWidget(self.synthetic_box)
        layout.addWidget(self.real_box)
        layout.addWidget(self.wl_box)
        layout.addWidget(self.info_label)
        layout.addLayout(previews)
        layout.addStretch(1)

        # --- connections ---
        self.synthetic_radio.toggled.connect(self._mode_clicked)
        self.demo_button.clicked.connect(lambda: state.load_demo())
        self.open_truth_button.clicked.connect(lambda: self.open_file("truth"))
        self.open_pair_button.clicked.connect(lambda: self.open_pair())
        self.open_hr_button.clicked.connect(lambda: self.open_file("hr_msi"))
        self.open_lr_button.clicked.connect(lambda: self.open_file("lr_hsi"))
        self.wl_apply.clicked.connect(lambda: self.apply_wavelengths())
        self.wl_edit.returnPressed.connect(lambda: self.apply_wavelengths())
        self.wl_file.clicked.connect(lambda: self.choose_wavelength_file())
        self.wl_clear.clicked.connect(lambda: state.update_config(wavelengths=None))
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
        self._with_key(path, role, lambda key: self.state.open_cube(role, path, key))

    def open_pair(self, hr_path: str | None = None, lr_path: str | None = None) -> None:
        """Real-world mode: the HR-MSI, then the LR-HSI (each with its variable picker), opened
        together."""
        if hr_path is None:
            hr_path = dialogs.ask_open_file(self, "Open the HR-MSI (1 of 2)", CUBE_FILTER)
            if not hr_path:
                return
        if lr_path is None:
            lr_path = dialogs.ask_open_file(self, "Open the LR-HSI (2 of 2)", CUBE_FILTER)
            if not lr_path:
                return
        self._with_key(hr_path, "hr_msi", lambda hr_key: self._with_key(
            lr_path, "lr_hsi", lambda lr_key: self.state.open_pair(hr_path, lr_path, hr_key, lr_key)))

    def _with_key(self, path: str, role: str, then) -> None:
        """Call then(key): the variable the user picks for `role` when the file holds several
        arrays, else None."""
        if not Path(path).is_file():
            dialogs.show_error(self, f"File '{path}' does not exist.")
            return
        if Path(path).suffix.lower() in (".mat", ".h5", ".hdf5", ".he5", ".npz"):
            self.state.list_arrays(path, lambda arrays: self._picked(path, role, arrays, then))
        else:
            then(None)

    def _picked(self, path, role, arrays, then) -> None:
        from spectramorph_engine.io import suggest_array
        candidates = [a for a in arrays if len(a[1]) in (2, 3)]
        key = None
        if len(candidates) > 1:
            labels = [f"{name}  ({_fmt_shape(shape)}, {dtype})" for name, shape, dtype in candidates]
            best = suggest_array(candidates, role)
            suggested = next((lab for lab, c in zip(labels, candidates) if c[0] == best), None)
            choice = dialogs.pick_variable(self, path, labels, role=ROLE_NAMES[role], suggested=suggested)
            if choice is None:
                return
            key = candidates[labels.index(choice)][0]
        elif len(candidates) == 1:
            key = candidates[0][0]
        then(key)

    def apply_wavelengths(self, text: str | None = None) -> bool:
        """Use the typed / pasted wavelengths (validated by the engine; a dialog says what is wrong)."""
        if text is not None:
            self.wl_edit.setText(text)
        return self.state.set_wavelengths(self.wl_edit.text())

    def choose_wavelength_file(self, path: str | None = None) -> bool:
        if path is None:
            path = dialogs.ask_open_file(self, "Open the band wavelengths", WL_FILTER)
            if not path:
                return False
        from spectramorph_engine import InputError, io
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

    def _mode_clicked(self, synthetic: bool) -> None:
        if synthetic != self.state.config.synthetic:
            self.state.update_config(synthetic=synthetic)

    # ------------------------------------------------------------------ reactions
    def _set_editable(self, on: bool) -> None:
        for w in (self.synthetic_radio, self.real_radio, self.synthetic_box, self.real_box, self.wl_box):
            w.setEnabled(on)

    def _on_config(self, config) -> None:
        radio = self.synthetic_radio if config.synthetic else self.real_radio
        radio.blockSignals(True)
        radio.setChecked(True)
        radio.blockSignals(False)
        self.synthetic_box.setVisible(config.synthetic)
        self.real_box.setVisible(not config.synthetic)
        self._show_wavelengths()

    def _on_sources(self) -> None:
        s = self.state
        self.truth_label.setText(self._describe(s.truth, "Cube"))
        self.hr_label.setText(self._describe(s.hr_msi, "HR-MSI"))
        self.lr_label.setText(self._describe(s.lr_hsi, "LR-HSI"))
        self._show_wavelengths()

    @staticmethod
    def _describe(src, what) -> str:
        if src is None:
            return f"{what}: none loaded"
        lo, hi = src.value_range
        name = src.label if src.path is None else Path(src.path).name + (f" [{src.key}]" if src.key else "")
        return (f"<b>{escape(name)}</b><br>{_fmt_shape(src.data.shape)} {src.data.dtype}, "
                f"values {lo:.4g} … {hi:.4g}")

    def _show_wavelengths(self) -> None:
        """Where the wavelengths come from, and the values in use (editable)."""
        s = self.state
        cfg_wl = s.config.wavelengths
        p = s.prepared
        in_use = p.wavelengths if p is not None else None
        if isinstance(cfg_wl, list):
            source = f"typed here ({len(cfg_wl)} values)"
            values = cfg_wl
        elif isinstance(cfg_wl, str):
            source = f"from the file <b>{escape(Path(cfg_wl).name)}</b>"
            values = in_use
        else:
            meta = s.wavelengths_for_inputs()
            values = meta if meta is not None else in_use
            source = "from the cube's file" if values is not None else None
        if values is None:
            self.wl_status.setText("<span style='color:#e65100'><b>Unknown</b></span>: plots use band numbers "
                                   "and SRF presets are spread evenly over their range. Type them below "
                                   "if you know them.")
        else:
            wl = np.asarray(values, dtype=float)
            self.wl_status.setText(f"{source}: {wl[0]:.0f}–{wl[-1]:.0f} nm, {len(wl)} bands")
        if not self.wl_edit.hasFocus():
            self.wl_edit.setText(format_wavelengths(values))
            self.wl_edit.setCursorPosition(0)
        self.wl_clear.setEnabled(cfg_wl is not None)

    def _on_prepared(self, prepared) -> None:
        s = self.state
        self._show_wavelengths()
        if prepared is None:
            text = s.prepare_error or ("Preparing…" if s.preparing else "No data yet.")
            self.info_label.setText(f"<span style='color:#b71c1c'>{escape(text)}</span>"
                                    if s.prepare_error else text)
            self.hr_view.set_image(None)
            self.lr_view.set_image(None)
            # no pair: no shapes above the empty previews (they described the previous pair)
            self.hr_view.set_title("HR-MSI")
            self.lr_view.set_title("LR-HSI composite")
            self.hr_view.setToolTip("")
            self.lr_view.setToolTip("")
            return
        p = prepared
        wl = p.wavelengths
        lines = [f"<b>HR-MSI</b> {_fmt_shape(p.hr_msi.shape)} &nbsp; <b>LR-HSI</b> {_fmt_shape(p.lr_hsi.shape)}"
                 f" &nbsp; <b>ratio</b> {p.ratio}",
                 f"<b>SRF</b> {escape(p.srf_note)}"]
        if p.mode == "real":
            lines.append(f"<b>Training input</b> {p.training_input}")
        if getattr(p, "masks", None) is not None:
            n = p.masks.summary()
            lines.append(f"<b>No data</b> in {n['hr_pixels_without_data']} HR-MSI and {n['lr_pixels_without_data']} "
                         f"LR-HSI pixels (NaN, Inf or nodata): {n['lr_pixels_left_out']} of {n['lr_pixels']} LR "
                         f"pixels left out of learning and the scores, {n['result_pixels_nan']} result pixels "
                         f"will be NaN")
        if getattr(p, "alignment", None):        # a georeferenced pair brought onto nested grids
            lines.append(f"<b>Alignment</b> {escape(p.alignment['summary'])}")
        for w in p.warnings:
            lines.append(f"<span style='color:#e65100'>⚠ {escape(w)}</span>")
        self.info_label.setText("<br>".join(lines))
        if p.mode == "real" and s.config.num_bands_msi_non_synthetic is None:
            # 'auto': show the HR-MSI's own band count in the (disabled) box, not a stale number.
            self.real_form.bound["num_bands_msi_non_synthetic"].show_null_value(p.hr_msi.shape[2])
        key = (p.lr_hsi.shape[2], None if wl is None else (float(wl[0]), float(wl[-1])))
        if key != self._rgb_key:   # a new kind of cube: reset the composite to natural colours
            self._rgb_key = key
            self.band_picker.configure(p.lr_hsi.shape[2], wl, default_rgb_bands(p.lr_hsi.shape[2], wl))
        self._draw_previews()

    @staticmethod
    def msi_bands(p) -> list:
        """(r, g, b) bands of the HR-MSI preview (engine previews.msi_rgb_bands)."""
        if p.hr_msi.shape[2] < 3:
            return [0, 0, 0]
        located = getattr(p.srf_estimate, "located_centres", None) if p.srf_estimate is not None else None
        centres = msi_band_centres(p.srf, p.wavelengths, located=located)
        return msi_rgb_bands(centres, in_nm=p.wavelengths is not None)

    def _draw_previews(self) -> None:
        p = self.state.prepared
        if p is None:
            return
        bands = self.band_picker.bands()
        lr = _thumbnail(p.lr_hsi, bands)
        self.lr_view.set_image(lr, levels=display_levels(lr), extent=p.lr_hsi.shape[:2])
        # The HR-MSI in its own colours: three of its own bands, chosen by their centres (where
        # the SRF in use puts them), whatever bands the LR-HSI composite shows.
        msi_bands = self.msi_bands(p)
        hr = _thumbnail(p.hr_msi, msi_bands)
        self.hr_view.set_image(hr, levels=display_levels(hr), extent=p.hr_msi.shape[:2])
        c = p.hr_msi.shape[2]
        self.hr_view.set_title(f"HR-MSI {_fmt_shape(p.hr_msi.shape)}")
        self.hr_view.setToolTip(("Made from the truth with the SRF. " if p.mode == "synthetic" else "")
                                + (f"MSI bands {msi_bands[0] + 1}/{msi_bands[1] + 1}/{msi_bands[2] + 1} as R/G/B"
                                   if c >= 3 else "Grey: one band") + "; display stretched 1–99 %.")
        self.lr_view.set_title(f"LR-HSI {_fmt_shape(p.lr_hsi.shape)}")
        self.lr_view.setToolTip(f"HSI bands {bands[0]}/{bands[1]}/{bands[2]} as R/G/B; display stretched 1–99 %.")


# The previews are thumbnails a few hundred pixels wide: their composite and 1-99% levels are taken
# on every k-th pixel (a 2048^2 HR-MSI's took 0.3-0.6 s of the GUI thread at every prepared pair)
PREVIEW_MAX_SIDE = 512


def _thumbnail(cube, bands) -> np.ndarray:
    step = max(1, -(-max(cube.shape[:2]) // PREVIEW_MAX_SIDE))
    return composite(cube[::step, ::step], bands)
