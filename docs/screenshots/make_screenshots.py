"""Grab screenshots of the main states of SpectraMorph Studio, offscreen.

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/screenshots/make_screenshots.py [--epochs N]

Writes into this folder:
  01_start.png       the window as a new user first sees it (demo scene loaded)
  02_training.png    mid-run: progress bar, live loss / learning-rate curves
  03_results.png     after a short run: result image, pixel spectra, endmembers, ALLE, metrics
  04_real_srf.png    real-world mode on the demo pair: the SRF estimated from the pair
  05_real_results.png real-world results: consistency figures
  06_psf_export.png  the PSF design panel and the Export panel
  07_real_preset_warning.png  real-world mode forced onto a preset SRF that does not fit: the warnings
  08_glp_results.png the same demo fused by GLP-HS: its scores, and a note where endmembers would be
  09_methods.png     the Training panel with each method chosen (SpectraMorph, GLP-HS, HySure):
                     what each uses and ignores, the settings it ignores greyed out
  10_camera_srf.png  the SRF panel with a named camera (Sentinel-2, 10 m + 20 m bands) on the demo cube
  11_compare.png     two kept runs side by side in linked views (SpectraMorph | GLP-HS), two regions
                     with their mean +/- sd spectra, the Runs list
  12_swipe_library.png  the same as a swipe, and a region's best matches in a spectral library
  13_difference_band_scores.png  the per-pixel spectral angle between the two runs, one band with its
                     levels histogram, and the PSNR of each band against the truth
The settings of the real user are not touched (a throw-away settings folder). Offscreen, Qt's
screen is made 1920 x 1200 (its default 800 x 800 would clamp the window), and torch gets one
thread (a shared machine runs the tiny scenes fastest that way; the timings shown are not the point).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
os.environ["SPECTRAMORPH_SETTINGS_DIR"] = tempfile.mkdtemp(prefix="sm-shots-")
if os.environ.get("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    _screen = Path(tempfile.mkdtemp(prefix="sm-shots-screen-")) / "screen.json"
    _screen.write_text(json.dumps({"screens": [{"name": "s0", "x": 0, "y": 0, "width": 1920, "height": 1200,
                                                "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_screen}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300, help="epochs of the short runs")
    parser.add_argument("--out", default=str(HERE), help="folder for the png files")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(tempfile.mkdtemp(prefix="sm-shots-work-"))

    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication(sys.argv)
    from spectramorph_engine.core import device
    device.available_cores = lambda: 1
    from spectramorph_gui.panels.main_window import MainWindow

    def pump(seconds=0.0, until=None, timeout=120.0):
        t0 = time.monotonic()
        while True:
            app.processEvents()
            if until is not None and until():
                break
            if until is None and time.monotonic() - t0 >= seconds:
                break
            if time.monotonic() - t0 > timeout:
                raise TimeoutError("the window did not reach the expected state")
            time.sleep(0.02)
        app.processEvents()

    def grab(window, name):
        pump(0.3)
        path = out / name
        window.grab().save(str(path))
        print("wrote", path)

    def side_by_side(widgets_and_states, name, gap=12):
        """Grab one widget in several states (a callable sets each up) into one image."""
        from PySide6.QtGui import QColor, QImage, QPainter
        shots = []
        for widget, set_up in widgets_and_states:
            set_up()
            pump(0.3)
            shots.append(widget.grab())
        width = sum(p.width() for p in shots) + gap * (len(shots) - 1)
        image = QImage(width, max(p.height() for p in shots), QImage.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        x = 0
        for p in shots:
            painter.drawPixmap(x, 0, p)
            x += p.width() + gap
        painter.end()
        path = out / name
        image.save(str(path))
        print("wrote", path)

    def choose_method(window, name):
        combo = window.training_panel.form.widget("method")
        combo.setCurrentIndex(combo.findData(name))

    w = MainWindow()
    w.show()
    s = w.state
    pump(until=lambda: s.prepared is not None and not s.preparing)
    grab(w, "01_start.png")

    # --- training, mid-run
    w.training_panel.form.widget("epochs").setValue(200_000)
    w.training_panel.run_button.click()
    pump(until=lambda: len(s.history.loss) > 400)
    pump(1.0)
    grab(w, "02_training.png")
    s.stop_run()
    pump(until=lambda: not s.running)

    # --- results after a short run
    w.training_panel.form.widget("epochs").setValue(args.epochs)
    w.training_panel.run_button.click()
    pump(until=lambda: s.result is not None and not s.running, timeout=600)
    rp = w.results_panel
    h, wd = s.result.hr_hsi.shape[:2]
    rp.select_pixel(h // 3, wd // 3)
    grab(w, "03_results.png")

    # --- PSF panel, SRF panel and the Export panel
    w.psf_dock.raise_()
    w.export_dock.raise_()
    grab(w, "06_psf_export.png")
    w.curves_dock.raise_()
    w.data_dock.raise_()

    # --- the classical methods: GLP-HS on the same demo, and the Training panel per method
    choose_method(w, "glp")
    w.training_panel.run_button.click()
    pump(until=lambda: s.result is not None and not s.running and s.result.method == "glp", timeout=600)
    rp.select_pixel(h // 3, wd // 3)
    grab(w, "08_glp_results.png")
    tp = w.training_panel
    side_by_side([(tp, lambda m=m: choose_method(w, m)) for m in ("spectramorph", "glp", "hysure")],
                 "09_methods.png")
    choose_method(w, "spectramorph")

    # --- inspecting: the SpectraMorph run beside GLP-HS, regions, a library match, levels, bands
    import csv
    import numpy as np
    from spectramorph_engine.run.demo import MATERIALS, material_spectra
    first, glp = s.runs[0].number, s.runs[-1].number       # SpectraMorph, then GLP-HS
    w.data_dock.hide()                 # room for two images side by side (as a user would)
    w.psf_dock.hide()
    w.srf_dock.hide()
    s.show_run(first)
    s.set_comparison(("run", glp))
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("side"))
    rp.regions.add_rectangle(int(h * 0.12), int(wd * 0.58), int(h * 0.24), int(wd * 0.74))     # a roof
    rp.regions.add_polygon([(h * 0.55, wd * 0.05), (h * 0.62, wd * 0.3), (h * 0.85, wd * 0.2),
                            (h * 0.8, wd * 0.05)])                                           # the field
    grid = np.arange(400.0, 2501.0, 5.0)
    spectra = material_spectra(grid)
    lib_path = Path.cwd() / "demo_materials.csv"
    with open(lib_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["wavelength_nm"] + list(MATERIALS))
        for k, lam in enumerate(grid):
            writer.writerow([lam] + [spectra[m][k] for m in MATERIALS])
    rp.library_tab.open_library(str(lib_path))
    pump(until=lambda: rp.library_tab.resampled is not None, timeout=60)
    w.runs_dock.raise_()
    rp.select_pixel(int(h * 0.3), int(wd * 0.25))
    grab(w, "11_compare.png")
    rp.spectra_tabs.setCurrentIndex(2)
    tab = rp.library_tab
    tab.target_combo.setCurrentIndex(max(tab.target_combo.findText("R1 mean"), 0))
    if tab.table.rowCount():
        tab.set_overlay(0)
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("swipe"))
    rp.swipe_to(wd * 0.55)
    grab(w, "12_swipe_library.png")
    rp.spectra_tabs.setCurrentIndex(1)
    rp.compare_mode.setCurrentIndex(rp.compare_mode.findData("diff_sam"))
    rp.mode_combo.setCurrentIndex(rp.mode_combo.findData("band"))
    rp.band_slider.setValue(int(np.argmin(np.abs(s.result.prepared.wavelengths - 860))))
    grab(w, "13_difference_band_scores.png")
    rp.mode_combo.setCurrentIndex(rp.mode_combo.findData("rgb"))
    rp.spectra_tabs.setCurrentIndex(0)
    rp._clear_regions()
    s.set_comparison(None)
    w.reset_layout()
    w.curves_dock.raise_()

    # --- a named camera's SRF on the demo cube's true wavelengths
    cam = w.srf_panel.form.widget("msi_camera")
    cam.setCurrentIndex(cam.findData("sentinel2_10m_20m"))
    pump(until=lambda: s.prepared is not None and not s.preparing and s.prepared.hr_msi.shape[2] == 10,
         timeout=120)
    w.srf_dock.raise_()
    grab(w, "10_camera_srf.png")
    cam.setCurrentIndex(cam.findData(None))
    pump(until=lambda: s.prepared is not None and not s.preparing and s.prepared.hr_msi.shape[2] == 4,
         timeout=120)
    w.data_dock.raise_()

    # --- real-world mode on the demo pair (saved to files, opened as a user would)
    import numpy as np
    prep = s.prepared
    work = Path.cwd()
    np.save(work / "hr_msi.npy", prep.hr_msi)
    np.save(work / "lr_hsi.npy", prep.lr_hsi)
    w.data_panel.real_radio.setChecked(True)
    done = []
    s.loadFinished.connect(lambda ok: done.append(ok))
    w.data_panel.open_pair(str(work / "hr_msi.npy"), str(work / "lr_hsi.npy"))
    pump(until=lambda: bool(done), timeout=120)
    idle = lambda: s.prepared is not None and not s.preparing and s.workers.pending == 0  # noqa: E731
    pump(until=idle, timeout=120)
    w.data_dock.raise_()
    grab(w, "04a_real_data.png")
    w.data_panel.apply_wavelengths("400..2500")        # .npy files carry no wavelengths: typed
    pump(0.5)
    pump(until=idle, timeout=120)
    w.srf_dock.raise_()
    grab(w, "04_real_srf.png")

    w.training_panel.form.widget("epochs").setValue(args.epochs)
    w.training_panel.run_button.click()
    pump(until=lambda: not s.running and s.result is not None and s.result.prepared.mode == "real",
         timeout=600)
    w.data_dock.raise_()
    grab(w, "05_real_results.png")

    # --- a preset SRF that does not describe the camera: the warnings
    w.srf_panel.form.widget("srf_source").setCurrentIndex(w.srf_panel.form.widget("srf_source").findData("preset"))
    w.srf_panel.form.widget("training_input").setCurrentIndex(
        w.srf_panel.form.widget("training_input").findData("srf"))
    w.data_panel.apply_wavelengths("")
    pump(0.5)
    pump(until=idle, timeout=120)
    w.training_panel.run_button.click()
    pump(until=lambda: s.running, timeout=30)
    pump(until=lambda: not s.running, timeout=600)
    w.srf_dock.raise_()
    grab(w, "07_real_preset_warning.png")

    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
