"""Pairs from two instruments (issue 22 items 1-3): grids that do not nest, footprints that
differ, another CRS, a sub-pixel misregistration -- aligned by the program (`align: auto`), or
refused as before (`align: off`); `spectramorph align` writes the aligned pair.

The pairs are GeoTIFFs written with rasterio, as other tools would write them, read back through
the real loader. The LR-HSI is made from the ground truth where its own grid says it lies: the
blurred truth sampled (cubic spline) at the LR grid's offset, then averaged over LR pixels.
"""
import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

from spectramorph_engine import FusionConfig
from spectramorph_engine.io import load_cube
from spectramorph_engine.io.georef import check_same_ground
from spectramorph_engine.run.prepare import prepare_inputs
from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

from test_cli import run_cli
from test_georef import CRS, _config, _write_tif

R = 3
HR_PX, LR_PX = 10.0, 30.0
ORIGIN = (500000.0, 4001200.0)          # the HR-MSI's upper-left corner (EPSG:32633)


@pytest.fixture(scope="module")
def scene(library_truth):
    truth, wl = library_truth(120, 40)
    truth = (0.5 * truth).astype(np.float32)
    hr = apply_srf(truth, preset_srf(4, truth.shape[2], wavelengths=wl)).astype(np.float32)
    blurred = blur(truth, make_psf("gaussian", 1.0, 5)).astype(np.float32)
    return truth, wl, hr, blurred


def _lr(blurred, east_m=0.0, south_m=0.0, rows=None, cols=None):
    """The LR-HSI whose upper-left corner lies east_m / south_m from the HR-MSI's."""
    moved = ndimage.shift(blurred, (-south_m / HR_PX, -east_m / HR_PX, 0), order=3, mode="nearest")
    lr = area_downsample(moved, R).astype(np.float32)
    return lr[:rows, :cols]


def _prepare(tmp_path, **extra):
    cfg = FusionConfig(synthetic=False, hr_msi_file=str(tmp_path / "hr.tif"), lr_hsi_file=str(tmp_path / "lr.tif"),
                       **extra)
    return prepare_inputs(cfg)


def _corr(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def test_an_lr_grid_off_the_hr_grid_is_aligned_and_fuses(scene, tmp_path):
    """The user's pair: LR origin 13 m E / 7 m S of the HR grid's, a smaller LR extent -- fused on
    the HR-MSI's own pixels (cropped to whole LR pixels), the result where the truth is."""
    truth, wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    lr = _lr(blurred, 13.0, 7.0, rows=38, cols=38)
    _write_tif(tmp_path / "lr.tif", lr, LR_PX, origin=(ORIGIN[0] + 13.0, ORIGIN[1] - 7.0),
               descriptions=[f"{v:.2f} nm" for v in wl])
    cfg = _config(tmp_path, tmp_path / "hr.tif", tmp_path / "lr.tif", "out", epochs=40,
                  output_file_type="geotiff")
    proc = run_cli("run", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "alignment: ratio 3; LR-HSI resampled (lanczos)" in proc.stderr     # a 0.1 pixel move
    rec = json.loads((tmp_path / "out" / "run.json").read_text())["alignment"]
    # the nested grid starts on HR pixel (1, 1): 3 m west and 3 m south of the LR file's
    assert rec["grid_shift_m"] == pytest.approx([-3.0, -3.0], abs=1e-3)
    assert rec["grid_shift_lr_px"] == pytest.approx([-0.1, 0.1], abs=1e-3)
    assert rec["hr_crop_px"] == {"row": 1, "col": 1, "rows": 114, "cols": 114, "of": [120, 120]}
    assert rec["lr_crop_px"]["rows"] == 38 and rec["lr_grid"] == [38, 38]
    assert not rec["misregistration"]["corrected"]
    assert max(map(abs, rec["misregistration"]["measured_lr_px"])) < 0.1
    with rasterio.open(tmp_path / "out" / "hr_hsi.tif") as ds:
        assert ds.transform == from_origin(ORIGIN[0] + 10.0, ORIGIN[1] - 10.0, HR_PX, HR_PX)
        result = np.moveaxis(ds.read(), 0, 2)
    ref = truth[1:115, 1:115]
    ok = np.isfinite(result).all(axis=2)
    assert ok.mean() > 0.97
    err = result[ok] - ref[ok]
    assert 10 * np.log10(0.5 ** 2 / np.mean(err ** 2)) > 25


def test_footprints_that_differ_are_cropped_to_the_overlap(scene, tmp_path):
    """The LR-HSI starts 3 LR pixels east and 2 south on the same grid phase and runs past the
    HR-MSI's edge: both are cut to the overlap, with no resampling."""
    _truth, _wl, hr, blurred = scene
    lr_full = _lr(blurred)                                    # 40 x 40, nested with the HR-MSI
    big = np.pad(lr_full, ((0, 5), (0, 5), (0, 0)), mode="edge")
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    _write_tif(tmp_path / "lr.tif", big[2:, 3:], LR_PX, origin=(ORIGIN[0] + 90.0, ORIGIN[1] - 60.0))
    p = _prepare(tmp_path)
    rec = p.alignment
    assert rec["resampling"].startswith("none")
    assert rec["hr_crop_px"] == {"row": 6, "col": 9, "rows": 114, "cols": 111, "of": [120, 120]}
    assert rec["lr_crop_px"] == {"row": 0, "col": 0, "rows": 38, "cols": 37, "of": [43, 42]}
    assert p.hr_msi.shape[:2] == (114, 111) and p.lr_hsi.shape[:2] == (38, 37) and p.ratio == 3
    assert p.geo.transform == pytest.approx((HR_PX, 0, ORIGIN[0] + 90.0, 0, -HR_PX, ORIGIN[1] - 60.0))
    assert _corr(p.lr_hsi[..., 5], lr_full[2:, 3:, 5]) > 0.999


def test_another_crs_is_reprojected(scene, tmp_path):
    """The LR-HSI delivered in the next UTM zone (EPSG:32634): reprojected onto the HR-MSI's
    grid; the corners its rotated footprint misses are nodata, not zeros."""
    from rasterio.warp import Resampling, reproject, transform
    _truth, _wl, hr, blurred = scene
    lr_nested = _lr(blurred)
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    (x0,), (y0,) = transform(CRS, "EPSG:32634", [ORIGIN[0] + 60.0], [ORIGIN[1] - 60.0])
    dst_t = from_origin(x0, y0, LR_PX, LR_PX)
    src = np.moveaxis(lr_nested, 2, 0)
    dst = np.full((src.shape[0], 36, 36), np.nan, np.float32)
    reproject(src, dst, src_transform=from_origin(*ORIGIN, LR_PX, LR_PX), src_crs=CRS, dst_transform=dst_t,
              dst_crs="EPSG:32634", resampling=Resampling.cubic, dst_nodata=np.nan)
    with rasterio.open(tmp_path / "lr.tif", "w", driver="GTiff", height=36, width=36, count=src.shape[0],
                       dtype="float32", crs="EPSG:32634", transform=dst_t, nodata=np.nan) as ds:
        ds.write(dst)
    p = _prepare(tmp_path)
    rec = p.alignment
    assert rec["crs_change"] == "EPSG:32634 -> EPSG:32633" and rec["resampling"] == "cubic"
    assert p.ratio == 3 and p.hr_msi.shape[0] == 3 * p.lr_hsi.shape[0]
    lc = rec["lr_crop_px"]                                            # in the LR file's own pixels
    assert lc["row"] >= 0 and lc["col"] >= 0 and lc["row"] + lc["rows"] <= 36 and lc["col"] + lc["cols"] <= 36
    r0, c0 = rec["hr_crop_px"]["row"] // 3, rec["hr_crop_px"]["col"] // 3
    h, w = p.lr_hsi.shape[:2]
    assert p.masks is not None and 0 < p.masks.summary()["lr_pixels_without_data"] < 0.2 * h * w
    got = p.lr_hsi[..., 5].copy()
    got[p.masks.lr_bad] = np.nan
    assert _corr(got, lr_nested[r0:r0 + h, c0:c0 + w, 5]) > 0.99     # back where it was
    assert max(map(abs, rec["misregistration"]["measured_lr_px"])) < 0.15


def test_a_misregistration_of_0_4_lr_pixel_is_measured_and_corrected(scene, tmp_path):
    """Nested grids, but the LR-HSI's content lies 0.4 LR pixel east and 0.2 north of where its
    georeferencing says: measured to within 0.05 LR pixel and corrected."""
    _truth, _wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    lr = _lr(blurred, east_m=-0.4 * LR_PX, south_m=0.2 * LR_PX)     # content moved 0.4 E, 0.2 N
    _write_tif(tmp_path / "lr.tif", lr, LR_PX, origin=ORIGIN)
    alignment = _prepare(tmp_path).alignment
    rec = alignment["misregistration"]
    assert rec["measured_lr_px"] == pytest.approx([0.4, -0.2], abs=0.05)
    assert rec["measured_m"] == pytest.approx([12.0, 6.0], abs=1.5)
    assert rec["corrected"] and max(map(abs, rec["residual_lr_px"])) < 0.05
    # the whole HR pixels of it (1.2 -> 1 east, 0.6 -> 1 north) move the HR-MSI's crop: the LR-HSI
    # really starts 1.2 HR pixels west and 0.6 south of its stated origin
    assert alignment["hr_crop_px"]["row"] == 1 and alignment["hr_crop_px"]["col"] == 2
    assert max(map(abs, alignment["grid_shift_lr_px"])) < 0.1 + 0.05     # what is left is resampled


def test_align_off_refuses_as_before(scene, tmp_path):
    _truth, _wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    _write_tif(tmp_path / "lr.tif", _lr(blurred, 13.0, 7.0, rows=38, cols=38), LR_PX,
               origin=(ORIGIN[0] + 13.0, ORIGIN[1] - 7.0))
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.tif", tmp_path / "lr.tif", "out",
                                                  align="off")))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "do not cover the same ground" in line and "nested grids" in line


def test_cli_align_writes_a_pair_that_nests(scene, tmp_path):
    _truth, wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    _write_tif(tmp_path / "lr.tif", _lr(blurred, 13.0, 7.0, rows=38, cols=38), LR_PX,
               origin=(ORIGIN[0] + 13.0, ORIGIN[1] - 7.0), descriptions=[f"{v:.2f} nm" for v in wl])
    proc = run_cli("align", str(tmp_path / "hr.tif"), str(tmp_path / "lr.tif"), "--out", str(tmp_path / "al"))
    assert proc.returncode == 0, proc.stderr
    hr_al, lr_al = load_cube(tmp_path / "al" / "hr_msi_aligned.tif"), load_cube(tmp_path / "al" / "lr_hsi_aligned.tif",
                                                                                allow_invalid=True)
    assert hr_al.data.shape == (114, 114, 4) and lr_al.data.shape == (38, 38, wl.size)
    assert check_same_ground(hr_al.geo, hr_al.data.shape, "hr", lr_al.geo, lr_al.data.shape, "lr") == 3
    assert np.allclose(lr_al.wavelengths, wl, atol=0.01)
    assert np.array_equal(hr_al.data, hr[1:115, 1:115])              # the HR-MSI is cropped, not resampled
    rec = json.loads((tmp_path / "al" / "alignment.json").read_text())
    assert rec["hr_crop_px"]["row"] == 1 and rec["outputs"]["lr_hsi"].endswith("lr_hsi_aligned.tif")


def test_cli_align_refuses_a_pair_without_map_coordinates(scene, tmp_path):
    _truth, _wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    np.save(tmp_path / "lr.npy", _lr(blurred))
    proc = run_cli("align", str(tmp_path / "hr.tif"), str(tmp_path / "lr.npy"), "--out", str(tmp_path / "al"))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "carries no map coordinates" in line
    assert not (tmp_path / "al").exists() or not any((tmp_path / "al").iterdir())


def test_pixel_sizes_not_a_whole_ratio_apart_are_refused_naming_both(scene, tmp_path):
    _truth, _wl, hr, blurred = scene
    _write_tif(tmp_path / "hr.tif", hr, HR_PX, origin=ORIGIN)
    _write_tif(tmp_path / "lr.tif", _lr(blurred), 25.0, origin=ORIGIN)          # 2.5 HR pixels
    proc = run_cli("align", str(tmp_path / "hr.tif"), str(tmp_path / "lr.tif"), "--out", str(tmp_path / "al"))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "lr.tif' has 25 x 25 pixels" in line and "hr.tif' 10 x 10" in line
    assert "whole number" in line
    assert not (tmp_path / "al").exists() or not any((tmp_path / "al").iterdir())
