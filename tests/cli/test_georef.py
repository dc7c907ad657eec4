"""Real data as it comes (issue 10): georeferenced GeoTIFF and ENVI pairs, nodata borders.

The pairs are written by the test with rasterio (GeoTIFF) and spectral (ENVI), as other
tools would write them, and fused through the CLI.
"""
import json

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import from_origin

from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

from test_cli import run_cli

RATIO = 3
CRS = "EPSG:32633"             # UTM zone 33 N
ORIGIN = (500000.0, 4000020.0)
BORDER = 2                     # LR pixels of nodata along the left edge (6 HR columns)
NODATA = -9999.0


@pytest.fixture(scope="module")
def scene(library_truth):
    truth, wl = library_truth(60, 50)
    truth = (0.5 * truth).astype(np.float32)
    hr = apply_srf(truth, preset_srf(4, truth.shape[2], wavelengths=wl)).astype(np.float32)
    lr = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), RATIO).astype(np.float32)
    return truth, wl, hr, lr


def _write_tif(path, cube, pixel, origin=ORIGIN, nodata=None, descriptions=None):
    with rasterio.open(path, "w", driver="GTiff", height=cube.shape[0], width=cube.shape[1],
                       count=cube.shape[2], dtype="float32", crs=CRS,
                       transform=from_origin(origin[0], origin[1], pixel, pixel), nodata=nodata) as ds:
        ds.write(np.moveaxis(cube, 2, 0))
        for i, text in enumerate(descriptions or []):
            ds.set_band_description(i + 1, text)


def _config(folder, hr, lr, name, **extra):
    cfg = {"synthetic": False, "hr_msi_file": str(hr), "lr_hsi_file": str(lr), "epochs": 150, "hidden_size": 64,
           "auto_select": False, "device": "cpu", "output_dir": str(folder / name),
           "log_dir": str(folder / f"{name}_logs"), **extra}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_geotiff_pair_with_a_nodata_border_fuses_into_a_georeferenced_geotiff(scene, tmp_path):
    truth, wl, hr, lr = scene
    hr, lr = hr.copy(), lr.copy()
    hr[:, :BORDER * RATIO] = NODATA                 # the HR-MSI's nodata border (its file says so)
    lr[:, :BORDER] = np.nan                         # the LR-HSI's is NaN
    _write_tif(tmp_path / "hr.tif", hr, 10.0, nodata=NODATA)
    _write_tif(tmp_path / "lr.tif", lr, 30.0, nodata=np.nan, descriptions=[f"{v:.2f} nm" for v in wl])
    cfg = _config(tmp_path, tmp_path / "hr.tif", tmp_path / "lr.tif", "out", output_file_type="geotiff")
    proc = run_cli("run", "--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    assert "nodata: 360 HR-MSI pixels and 40 LR-HSI pixels hold no data" in proc.stderr
    with rasterio.open(tmp_path / "out" / "hr_hsi.tif") as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.transform == from_origin(*ORIGIN, 10.0, 10.0)
        assert ds.count == truth.shape[2] and ds.dtypes[0] == "float32"
        assert ds.descriptions[0] == f"band 1: {wl[0]:.6g} nm"          # wavelengths in band descriptions
        result = np.moveaxis(ds.read(), 0, 2)
    assert np.isnan(result[:, :BORDER * RATIO]).all()                  # NaN on the border
    inside = result[:, BORDER * RATIO:]
    assert np.isfinite(inside).all()                                   # finite inside
    assert 0.0 <= np.percentile(inside, 1) and np.percentile(inside, 99) <= 0.6       # in the input's units
    err = inside - truth[:, BORDER * RATIO:]
    assert 10 * np.log10(0.5 ** 2 / np.mean(err ** 2)) > 25          # and a fusion, not noise
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["nodata"]["lr_pixels_without_data"] == 40 and run["nodata"]["result_pixels_nan"] == 360


def test_extents_off_by_one_lr_pixel_are_named(scene, tmp_path):
    _truth, _wl, hr, lr = scene
    _write_tif(tmp_path / "hr.tif", hr, 10.0)
    _write_tif(tmp_path / "lr.tif", lr, 30.0, origin=(ORIGIN[0] + 30.0, ORIGIN[1]))     # one LR pixel east
    # align: off keeps the strict check (align: auto crops both to the overlap: tests/cli/test_align.py)
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.tif", tmp_path / "lr.tif", "out",
                                                  align="off")))
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "do not cover the same ground" in line
    assert "x 500000..500600" in line and "x 500030..500630" in line         # both extents
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_envi_map_info_is_read_and_checked(scene, tmp_path):
    import spectral.io.envi as envi
    from spectramorph_engine.io import load_cube
    _truth, wl, hr, lr = scene
    for name, cube, pixel in (("hr", hr, 10.0), ("lr", lr, 30.0)):
        envi.save_image(str(tmp_path / f"{name}.hdr"), cube, ext=".img", interleave="bip", force=True, metadata={
            "map info": f"{{UTM, 1.000, 1.000, {ORIGIN[0]}, {ORIGIN[1]}, {pixel}, {pixel}, 33, North, WGS-84, "
                        f"units=Meters}}", "wavelength": [f"{v:.3f}" for v in wl], "wavelength units": "nm",
            "data ignore value": NODATA})
    cube = load_cube(tmp_path / "lr.hdr")
    assert cube.geo.crs_name == "EPSG:32633" and cube.geo.nodata == NODATA
    assert cube.geo.transform == pytest.approx((30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1]))
    cfg = _config(tmp_path, tmp_path / "hr.hdr", tmp_path / "lr.hdr", "out", epochs=30, output_file_type="geotiff")
    proc = run_cli("run", "--config", str(cfg), "--quiet")
    assert proc.returncode == 0, proc.stderr
    with rasterio.open(tmp_path / "out" / "hr_hsi.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == from_origin(*ORIGIN, 10.0, 10.0)


def test_nan_pixels_in_plain_arrays_are_masked_and_an_all_nan_pair_refused(scene, tmp_path):
    _truth, _wl, hr, lr = scene
    lr = lr.copy()
    lr[5, 7] = np.nan                        # one LR pixel without data: its 3 x 3 HR pixels are NaN
    np.save(tmp_path / "hr.npy", hr)
    np.save(tmp_path / "lr.npy", lr)
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.npy", tmp_path / "lr.npy", "out",
                                                  epochs=30)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    result = np.load(tmp_path / "out" / "hr_hsi.npy")
    assert np.isnan(result[15:18, 21:24]).all() and np.isfinite(result).sum() == result.size - 9 * result.shape[2]
    np.save(tmp_path / "lr_nan.npy", np.full_like(lr, np.nan))
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.npy", tmp_path / "lr_nan.npy", "bad")))
    assert proc.returncode == 2 and "holds no valid pixel" in proc.stderr and "\n" not in proc.stderr.strip()


def test_misfit_map_is_high_where_the_msi_was_altered(scene, tmp_path):
    """A patch of the HR-MSI replaced by another part of the scene (a change between the two
    acquisitions): the saved misfit map is high there and low elsewhere, and the warning
    points to it."""
    _truth, _wl, hr, lr = scene
    hr = hr.copy()
    rows, cols = slice(30, 45), slice(33, 48)          # 5 x 5 LR pixels
    hr[rows, cols] = hr[6:21, 6:21]
    np.save(tmp_path / "hr.npy", hr)
    np.save(tmp_path / "lr.npy", lr)
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.npy", tmp_path / "lr.npy", "out",
                                                  epochs=30)))
    assert proc.returncode == 0, proc.stderr
    misfit = np.load(tmp_path / "out" / "misfit.npy")
    assert misfit.shape == (20, 20, 2)
    pair = misfit[:, :, 0]
    inside = pair[11:14, 12:15]                       # the patch's interior LR pixels (blur spills past its edge)
    outside = np.ones(pair.shape, bool)
    outside[9:16, 10:17] = False
    assert inside.min() > 5 * np.median(pair[outside]), (inside.min(), np.median(pair[outside]))
    assert np.percentile(pair[outside], 95) < inside.min()
    warnings = json.loads((tmp_path / "out" / "consistency.json").read_text())["warnings"]
    assert any("disagree between the HR-MSI and the LR-HSI" in w and "misfit map" in w for w in warnings)
    assert "misfit map" in proc.stderr


def test_a_2d_panchromatic_geotiff_is_a_one_band_msi(scene, tmp_path):
    """A pan image stored as a 2-D array (or a one-band GeoTIFF) needs no reshaping."""
    _truth, _wl, hr, lr = scene
    pan = hr.mean(axis=2)
    np.save(tmp_path / "pan.npy", pan)                                  # H x W, no band axis
    np.save(tmp_path / "lr.npy", lr)
    _write_tif(tmp_path / "pan.tif", pan[:, :, None], 10.0)
    _write_tif(tmp_path / "lr.tif", lr, 30.0)
    for name, hr_file, lr_file in (("npy", "pan.npy", "lr.npy"), ("tif", "pan.tif", "lr.tif")):
        cfg = _config(tmp_path, tmp_path / hr_file, tmp_path / lr_file, name, epochs=30)
        proc = run_cli("run", "--config", str(cfg), "--quiet")
        assert proc.returncode == 0, proc.stderr
        run = json.loads((tmp_path / name / "run.json").read_text())
        assert run["shapes"]["hr_msi"] == [60, 60, 1] and run["shapes"]["hr_hsi"] == [60, 60, 50]


def test_big_geotiffs_open_lazily_and_read_by_window(scene, tmp_path):
    from spectramorph_engine.io import load_cube
    _truth, wl, _hr, lr = scene
    _write_tif(tmp_path / "lr.tif", lr, 30.0, descriptions=[f"{v:.2f} nm" for v in wl])
    with load_cube(tmp_path / "lr.tif", lazy=True) as cube:
        assert not isinstance(cube.data, np.ndarray) and cube.shape == lr.shape
        np.testing.assert_array_equal(cube.data[3:7, 2:5], lr[3:7, 2:5])
        np.testing.assert_array_equal(cube.data[4], lr[4])
        np.testing.assert_array_equal(cube.data[2, 3, 10:20], lr[2, 3, 10:20])
        np.testing.assert_array_equal(np.asarray(cube.data), lr)
        assert cube.geo.crs_name == "EPSG:32633"
        np.testing.assert_allclose(cube.wavelengths, np.round(wl, 2))


def test_a_garbage_nodata_tag_is_reported_not_lost(scene, tmp_path):
    """Issue 17: a GeoTIFF whose GDAL_NODATA tag (42113) is not a number. GDAL reads 'n/a' as 0
    (every 0 pixel would be nodata) and io.georef swallowed every error while reading the
    metadata; now the user is told, naming the file and the tag."""
    import tifffile
    from spectramorph_engine.core.errors import InputError
    from spectramorph_engine.io import load_cube
    _truth, _wl, hr, lr = scene
    tifffile.imwrite(tmp_path / "lr_bad.tif", lr, extratags=[(42113, "s", 0, "n/a", True)])
    for lazy in (False, True):
        with pytest.raises(InputError, match=r"lr_bad\.tif.*GDAL_NODATA.*42113.*'n/a'.*not a number") as err:
            load_cube(tmp_path / "lr_bad.tif", lazy=lazy)
        assert "\n" not in str(err.value)
    # a number (tifffile writes it as GDAL does) and an empty tag (no nodata) still read
    tifffile.imwrite(tmp_path / "lr_ok.tif", lr, extratags=[(42113, "s", 0, " -9999 ", True)])
    assert load_cube(tmp_path / "lr_ok.tif").geo.nodata == NODATA
    tifffile.imwrite(tmp_path / "lr_empty.tif", lr, extratags=[(42113, "s", 0, "", True)])
    assert load_cube(tmp_path / "lr_empty.tif").geo is None
    np.save(tmp_path / "hr.npy", hr)
    proc = run_cli("run", "--config", str(_config(tmp_path, tmp_path / "hr.npy", tmp_path / "lr_bad.tif", "out")))
    assert proc.returncode == 2 and "GDAL_NODATA" in proc.stderr and "lr_bad.tif" in proc.stderr, proc.stderr
