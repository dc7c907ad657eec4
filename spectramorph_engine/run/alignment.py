"""Aligning a real pair before anything else is done with it (issue 22 items 1-2; `align: auto`).

`align_pair` brings two georeferenced images onto nested grids (io.align: the common footprint,
the ratio from the pixel sizes, the LR-HSI resampled onto a grid nested in the HR-MSI's, both
cropped to whole LR pixels), then measures what georeferencing left: the LR-HSI's sub-pixel
displacement against the HR-MSI (sensors.coregistration, through a preliminary SRF), corrected
when it exceeds CORRECT_MIN_LR_PX by moving the LR-HSI's georeferencing and planning again (its
whole HR pixels move the HR-MSI's crop; only the rest is resampled). What was done goes to the log
and comes back as a record (run.json's `alignment`, the app's Data panel). `align: off`, or a
pair without map coordinates, keeps the strict check of io.georef (nothing is resampled).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional

import numpy as np

from ..core import events as ev

log = logging.getLogger(__name__)

# A measured displacement larger than this (LR pixels) is corrected: below it the estimate is not
# worth a resampling (its error on a small image is a few hundredths of a pixel).
CORRECT_MIN_LR_PX = 0.1
# The correction is measured again and refined until what is left is below COREG_DONE_LR_PX, at
# most COREG_ROUNDS resamplings of the LR file.
COREG_ROUNDS = 3
COREG_DONE_LR_PX = 0.02


def invalid_pixels(cube: np.ndarray, nodata: Optional[float]) -> np.ndarray:
    """rows x cols bool: a pixel with NaN/Inf in any band, or equal to `nodata` in every band
    (the one rule for a pixel without data: here and in prepare's nodata masks)."""
    bad = ~np.isfinite(cube).all(axis=2)
    if nodata is not None and np.isfinite(nodata):
        bad |= (cube == np.float32(nodata)).all(axis=2)
    return bad


def _as3(a) -> np.ndarray:
    a = np.asarray(a)
    return a[:, :, None] if a.ndim == 2 else a


def _metres(transform, d):
    a, b, _c, dd, e, _f = transform
    return float(a * d[0] + b * d[1]), float(dd * d[0] + e * d[1])


def _measure(hr, hr_nodata, lr, lr_nodata, ratio):
    from ..sensors.coregistration import estimate_displacement
    hr3 = _as3(hr).astype(np.float32)
    lr = np.asarray(lr, dtype=np.float32)
    h, w = lr.shape[:2]
    hr_bad = invalid_pixels(hr3, hr_nodata)
    lr_bad = invalid_pixels(lr, lr_nodata)
    valid = ~(lr_bad | hr_bad.reshape(h, ratio, w, ratio).any(axis=(1, 3)))
    hr3 = np.where(np.isfinite(hr3), hr3, 0.0)
    lr = np.where(np.isfinite(lr), lr, 0.0)
    return estimate_displacement(hr3, lr, ratio, valid=valid)


def _moved(geo, d):
    """`geo` with its grid moved by -d of its own pixels (cols, rows): where an LR-HSI whose
    content shows up displaced by d really lies."""
    a, b, c, dd, e, f = geo.transform
    return dataclasses.replace(geo, transform=(a, b, c - (a * d[0] + b * d[1]), dd, e, f - (dd * d[0] + e * d[1])))


def align_pair(hr, hr_what: str, hr_geo, lr, lr_what: str, lr_geo, nodata: Optional[float] = None,
               progress=None, correct: bool = True):
    """(hr, hr_geo, lr, lr_geo, record) of a georeferenced pair brought onto nested grids (see
    the module doc); `record` is None and nothing changes when either image has no map
    coordinates. `nodata`: the value that marks pixels without data (the config's), else each
    file's own. The LR-HSI comes back float32 with NaN where it has no data."""
    from ..io.align import crop_hr, lr_on_grid, plan_alignment, resampling_for
    if hr_geo is None or lr_geo is None or not hr_geo.georeferenced or not lr_geo.georeferenced:
        return hr, hr_geo, lr, lr_geo, None
    hr_shape, lr_shape = np.shape(hr), np.shape(lr)
    lr_nodata = nodata if nodata is not None else lr_geo.nodata
    hr_nodata = nodata if nodata is not None else hr_geo.nodata

    def on_grids(geo):
        plan = plan_alignment(hr_geo, hr_shape, hr_what, geo, lr_shape, lr_what)
        hr_out, lr_out = crop_hr(hr, plan), lr_on_grid(lr, geo, hr_geo, plan, nodata=lr_nodata)
        return plan, hr_out, lr_out, _measure(hr_out, hr_nodata, lr_out, None if plan.warp else lr_nodata, plan.ratio)

    plan, hr_out, lr_out, measured = on_grids(lr_geo)
    misreg = {"measured_lr_px": None, "measured_m": None, "corrected": False, "residual_lr_px": None,
              "note": "too few valid LR pixels to measure"}
    if measured is not None:
        d = measured.displacement
        misreg = {"measured_lr_px": [round(d[0], 4), round(d[1], 4)],
                  "measured_m": [round(v, 3) for v in _metres(lr_geo.transform, d)],
                  "corrected": False, "residual_lr_px": None, "fit_gain": round(measured.fit_gain, 4),
                  "lr_pixels_used": measured.pixels,
                  "note": f"below {CORRECT_MIN_LR_PX} LR pixel: not corrected"}
        if correct and math.hypot(*d) > CORRECT_MIN_LR_PX:
            # The LR-HSI's georeferencing is corrected and the grids planned again: the whole HR
            # pixels of the displacement move the HR-MSI's crop (nothing resampled), only what is
            # left (under half an HR pixel) moves the LR-HSI. The fit on a small or blurred pair
            # reads part of a shift only: measured again, what is left is added (a few rounds,
            # each from the LR file: one resampling in the result, never a resampled resampling).
            total, residual = np.asarray(d, float), None
            for rnd in range(COREG_ROUNDS):
                plan, hr_out, lr_out, after = on_grids(_moved(lr_geo, total))
                residual = None if after is None else np.asarray(after.displacement)
                if residual is None or math.hypot(*residual) < COREG_DONE_LR_PX or rnd == COREG_ROUNDS - 1:
                    break
                total = total + residual
            misreg.update(corrected=True, note="corrected: the LR-HSI's georeferencing moved, the grids planned again",
                          first_estimate_lr_px=misreg["measured_lr_px"], rounds=rnd + 1,
                          measured_lr_px=[round(float(v), 4) for v in total],
                          measured_m=[round(v, 3) for v in _metres(lr_geo.transform, total)],
                          residual_lr_px=None if residual is None else [round(float(v), 4) for v in residual])
    lr_geo_out = plan.lr_geo if plan.warp else dataclasses.replace(plan.lr_geo, nodata=lr_geo.nodata)
    r0, c0, nh, nw = plan.hr_window
    i0, j0, lh, lw = plan.lr_window
    record = {
        "ratio": plan.ratio,
        "resampling": resampling_for(plan) if plan.warp else "none (cropped on whole pixels)",
        "crs_change": plan.crs_change,
        "grid_shift_m": [round(v, 3) for v in plan.shift_m],
        "grid_shift_lr_px": [round(v, 4) for v in plan.shift_lr_px],
        "lr_pixel_size_change": [round(v, 5) for v in plan.size_change],
        "hr_crop_px": {"row": r0, "col": c0, "rows": nh, "cols": nw, "of": list(map(int, hr_shape[:2]))},
        "lr_crop_px": {"row": i0, "col": j0, "rows": lh, "cols": lw, "of": list(map(int, lr_shape[:2]))},
        "lr_grid": list(plan.lr_shape),
        "misregistration": misreg,
    }
    record["summary"] = describe(record)
    ev.say(progress, "info", f"alignment: {record['summary']}", log)
    return hr_out, plan.hr_geo, lr_out, lr_geo_out, record


def describe(rec: dict) -> str:
    """The alignment record in one sentence (the log, the app's Data panel)."""
    hc, lc = rec["hr_crop_px"], rec["lr_crop_px"]
    sm, sp = rec["grid_shift_m"], rec["grid_shift_lr_px"]
    if rec["resampling"].startswith("none"):
        how = "LR-HSI on a grid nested in the HR-MSI's already: cropped only"
    else:
        how = (f"LR-HSI resampled ({rec['resampling']}) onto a grid nested in the HR-MSI's"
               + (f", reprojected {rec['crs_change']}" if rec["crs_change"] else "")
               + f", moved {sm[0]:+.2f} m E, {sm[1]:+.2f} m N ({sp[0]:+.3f}, {sp[1]:+.3f} LR px)")
        size = rec["lr_pixel_size_change"]
        if max(abs(v) for v in size) > 1e-3:
            how += f", pixel size changed {100 * size[0]:+.1f}% x {100 * size[1]:+.1f}%"
    text = (f"ratio {rec['ratio']}; {how}; HR-MSI cropped to {hc['rows']} x {hc['cols']} pixels from row "
            f"{hc['row']}, col {hc['col']} of {hc['of'][0]} x {hc['of'][1]}; LR-HSI {lc['rows']} x {lc['cols']} "
            f"from row {lc['row']}, col {lc['col']} of {lc['of'][0]} x {lc['of'][1]}")
    m = rec["misregistration"]
    if m["measured_lr_px"] is None:
        text += f"; misregistration not measured ({m['note']})"
    else:
        d, dm = m["measured_lr_px"], m["measured_m"]
        text += f"; misregistration {d[0]:+.3f}, {d[1]:+.3f} LR px ({dm[0]:+.2f} m E, {dm[1]:+.2f} m N): "
        if m["corrected"]:
            res = m["residual_lr_px"]
            text += "corrected" + (f" (residual {res[0]:+.3f}, {res[1]:+.3f} LR px)" if res else "")
            gain = m.get("fit_gain")
            if gain and gain > 1.0:     # what the misfit map would have shown: residual ratio of the fit
                text += f", the two images' RMS misfit through a fitted SRF {math.sqrt(gain):.1f}x lower"
        else:
            text += m["note"]
    return text


def align_files(hr_path, lr_path, out_dir, nodata: Optional[float] = None, progress=None) -> dict:
    """`spectramorph align`: the pair in two files brought onto nested grids and written to
    `out_dir` as GeoTIFFs (hr_msi_aligned.tif, lr_hsi_aligned.tif: NaN nodata, wavelengths in the
    band descriptions) with alignment.json, all or none (io.outputs.StagedOutputs). Returns the
    alignment record with the files written. InputError when either file has no map coordinates."""
    from ..core.errors import InputError
    from ..core.strict_json import dumps as json_dumps
    from ..io import atomic_write_text, load_cube, save_cube
    from ..io.outputs import StagedOutputs
    hr_what, lr_what = f"HR-MSI '{hr_path}'", f"LR-HSI '{lr_path}'"
    with load_cube(hr_path, allow_invalid=True) as hr_cube, load_cube(lr_path, allow_invalid=True) as lr_cube:
        for what, cube in ((hr_what, hr_cube), (lr_what, lr_cube)):
            if cube.geo is None or not cube.geo.georeferenced:
                raise InputError(f"{what} carries no map coordinates (GeoTIFF georeferencing or ENVI map info): "
                                 f"spectramorph align needs both images georeferenced")
        hr_nodata = nodata if nodata is not None else hr_cube.geo.nodata
        hr, hr_geo, lr, lr_geo, record = align_pair(hr_cube.data, hr_what, hr_cube.geo, lr_cube.data, lr_what,
                                                    lr_cube.geo, nodata=nodata, progress=progress)
        hr = _as3(hr).astype(np.float32)               # a copy: the file's nodata becomes NaN
        hr[invalid_pixels(hr, hr_nodata)] = np.nan
        lr = np.array(lr, dtype=np.float32)
        lr[invalid_pixels(lr, nodata if nodata is not None else lr_geo.nodata)] = np.nan
        wl = lr_cube.wavelengths
    staged = StagedOutputs(out_dir)
    try:
        files = {"hr_msi": "hr_msi_aligned.tif", "lr_hsi": "lr_hsi_aligned.tif", "record": "alignment.json"}
        save_cube(staged.path(files["hr_msi"]), hr, geo=dataclasses.replace(hr_geo, nodata=float("nan")),
                  geotiff=True)
        save_cube(staged.path(files["lr_hsi"]), lr, wavelengths=wl,
                  geo=dataclasses.replace(lr_geo, nodata=float("nan")), geotiff=True)
        record = {**record, "hr_msi_file": str(hr_path), "lr_hsi_file": str(lr_path),
                  "outputs": {k: str(staged.final(v)) for k, v in files.items()}}
        atomic_write_text(staged.path(files["record"]), json_dumps(record))
        staged.commit()
    except BaseException:
        staged.abort()
        raise
    return record
