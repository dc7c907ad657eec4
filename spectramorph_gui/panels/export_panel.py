"""Export panel: the result, the figures and the configuration.

Every export is an engine writer (`io.save_cube`, `figures.save_figure`,
`config.save_config`, `pipeline.write_result`) run on the task thread; those
writers go through a temporary file and a rename, so a failed export never
leaves a partial file over an earlier one.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout,
                               QWidget)

from spectramorph_engine import InputError

from spectramorph_engine.run.config import FIGURE_FORMATS, OUTPUT_TYPES

from . import dialogs
from .fields import ConfigForm, Field
from .method_text import short_name

RESULT_FILTERS = {".npy": "NumPy (*.npy)", ".mat": "MATLAB (*.mat)", ".h5": "HDF5 (*.h5)",
                  ".tif": "GeoTIFF (*.tif)"}
SUFFIX_OF_TYPE = {"numpy": ".npy", "matlab": ".mat", "h5": ".h5", "geotiff": ".tif"}
FIGURE_FILTER = "PNG (*.png);;JPEG (*.jpg)"
CONFIG_FILTER = "Configuration (*.yaml *.yml *.json);;All files (*)"

OUTPUT_FIELDS = [
    Field("output_dir", "Output folder", "Where 'Write all outputs' (and the CLI) put the result, figures "
          "and scores.", kind="str"),
    Field("output_file_type", "Result type", "File type of hr_hsi in the output folder; .mat and .h5 also "
          "hold the endmembers and the abundances; geotiff carries the HR-MSI's map coordinates (CRS and "
          "transform) and the wavelengths in its band descriptions.", kind="choice", choices=OUTPUT_TYPES),
    Field("figure_format", "Figure type", "Image type of the endmember and ALLE figures.", kind="choice",
          choices=FIGURE_FORMATS),
    Field("log_dir", "Log folder", "Where the CLI writes its log and a copy of the config.", kind="str"),
]


RESULT_NAME = "hr_hsi"     # the variable / dataset name of the result in .mat and .h5 (SPEC 4)


def save_result_file(path, hr_hsi, wavelengths=None, extra=None, geo=None) -> Path:
    """Write the result cube to `path` (.npy / .mat / .h5) with the engine's writer, the array
    named `hr_hsi` inside .mat and .h5 files whatever the file is called; one atomic rename,
    so an earlier file of that name is replaced only by a complete one."""
    from spectramorph_engine import io
    target = Path(path)
    if target.suffix.lower() == ".tif":
        return io.save_cube(target, hr_hsi, wavelengths=wavelengths, geo=geo, geotiff=True)
    if target.suffix.lower() == ".npy":
        return io.save_cube(target, hr_hsi, wavelengths=wavelengths)
    return io.save_cube(target, hr_hsi, wavelengths=wavelengths, extra=extra, name=RESULT_NAME)


def _check_folder(path) -> None:
    folder = Path(path).parent
    if not folder.is_dir():
        raise InputError(f"cannot write '{path}': the folder '{folder}' does not exist")


class ExportPanel(QWidget):
    def __init__(self, state, parent=None):
        super().__init__(parent)
        self.state = state

        self.save_result_button = QPushButton("Result cube…")
        self.save_result_button.setToolTip("The H × W × C result as .npy, .mat or .h5 (the last two also "
                                           "hold the endmembers and the abundances), or a GeoTIFF .tif "
                                           "with the HR-MSI's map coordinates.")
        self.save_endmembers_button = QPushButton("Endmember figure…")
        self.save_alle_button = QPushButton("ALLE figure…")
        for b in (self.save_endmembers_button, self.save_alle_button):
            b.setToolTip("PNG or JPEG, as the CLI writes it.")
        self.write_all_button = QPushButton("Write all outputs (as the CLI)")
        self.write_all_button.setToolTip("The shown run's result, figures (where the method makes them), "
                                         "scores, run.json and the settings that made it, exactly as the CLI "
                                         "writes them, into the output folder below.")
        result_box = QGroupBox("Result of the shown run")
        grid = QGridLayout(result_box)
        grid.addWidget(self.save_result_button, 0, 0, 1, 2)
        grid.addWidget(self.save_endmembers_button, 1, 0)
        grid.addWidget(self.save_alle_button, 1, 1)
        grid.addWidget(self.write_all_button, 2, 0, 1, 2)

        self.save_config_button = QPushButton("Save configuration…")
        self.save_config_button.setToolTip("YAML that `spectramorph run --config FILE` runs unchanged.")
        self.open_config_button = QPushButton("Open configuration…")
        self.open_config_button.setToolTip("Restore every panel (and its data files) from a YAML or JSON "
                                           "configuration.")
        config_box = QGroupBox("Configuration (YAML, runs in the CLI)")
        row = QVBoxLayout(config_box)
        row.addWidget(self.open_config_button)
        row.addWidget(self.save_config_button)

        self.form = ConfigForm(state, OUTPUT_FIELDS)
        self.browse_output = QPushButton("…")
        self.browse_output.setMaximumWidth(30)
        self.browse_output.setToolTip("Choose the output folder")
        # the folder button sits beside the folder's field
        field = self.form.widget("output_dir")
        row, _role = self.form.form.getWidgetPosition(field)
        taken = self.form.form.takeRow(row)
        folder_row = QWidget()
        fl = QHBoxLayout(folder_row)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(field, 1)
        fl.addWidget(self.browse_output)
        self.form.form.insertRow(row, taken.labelItem.widget(), folder_row)
        out_box = QGroupBox("Output folder (CLI and 'Write all')")
        ol = QHBoxLayout(out_box)
        ol.addWidget(self.form, 1)

        self.status = QLabel("")
        self.status.setObjectName("exportStatus")
        self.status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(result_box)
        layout.addWidget(config_box)
        layout.addWidget(out_box)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.save_result_button.clicked.connect(lambda: self.export_result())
        self.save_endmembers_button.clicked.connect(lambda: self.export_figure("endmembers"))
        self.save_alle_button.clicked.connect(lambda: self.export_figure("abundances"))
        self.write_all_button.clicked.connect(lambda: self.write_all())
        self.save_config_button.clicked.connect(lambda: self.save_config())
        self.open_config_button.clicked.connect(lambda: self.open_config())
        self.browse_output.clicked.connect(self._browse_output)
        state.resultChanged.connect(lambda _r: self._update_enabled())
        state.runStarted.connect(self._update_enabled)
        for sig in (state.runFinished, state.runFailed, state.runCancelled):
            sig.connect(lambda *_: self._update_enabled())
        self._update_enabled()

    def _update_enabled(self) -> None:
        r = self.state.result
        has = r is not None
        for b in (self.save_result_button, self.write_all_button):
            b.setEnabled(has)
        # GLP-HS and HySure make no endmembers or ALLE maps: nothing to draw
        unmixed = has and r.endmembers is not None
        for b in (self.save_endmembers_button, self.save_alle_button):
            b.setEnabled(unmixed)
            b.setToolTip("PNG or JPEG, as the CLI writes it." if unmixed or not has else
                         f"{short_name(r.method)} has no endmembers or abundance maps to draw.")
        self.open_config_button.setEnabled(not self.state.running)

    def _done(self, text: str):
        def callback(_value=None):
            self.status.setText(text)
            self.state.message.emit(text)
        return callback

    # ------------------------------------------------------------------ exports
    def export_result(self, path: str | None = None) -> None:
        r = self.state.result
        if r is None:
            return
        if path is None:
            suffix = SUFFIX_OF_TYPE[self.state.config.output_file_type]
            filters = ";;".join([RESULT_FILTERS[suffix]] + [f for s, f in RESULT_FILTERS.items() if s != suffix])
            path = dialogs.ask_save_file(self, "Save the result cube", filters, f"hr_hsi{suffix}")
            if not path:
                return
        suffix = Path(path).suffix.lower()
        if suffix not in RESULT_FILTERS:
            dialogs.show_error(self, f"'{path}': choose a .npy, .mat, .h5 or .tif file name.")
            return
        hr, wl = r.hr_hsi, r.prepared.wavelengths
        # the endmembers and abundances go beside the result when the method made them
        extra = None if suffix in (".npy", ".tif") else \
            {k: v for k, v in (("endmembers", r.endmembers), ("abundances", r.alle)) if v is not None} or None

        def job():
            _check_folder(path)
            return save_result_file(path, hr, wavelengths=wl, extra=extra, geo=r.prepared.geo)

        self.state.run_task(job, f"Saving {path}", self._done(f"Result saved to {path}"))

    def export_figure(self, which: str, path: str | None = None) -> None:
        r = self.state.result
        if r is None or r.endmembers is None:
            return
        if path is None:
            fmt = self.state.config.figure_format
            filters = FIGURE_FILTER if fmt == "png" else "JPEG (*.jpg);;PNG (*.png)"
            path = dialogs.ask_save_file(self, f"Save the {which} figure", filters, f"{which}.{fmt}")
            if not path:
                return
        from spectramorph_engine.quality import figures
        E, alle, wl = r.endmembers, r.alle, r.prepared.wavelengths

        def job():
            _check_folder(path)
            # matplotlib Figure objects (no pyplot) are safe to build off the GUI thread.
            fig = figures.endmember_figure(E, wl) if which == "endmembers" else figures.abundance_figure(alle)
            return figures.save_figure(fig, path)

        self.state.run_task(job, f"Saving {path}", self._done(f"Figure saved to {path}"))

    def write_all(self) -> None:
        """Every output of the shown run, made with the settings that made it, into the output
        folder below (in the chosen file type), with its run.json; its log and config_used.yaml
        into the log folder, as the CLI puts them."""
        s = self.state
        record = s.shown_run
        if record is None:
            return
        from spectramorph_engine import export_outputs
        target = str(Path(s.config.output_dir).resolve())       # the message names where, whatever the cwd
        log_dir = str(Path(s.config.log_dir).resolve())
        config = record.config.replace(output_dir=target, log_dir=log_dir,
                                       output_file_type=s.config.output_file_type,
                                       figure_format=s.config.figure_format)
        result, run_log = record.result, Path(record.folder) / "spectramorph.log"

        def job():
            files = dict(export_outputs(config, result))
            if run_log.is_file():        # the run's own log (it ran in the app's runs folder)
                from spectramorph_engine.io import atomic_write_bytes
                dest = Path(log_dir) / "spectramorph.log"
                atomic_write_bytes(dest, run_log.read_bytes())
                files["log"] = str(dest)
            return files

        def done(files):
            where = target if log_dir == target else f"{target} (log and settings in {log_dir})"
            self._done(f"Wrote {len(files)} files of {record.name} to {where}")()
        s.run_task(job, f"Writing {record.name} to {target}", done)

    # ------------------------------------------------------------------ configuration
    def save_config(self, path: str | None = None) -> None:
        if path is None:
            path = dialogs.ask_save_file(self, "Save the configuration", CONFIG_FILTER, "spectramorph.yaml")
            if not path:
                return
        from spectramorph_engine import save_config
        s = self.state
        config = s.config
        notes = []
        truth = s.truth
        if config.synthetic and config.mat_file is None and truth is not None:
            # The demo lives in memory only: write it beside the YAML so the CLI runs the file as is.
            from spectramorph_engine import io
            cube_path = Path(path).with_name(Path(path).stem + "_demo_scene.npy").resolve()
            wl = None if truth.wavelengths is None else [float(v) for v in truth.wavelengths]
            data = truth.data
            config = config.replace(mat_file=str(cube_path), mat_key=None,
                                    wavelengths=config.wavelengths if config.wavelengths is not None else wl)
            notes.append(f"the demo cube was written to {cube_path.name} beside it")

            def job():
                io.save_cube(cube_path, data)
                save_config(config, path)
        else:
            for src, what in ((s.hr_msi, "HR-MSI"), (s.lr_hsi, "LR-HSI")):
                if not config.synthetic and src is not None and src.key:
                    notes.append(f"the {what} variable '{src.key}' cannot be named in a config: the CLI "
                                 f"needs a file holding one array")

            def job():
                save_config(config, path)
        text = f"Configuration saved to {path}" + (f" ({'; '.join(notes)})" if notes else "")
        self.state.run_task(job, f"Saving {path}", self._done(text))

    def open_config(self, path: str | None = None) -> None:
        if path is None:
            path = dialogs.ask_open_file(self, "Open a configuration", CONFIG_FILTER)
            if not path:
                return
        self.state.open_config(path, on_done=lambda ok: self.status.setText(
            f"Opened {path}" if ok else f"Could not open {path}; nothing was changed."))

    def _browse_output(self) -> None:
        folder = dialogs.ask_folder(self, "Output folder")
        if folder:
            self.state.update_config(output_dir=folder)
