"""Every method from the CLI, in both modes and every input format (issue 17).

Each case runs `spectramorph run` in-process on a tiny scene (the built-in demo scene,
32 x 32, so no data files are needed) and checks what a user sees: exit 0, nothing
that reads as an error, every output run.json lists, strict JSON everywhere, and a
summary in the method's own terms (a loss only for a trained network, an objective only
for an iterative solver, neither for GLP-HS).
"""
import json
import logging

import h5py
import numpy as np
import pytest
import rasterio
import scipy.io
import yaml
from rasterio.transform import from_origin

from spectramorph_engine.cli import main as cli
from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
from spectramorph_engine.run.demo import demo_scene
from spectramorph_engine.methods import METHOD_NAMES
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

SIZE, BANDS, RATIO = 32, 24, 2
FORMATS = ("npy", "mat", "h5", "geotiff")
MODES = ("synthetic", "real")

# What each method reports: its name in the summary, and the figure it has (None: neither)
EXPECTED = {
    "spectramorph": ("SpectraMorph", "final loss"),
    "glp": ("GLP-HS", None),
    "hysure": ("HySure", "final objective"),
}
FIGURES = ("final loss", "final objective")

# Each run kept tiny: few epochs and iterations, no auto-selection or refinement
FAST = {"epochs": 20, "hidden_size": 32, "num_endmembers": 4, "auto_select": False, "refine": False,
        "hysure_iterations": 10, "device": "cpu", "verbose": 0}


def test_the_matrix_covers_every_method():
    assert set(EXPECTED) == set(METHOD_NAMES), "a new method needs its expected summary here"


def _refuse(constant):
    raise ValueError(f"not JSON: bare {constant}")


def strict_load(path):
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse)


# --------------------------------------------------------------------------
# the inputs, written as other tools would write them

def _write(path, cube, fmt, pixel=10.0):
    if fmt == "npy":
        np.save(path, cube)
    elif fmt == "mat":
        scipy.io.savemat(path, {"cube": cube})
    elif fmt == "h5":
        with h5py.File(path, "w") as f:
            f.create_dataset("cube", data=cube)
    else:
        with rasterio.open(path, "w", driver="GTiff", height=cube.shape[0], width=cube.shape[1],
                           count=cube.shape[2], dtype="float32", crs="EPSG:32633",
                           transform=from_origin(500000.0, 4000000.0, pixel, pixel)) as ds:
            ds.write(np.moveaxis(cube, 2, 0))
    return path


SUFFIX = {"npy": ".npy", "mat": ".mat", "h5": ".h5", "geotiff": ".tif"}
OUTPUT_TYPE = {"npy": "numpy", "mat": "matlab", "h5": "h5", "geotiff": "geotiff"}   # the result as its input
NAN_BORDER = ("h5", "geotiff")      # real pairs in these formats lack data along the LR-HSI's left edge


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """(mode, format) -> the config keys that name that input pair."""
    folder = tmp_path_factory.mktemp("inputs")
    truth, wl = demo_scene(SIZE, BANDS)
    hr = apply_srf(truth, preset_srf(4, BANDS, wavelengths=wl)).astype(np.float32)
    lr = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), RATIO).astype(np.float32)
    holed = lr.copy()
    holed[:, 0] = np.nan
    keys = {}
    for fmt in FORMATS:
        ext = SUFFIX[fmt]
        keys["synthetic", fmt] = {"synthetic": True, "mat_key": "cube", "downsample_ratio": RATIO,
                                  "kernel_size": 3, "sigma": 1.0,
                                  "mat_file": str(_write(folder / f"truth_{fmt}{ext}", truth, fmt))}
        # nodata NaN: a valid setting (NaN is always no data) that once put a bare NaN into run.json
        lr_fmt = holed if fmt in NAN_BORDER else lr
        keys["real", fmt] = {"synthetic": False, "nodata": float("nan"),
                             "hr_msi_file": str(_write(folder / f"hr_{fmt}{ext}", hr, fmt, 10.0)),
                             "lr_hsi_file": str(_write(folder / f"lr_{fmt}{ext}", lr_fmt, fmt, 10.0 * RATIO))}
    return keys


# --------------------------------------------------------------------------
# the matrix

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_method_runs_from_the_cli_with_its_own_summary(method, mode, fmt, inputs, tmp_path, capsys):
    out, logs = tmp_path / "out", tmp_path / "logs"
    cfg = {**FAST, **inputs[mode, fmt], "method": method,
           "output_file_type": OUTPUT_TYPE[fmt], "output_dir": str(out), "log_dir": str(logs)}
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))

    rc = cli.main(["run", "--config", str(cfg_path), "--quiet"])
    stdout, stderr = capsys.readouterr()

    assert rc == 0, stderr
    assert "error" not in stderr.lower(), stderr
    # every output run.json lists is there, and every JSON file is strict JSON
    run = strict_load(out / "run.json")
    assert run["outputs"] and all((out / p).exists() for p in run["outputs"].values()), run["outputs"]
    for path in out.rglob("*.json"):
        strict_load(path)
    assert (out / ("metrics.json" if mode == "synthetic" else "consistency.json")).exists()
    if mode == "real":
        assert run["config"]["nodata"] is None                  # the NaN setting, written as null
        holes = (run.get("nodata") or {}).get("lr_pixels_without_data", 0)
        assert holes == (SIZE // RATIO if fmt in NAN_BORDER else 0)

    # the summary, run.json and the log speak of the method in its own terms
    name, figure = EXPECTED[method]
    assert stdout.startswith(f"{name}: HR-HSI (32, 32, {BANDS})"), stdout
    log_text = (logs / "spectramorph.log").read_text()
    for phrase in FIGURES:
        assert (phrase in stdout) == (phrase == figure), stdout
        assert (phrase in log_text) == (phrase == figure), log_text
    if mode == "synthetic":
        assert any(line.startswith(name + " ") for line in stdout.splitlines()), stdout   # metrics row
    assert run["method"] == method
    assert ("final_loss" in run) == (method == "spectramorph")
