"""Satellite products (issue 22 item 4): EnMAP L2A and Sentinel-2 L2A read through load_cube with
their wavelengths, scale to reflectance, nodata and map coordinates, and fused as a pair.

No real product was at hand: the products are written by `product_files` to the published
format specifications (file names, XML elements), as small as a test allows."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from product_files import CRS, ENMAP_NAME, ORIGIN, S2_GRANULE, S2_STEM, write_enmap, write_sentinel2
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.io import load_cube

ROOT = Path(__file__).resolve().parents[2]
ENMAP_BANDS = 40
ENMAP_WL = np.linspace(420.0, 2400.0, ENMAP_BANDS)
ENMAP_FWHM = np.linspace(6.5, 11.0, ENMAP_BANDS)


def _enmap_counts(seed=0, shape=(30, 30)):
    counts = np.random.default_rng(seed).integers(1, 9000, shape + (ENMAP_BANDS,)).astype(np.int16)
    counts[2, 3, :] = -32768                    # one pixel without data
    return counts


def _s2_counts(shape=(90, 90)):
    counts = np.empty(shape + (4,), dtype=np.uint16)
    for i in range(4):                           # band i holds 1000 * (i + 2) + a ramp: its order shows
        counts[..., i] = 1000 * (i + 2) + np.arange(shape[1])[None, :]
    counts[5, 6, 2] = 0                          # B4 without data at one pixel
    return counts


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("target", ["folder", "metadata", "image"])
def test_enmap_l2a_reads_reflectance_wavelengths_fwhm_nodata_and_map_coordinates(tmp_path, target, lazy):
    counts = _enmap_counts()
    folder = write_enmap(tmp_path, counts, ENMAP_WL, ENMAP_FWHM, gain=2e-5, offset=0.01)
    path = {"folder": folder, "metadata": folder / f"{ENMAP_NAME}-METADATA.XML",
            "image": folder / f"{ENMAP_NAME}-SPECTRAL_IMAGE.TIF"}[target]
    with load_cube(path, lazy=lazy, allow_invalid=True) as cube:
        data = np.asarray(cube.data)
        assert cube.shape == (30, 30, ENMAP_BANDS) and data.dtype == np.float32
        np.testing.assert_allclose(cube.wavelengths, ENMAP_WL, atol=1e-3)
        np.testing.assert_allclose(cube.fwhm, ENMAP_FWHM, atol=1e-3)
        # reflectance = count * GainOfBand + OffsetOfBand
        assert data[0, 0, 5] == pytest.approx(int(counts[0, 0, 5]) * 2e-5 + 0.01, rel=1e-6)
        assert np.isnan(data[2, 3]).all() and np.count_nonzero(np.isnan(data)) == ENMAP_BANDS
        assert cube.geo.crs_name == CRS and cube.geo.nodata is None
        assert cube.geo.transform == pytest.approx((30.0, 0.0, ORIGIN[0], 0.0, -30.0, ORIGIN[1]))
        assert cube.camera is None
    with pytest.raises(InputError, match="without data .the product's nodata value"):
        load_cube(path)                          # NaN nodata: refused unless a real pair masks it


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("extension", [".jp2", ".tif"])
def test_sentinel2_l2a_stacks_the_10m_bands_as_reflectance_and_names_its_camera(tmp_path, extension, lazy):
    counts = _s2_counts()
    safe = write_sentinel2(tmp_path, counts, offset=-1000, extension=extension)
    for path in (safe, safe / "MTD_MSIL2A.xml"):
        with load_cube(path, lazy=lazy, allow_invalid=True) as cube:
            data = np.asarray(cube.data)
            assert cube.shape == (90, 90, 4) and cube.camera == "sentinel2_10m"
            np.testing.assert_allclose(cube.wavelengths, [492.1, 559.0, 665.0, 833.0])    # the MTD's CENTRAL
            np.testing.assert_allclose(cube.fwhm, [65, 35, 30, 105], atol=2)       # from the response tables
            # B2, B3, B4, B8 in that order; reflectance = (count + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE
            np.testing.assert_allclose(data[0, 7], [(1000 * (i + 2) + 7 - 1000) / 10000 for i in range(4)], rtol=1e-6)
            assert np.isnan(data[5, 6, 2]) and np.count_nonzero(np.isnan(data)) == 1      # NODATA (0)
            assert cube.geo.crs_name == CRS
            assert cube.geo.transform == pytest.approx((10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]))


@pytest.mark.parametrize("tag", [None, -9999])
def test_enmap_nodata_is_the_geotiffs_tag_else_the_specifications_fill_value(tmp_path, tag):
    counts = _enmap_counts()
    counts[2, 3, :] = -32768 if tag is None else tag
    counts[4, 4, :] = -32768 if tag is not None else 7        # a fill value the tag does not name: data
    data = load_cube(write_enmap(tmp_path, counts, ENMAP_WL, ENMAP_FWHM, nodata=tag), allow_invalid=True).data
    assert np.isnan(data[2, 3]).all() and np.count_nonzero(np.isnan(data)) == ENMAP_BANDS


def test_sentinel2_before_baseline_04_has_no_offset(tmp_path):
    safe = write_sentinel2(tmp_path, _s2_counts(), offset=None, extension=".tif")
    data = load_cube(safe, allow_invalid=True).data
    assert data[0, 0, 0] == pytest.approx(2000 / 10000)


def _message(path) -> str:
    with pytest.raises(InputError) as err:
        load_cube(path, allow_invalid=True)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_a_product_missing_its_metadata_or_a_band_file_is_refused_by_name(tmp_path):
    enmap = write_enmap(tmp_path / "e", _enmap_counts(), ENMAP_WL, ENMAP_FWHM)
    xml = enmap / f"{ENMAP_NAME}-METADATA.XML"
    text = xml.read_text()
    xml.write_text(text.replace('<bandID number="40">', '<bandID number="41">'))
    assert "bandID numbers are not 1..40" in _message(enmap)
    xml.write_text(text.replace("<GainOfBand>0.0001</GainOfBand>", "", 1))
    assert "band 1 has no GainOfBand" in _message(enmap)
    xml.write_text(text.replace("</bandCharacterisation>", "<bandID number=\"41\"><wavelengthCenterOfBand>2410"
                                "</wavelengthCenterOfBand><GainOfBand>1e-4</GainOfBand></bandID></bandCharacterisation>"))
    assert "has 40 bands but its metadata" in _message(enmap)
    xml.unlink()
    msg = _message(enmap)
    assert f"{ENMAP_NAME}-METADATA.XML' is missing" in msg
    assert msg == _message(enmap / f"{ENMAP_NAME}-SPECTRAL_IMAGE.TIF")

    safe = write_sentinel2(tmp_path / "s", _s2_counts(), extension=".tif")
    band = safe / "GRANULE" / S2_GRANULE / "IMG_DATA" / "R10m" / f"{S2_STEM}_B03_10m.tif"
    band.unlink()
    assert f"band B3 file '{band.with_suffix('')}.jp2' is missing" in _message(safe)
    (safe / "MTD_MSIL2A.xml").write_text("<n1:Level-2A_User_Product")
    assert "MTD_MSIL2A.xml' cannot be read as Sentinel-2 L2A metadata (XML)" in _message(safe)
    (safe / "MTD_MSIL2A.xml").unlink()
    assert "MTD_MSIL2A.xml' is missing" in _message(safe)
    (safe / "MTD_MSIL1C.xml").write_text("<x/>")
    assert "Level-1C" in _message(safe)


def test_the_products_camera_is_taken_only_where_the_user_left_the_srf_to_auto_and_the_hsi_covers_it():
    from spectramorph_engine.run.config import FusionConfig
    from spectramorph_engine.run.prepare import _camera_from_product
    said = []
    cfg = FusionConfig(synthetic=False)
    used, note = _camera_from_product(cfg, "sentinel2_10m", "HR-MSI 'x'", ENMAP_WL, said.append)
    assert used.msi_camera == "sentinel2_10m" and "chosen from the product HR-MSI 'x'" in note
    for other, wl in ((cfg.replace(msi_camera="landsat8_oli"), ENMAP_WL), (cfg.replace(srf_source="estimate"), ENMAP_WL),
                      (cfg, None), (cfg, np.linspace(400, 650, 30))):
        assert _camera_from_product(other, "sentinel2_10m", "HR-MSI 'x'", wl, said.append) == (other, "")
    assert "wavelengths are unknown" in said[-2].text and "band B8" in said[-1].text


# ----------------------------------------------------------------------------- a fused pair
def _run_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "spectramorph_engine", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def _config(folder, hr, lr, **extra):
    cfg = {"synthetic": False, "hr_msi_file": str(hr), "lr_hsi_file": str(lr), "epochs": 600, "hidden_size": 64,
           "auto_select": False, "refine": False, "device": "cpu", "output_dir": str(folder / "out"),
           "log_dir": str(folder / "logs"), "output_file_type": "geotiff", **extra}
    path = folder / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def product_pair(library_truth, tmp_path_factory):
    """A Sentinel-2 L2A product (90 x 90, 10 m) and an EnMAP L2A product (30 x 30, 30 m) of one
    scene on nested grids with the same corner; one LR column and its three HR columns without data."""
    from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
    from spectramorph_engine.sensors.psf import make_psf
    from spectramorph_engine.sensors.srf import camera_srf
    truth, wl = library_truth(90, ENMAP_BANDS)
    truth = (0.5 * truth).astype(np.float32)
    hr = apply_srf(truth, camera_srf("sentinel2_10m", ENMAP_BANDS, wl))
    lr = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), 3)
    s2 = np.round(hr * 10000 + 1000).astype(np.uint16)
    s2[:, :3] = 0
    enmap = np.round(lr / 1e-4).astype(np.int16)
    enmap[:, 0] = -32768
    folder = tmp_path_factory.mktemp("pair")
    return (truth, write_sentinel2(folder, s2, extension=".jp2"),
            write_enmap(folder, enmap, wl, np.full(ENMAP_BANDS, 8.0)))


def test_a_sentinel2_and_an_enmap_product_fuse_with_the_camera_chosen_from_the_product(product_pair, tmp_path):
    truth, safe, enmap = product_pair
    proc = _run_cli("run", "--config", str(_config(tmp_path, safe / "MTD_MSIL2A.xml", enmap)))
    assert proc.returncode == 0, proc.stderr
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert "msi_camera: sentinel2_10m" in run["srf"] and "chosen from the product" in run["srf"]
    assert run["nodata"]["lr_pixels_without_data"] == 30
    with rasterio.open(tmp_path / "out" / "hr_hsi.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform.c == ORIGIN[0] and ds.transform.a == 10.0
        result = np.moveaxis(ds.read(), 0, 2)
    assert np.isnan(result[:, :3]).all()
    inside, want = result[:, 3:], truth[:, 3:]
    assert np.isfinite(inside).all()
    psnr = 10 * np.log10(0.5 ** 2 / np.mean((inside - want) ** 2))      # in reflectance, as the products
    assert psnr > 25, psnr


def test_a_broken_product_ends_in_one_error_line(product_pair, tmp_path):
    _truth, safe, _enmap = product_pair
    empty = tmp_path / "ENMAP_broken"
    empty.mkdir()
    (empty / f"{ENMAP_NAME}-SPECTRAL_IMAGE.TIF").write_bytes(b"II*\x00")
    proc = _run_cli("run", "--config", str(_config(tmp_path, safe, empty)), "--quiet")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "METADATA.XML' is missing" in line


def test_a_damaged_band_file_is_named_when_its_pixels_are_read(tmp_path):
    safe = write_sentinel2(tmp_path, _s2_counts())
    band = next(safe.rglob("*_B08_10m.jp2"))
    band.write_bytes(band.read_bytes()[:int(0.9 * band.stat().st_size)])
    for lazy in (False, True):
        with pytest.raises(InputError, match=r"_B08_10m.jp2' cannot be read: the file is truncated or corrupted"):
            np.asarray(load_cube(safe, lazy=lazy, allow_invalid=True).data)



def test_products_on_grids_that_do_not_nest_are_aligned(library_truth, tmp_path):
    """An EnMAP product labelled 13 m east and 7 m south of where its pixels were taken (its data
    are the Sentinel-2 product's ground on nested grids) and one LR pixel shorter each way: read as
    products and aligned (align: auto), the false georeferencing is measured by co-registration
    and undone."""
    from spectramorph_engine import FusionConfig, prepare_inputs
    from spectramorph_engine.sensors.degradation import apply_srf, area_downsample
    from spectramorph_engine.sensors.srf import camera_srf
    truth, wl = library_truth(90, ENMAP_BANDS)
    truth = (0.5 * truth).astype(np.float32)
    s2 = np.round(apply_srf(truth, camera_srf("sentinel2_10m", ENMAP_BANDS, wl)) * 10000 + 1000).astype(np.uint16)
    enmap = np.round(area_downsample(truth, 3)[:29, :29] / 1e-4).astype(np.int16)
    safe = write_sentinel2(tmp_path, s2, extension=".tif")
    folder = write_enmap(tmp_path, enmap, wl, np.full(ENMAP_BANDS, 8.0), origin=(ORIGIN[0] + 13.0, ORIGIN[1] - 7.0))
    cfg = FusionConfig(synthetic=False, hr_msi_file=str(safe), lr_hsi_file=str(folder), device="cpu")
    prep = prepare_inputs(cfg)
    h, w, _ = prep.lr_hsi.shape
    assert prep.hr_msi.shape[:2] == (3 * h, 3 * w) and h <= 29 and w <= 29
    record = prep.alignment
    moved = record["misregistration"]
    assert moved["corrected"] and np.allclose(moved["measured_m"], (13.0, -7.0), atol=1.0), moved
    assert "RMS misfit through a fitted SRF" in record["summary"] and moved["fit_gain"] > 4
    with pytest.raises(InputError, match="nested"):
        prepare_inputs(cfg.replace(align="off"))
