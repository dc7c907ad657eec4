"""Batch fusion (issue 13): a manifest of pairs fused as Dask tasks on a LocalCluster of two
worker processes, one broken scene reported without stopping the others, a worker killed
mid-batch, resume, the tiled run of one scene against run_fusion's own result file, and the
in-process path used without Dask."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.ndimage import gaussian_filter

from spectramorph_engine.scale import batch
from spectramorph_engine.run.config import FusionConfig
from spectramorph_engine.sensors.degradation import apply_srf, area_downsample, blur
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.sensors.psf import make_psf
from spectramorph_engine.sensors.srf import preset_srf

ROOT = Path(__file__).resolve().parents[2]
RATIO = 4
# small and quick: a scene fuses in about a second on one thread once a worker is warm
BASE = {"synthetic": False, "epochs": 40, "hidden_size": 32, "num_endmembers": 3, "auto_select": False,
        "refine": False, "device": "cpu"}


def make_pair(folder: Path, stem: str, seed: int, size: int = 32, bands: int = 24, truth_out=None):
    """An HR-MSI (4 bands) / LR-HSI (ratio 4) pair mixed from 3 random spectra, as .npy files
    (`truth_out`: a list the ground truth is appended to)."""
    rng = np.random.default_rng(seed)
    spectra = rng.uniform(0.1, 1.0, (3, bands))
    maps = gaussian_filter(rng.dirichlet(np.ones(3), (size, size)), (2, 2, 0))
    truth = (maps @ spectra).astype(np.float32)
    msi = apply_srf(truth, preset_srf(4, bands)).astype(np.float32)
    lr = area_downsample(blur(truth, make_psf("gaussian", 1.0, 5)), RATIO).astype(np.float32)
    np.save(folder / f"{stem}_hr.npy", msi)
    np.save(folder / f"{stem}_lr.npy", lr)
    if truth_out is not None:
        truth_out.append(truth)
    return msi, lr


def write_csv(path: Path, rows, columns=("hr_msi_file", "lr_hsi_file")):
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def temporaries(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name)


def complete(folder: Path) -> bool:
    run = json.loads((folder / "run.json").read_text())
    return all(Path(p).exists() for p in run["outputs"].values())


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("distributed")
    from dask.distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "SPECTRAMORPH_THREADS": "1"}


def run_cli(*args, cwd=None, code=None):
    cmd = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "spectramorph_engine", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=_env(), timeout=600)


# --------------------------------------------------------------------------- on the cluster

def test_four_pairs_one_broken_then_resume(client, tmp_path):
    for i, stem in enumerate("abc"):
        make_pair(tmp_path, stem, seed=i)
    # the fourth scene's LR-HSI holds nothing but NaN
    make_pair(tmp_path, "d", seed=3)
    np.save(tmp_path / "d_lr.npy", np.full((8, 8, 24), np.nan, dtype=np.float32))
    write_csv(tmp_path / "pairs.csv", [{"hr_msi_file": f"{s}_hr.npy", "lr_hsi_file": f"{s}_lr.npy"} for s in "abcd"])
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    base, keys = batch.load_base(tmp_path / "base.yaml")
    scenes = batch.load_manifest(tmp_path / "pairs.csv", base, keys)
    assert [s.name for s in scenes] == ["a_hr", "b_hr", "c_hr", "d_hr"]

    rows = batch.run_batch(scenes, client)
    status = {r["scene"]: r for r in rows}
    assert [status[s]["status"] for s in ("a_hr", "b_hr", "c_hr")] == ["ok"] * 3
    assert status["d_hr"]["status"] == "failed"
    assert "d_lr.npy" in status["d_hr"]["error"] and "no valid pixel" in status["d_hr"]["error"]
    outputs = tmp_path / "outputs"
    for s in ("a_hr", "b_hr", "c_hr"):
        assert complete(outputs / s)
        assert np.load(outputs / s / "hr_hsi.npy").shape == (32, 32, 24)
        assert status[s]["lr_psnr_db"] > 25          # the consistency figures reach the summary
    assert not (outputs / "d_hr").exists()           # the failed scene leaves no folder
    assert temporaries(tmp_path) == []

    # resume: the three finished scenes are skipped (their files untouched), the broken one tried again
    stamps = {s: (outputs / s / "run.json").stat().st_mtime_ns for s in ("a_hr", "b_hr", "c_hr")}
    rows = batch.run_batch(scenes, client)
    assert [r["status"] for r in rows] == ["skipped (complete)"] * 3 + ["failed"]
    assert rows[0]["lr_psnr_db"] == status["a_hr"]["lr_psnr_db"]     # figures read back from the files
    assert {s: (outputs / s / "run.json").stat().st_mtime_ns for s in stamps} == stamps

    # the same through the command line, on this cluster's scheduler: exit 1, the failure listed,
    # the summary as CSV and JSON beside the manifest
    proc = run_cli("batch", str(tmp_path / "pairs.csv"), "--config", str(tmp_path / "base.yaml"),
                   "--scheduler", client.scheduler.address)
    assert proc.returncode == 1, proc.stderr
    assert "failed: d_hr:" in proc.stdout and "no valid pixel" in proc.stdout
    assert "0 succeeded, 3 skipped (complete), 1 failed" in proc.stdout
    summary = json.loads((tmp_path / "batch_summary.json").read_text())
    assert summary["counts"] == {"ok": 0, "failed": 1, "skipped": 3}
    csv_lines = (tmp_path / "batch_summary.csv").read_text().splitlines()
    assert csv_lines[0].startswith("scene,status,seconds,lr_psnr_db")
    assert len(csv_lines) == 5 and csv_lines[4].startswith("d_hr,failed,")
    assert "Traceback" not in proc.stderr


def test_a_worker_killed_mid_batch_is_rescheduled(client, tmp_path):
    stems = "pqrst"
    for i, stem in enumerate(stems):
        make_pair(tmp_path, stem, seed=10 + i)
    write_csv(tmp_path / "pairs.csv", [{"hr_msi_file": f"{s}_hr.npy", "lr_hsi_file": f"{s}_lr.npy"} for s in stems])
    # long enough trainings (a few seconds each) that the kill lands inside a scene
    base = FusionConfig(**{**BASE, "epochs": 4000, "output_dir": str(tmp_path / "out"),
                           "log_dir": str(tmp_path / "logs")})
    scenes = batch.load_manifest(tmp_path / "pairs.csv", base, {"output_dir", "log_dir"})
    client.wait_for_workers(2)
    killed = {}

    def on_result(row):
        if killed:
            return
        busy = {w: keys for w, keys in client.processing().items() if keys}
        assert busy, "no scene running when the first one finished"
        worker, keys = next(iter(busy.items()))
        pid = client.run(os.getpid, workers=[worker])[worker]
        os.kill(pid, signal.SIGKILL)
        killed.update(worker=worker, keys=list(keys), time=time.time())

    rows = batch.run_batch(scenes, client, on_result=on_result)
    assert killed, "the kill did not happen"
    assert [r["status"] for r in rows] == ["ok"] * len(stems), rows
    for s in scenes:
        assert complete(Path(s.config.output_dir))
    # the scene that was running on the killed worker ran again elsewhere and finished after the kill
    lost = [int(str(k).split("-")[1]) for k in killed["keys"]]
    for i in lost:
        assert (Path(scenes[i].config.output_dir) / "run.json").stat().st_mtime > killed["time"]
    # no staging folder or half-written file anywhere
    assert temporaries(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(s.name for s in scenes)


def test_tiled_inference_equals_the_in_process_result(client, tmp_path):
    """One scene tiled over the two workers (16 chunks of 8 x 8 HR pixels read lazily from a
    GeoTIFF, the LR-HSI from .h5 for the prior) against run_fusion's result file."""
    zarr = pytest.importorskip("zarr")
    from spectramorph_engine.io import save_cube
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.scale.tiled import run_tiled
    msi, lr = make_pair(tmp_path, "big", seed=7)
    msi[3, 5] = np.nan              # a pixel without data: NaN in both results
    save_cube(tmp_path / "big_hr.tif", msi)
    save_cube(tmp_path / "big_lr.h5", lr)
    config = FusionConfig(**{**BASE, "refine": True, "auto_select": True, "spec_prior": True,
                             "hr_msi_file": str(tmp_path / "big_hr.tif"), "lr_hsi_file": str(tmp_path / "big_lr.h5"),
                             "output_dir": str(tmp_path / "tiled"), "log_dir": str(tmp_path / "logs")})
    notes = []
    out = run_tiled(config, client, chunk=8, on_note=notes.append)
    assert out["chunks"] == 16
    assert any("auto-selection off" in n for n in notes)       # said, not silently dropped
    run = json.loads((tmp_path / "tiled" / "run.json").read_text())
    assert run["config_used"]["auto_select"] is False and run["tiled"]["not_done"]
    # a scene with nodata pixels is not refined in tiled mode: said in run.json
    assert run["method_info"]["refined"] is False and any("nodata" in w for w in run["warnings"])
    tiled = zarr.open_array(str(tmp_path / "tiled" / "hr_hsi.zarr"), mode="r")
    assert tiled.chunks == (8, 8, 24)
    reference = run_fusion(config.replace(refine=False, auto_select=False, output_dir=str(tmp_path / "ref")))
    assert reference.method_info["prior"] is True
    expected = np.load(tmp_path / "ref" / "hr_hsi.npy")
    got = tiled[:]
    assert np.isnan(got[3, 5]).all() and np.isnan(expected[3, 5]).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
    assert temporaries(tmp_path) == []
    # a complete tiled run is skipped on resume like any other
    scene = batch.Scene("big", 1, config)
    assert batch.complete_run(config) is not None
    from spectramorph_engine.scale.tiled import run_batch_tiled
    assert run_batch_tiled([scene], client)[0]["status"] == "skipped (complete)"


def test_a_tiled_run_refines_each_chunk_as_the_whole_scene_run_does(client, tmp_path):
    """192 x 192 HR pixels in 4 chunks of 96 (windows of 160 with the default halo of 64): the
    tiled run refines (run.json says so, with the scene's prior weight) and scores within 0.1 dB
    PSNR of run_fusion's whole-scene refinement against the truth."""
    zarr = pytest.importorskip("zarr")
    from spectramorph_engine.quality import metrics
    from spectramorph_engine.run.pipeline import run_fusion
    from spectramorph_engine.scale.tiled import run_tiled
    truth = []
    make_pair(tmp_path, "r", seed=5, size=192, truth_out=truth)
    # 60 ADMM iterations (not 200): the same comparison at a third of the suite's time
    config = FusionConfig(**{**BASE, "refine": True, "refine_iterations": 60, "hr_msi_file": str(tmp_path / "r_hr.npy"),
                             "lr_hsi_file": str(tmp_path / "r_lr.npy"), "output_dir": str(tmp_path / "tiled"),
                             "log_dir": str(tmp_path / "logs")})
    out = run_tiled(config, client, chunk=96)
    assert out["chunks"] == 4
    run = json.loads((tmp_path / "tiled" / "run.json").read_text())
    assert run["method_info"]["refined"] is True and run["tiled"]["not_done"]
    assert run["method_info"]["refinement"]["tiled"]["halo"] == 64
    tiled = zarr.open_array(str(tmp_path / "tiled" / "hr_hsi.zarr"), mode="r")[:]
    whole = run_fusion(config.replace(output_dir=str(tmp_path / "whole")))
    assert whole.method_info["refined"] is True
    assert run["method_info"]["refinement"]["prior_weight"] == pytest.approx(
        whole.method_info["refinement"]["prior_weight"], rel=1e-4)
    # the subspace estimated once from the whole LR-HSI, as the whole-scene run estimates it
    tiled_ref, whole_ref = run["method_info"]["refinement"], whole.method_info["refinement"]
    assert tiled_ref["subspace_dim"] == whole_ref["subspace_dim"]
    assert {**tiled_ref["subspace_estimate"], "seconds": 0} == {**whole_ref["subspace_estimate"], "seconds": 0}
    expected = np.load(tmp_path / "whole" / "hr_hsi.npy")
    unrefined = run_fusion(config.replace(refine=False, output_dir=str(tmp_path / "net")))
    # the scores in the result's units: the truth mapped as the LR-HSI was (units: input)
    psnr = [metrics.psnr(truth[0], cube) for cube in (tiled, expected)]
    assert abs(psnr[0] - psnr[1]) < 0.1, psnr
    assert psnr[1] > metrics.psnr(truth[0], np.load(tmp_path / "net" / "hr_hsi.npy"))
    assert unrefined.method_info["refined"] is False


# --------------------------------------------------------------------------- manifests and exit codes

def test_yaml_manifest_names_paths_and_overrides(tmp_path):
    sub = tmp_path / "data"
    sub.mkdir()
    (sub / "m.yaml").write_text(yaml.safe_dump({"scenes": [
        {"name": "north", "hr_msi_file": "n_hr.npy", "lr_hsi_file": "n_lr.npy", "epochs": 7},
        {"hr_msi_file": "x/s_hr.npy", "lr_hsi_file": "x/s_lr.npy", "output_dir": "elsewhere"},
        {"hr_msi_file": "y/s_hr.npy", "lr_hsi_file": "y/s_lr.npy"}]}))
    base = FusionConfig(epochs=50)
    scenes = batch.load_manifest(sub / "m.yaml", base)
    assert [s.name for s in scenes] == ["north", "s_hr", "s_hr-2"]
    assert scenes[0].config.epochs == 7 and scenes[1].config.epochs == 50
    assert scenes[0].config.hr_msi_file == str(sub / "n_hr.npy")            # against the manifest's folder
    assert scenes[0].config.output_dir == str(sub / "outputs" / "north")
    assert scenes[1].config.output_dir == str(sub / "elsewhere")
    assert all(s.config.synthetic is False for s in scenes)


@pytest.mark.parametrize("text, sentence", [
    ("hr_msi_file,lr_hsi_file,epoch\na.npy,b.npy,5\n", "row 1: unknown column(s) 'epoch'"),
    ("hr_msi_file,epochs\na.npy,5\n", "row 1: key 'lr_hsi_file' is not set"),
    ("hr_msi_file,lr_hsi_file,epochs\na.npy,b.npy,5\nc.npy,d.npy,lots\n", "row 2: config key 'epochs' must be an integer"),
    ("hr_msi_file,lr_hsi_file,output_dir\na.npy,b.npy,same\nc.npy,d.npy,same\n", "row 2: output folder"),
    ("hr_msi_file,lr_hsi_file\n", "lists no scene"),
])
def test_bad_manifest_exits_2_with_one_line(tmp_path, text, sentence):
    (tmp_path / "pairs.csv").write_text(text)
    proc = run_cli("batch", str(tmp_path / "pairs.csv"), "--scheduler", "none")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: manifest '") and sentence in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    with pytest.raises(InputError):
        batch.load_manifest(tmp_path / "pairs.csv", FusionConfig())


def test_bad_base_config_and_scheduler_exit_2(tmp_path):
    write_csv(tmp_path / "pairs.csv", [{"hr_msi_file": "a.npy", "lr_hsi_file": "b.npy"}])
    (tmp_path / "base.yaml").write_text("epochs: -3\n")
    proc = run_cli("batch", str(tmp_path / "pairs.csv"), "--config", str(tmp_path / "base.yaml"))
    assert proc.returncode == 2 and "error:" in proc.stderr and "epochs" in proc.stderr
    proc = run_cli("batch", str(tmp_path / "pairs.csv"), "--scheduler", "udp:/nowhere")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr


# Runs the CLI as if Dask were not installed (its import fails).
NO_DASK = """
import sys
for name in ("dask", "distributed", "dask.distributed", "dask.array"):
    sys.modules[name] = None
from spectramorph_engine.cli import main as cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_without_dask_the_scenes_run_one_after_another(tmp_path):
    make_pair(tmp_path, "a", seed=0)
    make_pair(tmp_path, "b", seed=1)
    (tmp_path / "b_lr.npy").write_bytes(b"not an array")
    write_csv(tmp_path / "pairs.csv", [{"hr_msi_file": f"{s}_hr.npy", "lr_hsi_file": f"{s}_lr.npy"} for s in "ab"])
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    args = ("batch", str(tmp_path / "pairs.csv"), "--config", str(tmp_path / "base.yaml"))
    proc = run_cli(*args, code=NO_DASK)
    assert "Dask is not installed" in proc.stderr and "pip install" in proc.stderr
    assert "one after another" in proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert "failed: b_hr: '" in proc.stdout and "b_lr.npy" in proc.stdout
    assert complete(tmp_path / "outputs" / "a_hr") and not (tmp_path / "outputs" / "b_hr").exists()
    # the broken file replaced: only b runs (a is complete), and every scene is now fine: exit 0
    make_pair(tmp_path, "b", seed=1)
    proc = run_cli(*args, "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    assert "1 succeeded, 1 skipped (complete), 0 failed" in proc.stdout
    # tiled mode needs Dask: said at once, exit 2
    proc = run_cli(*args, "--tiles", code=NO_DASK)
    assert proc.returncode == 2 and "needs Dask" in proc.stderr and "pip install" in proc.stderr


def test_the_engine_imports_no_dask():
    code = ("import sys, spectramorph_engine, spectramorph_engine.run.pipeline, spectramorph_engine.scale.batch, "
            "spectramorph_engine.scale.tiled, spectramorph_engine.cli.main\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'zarr')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# --------------------------------------------------------------------------- what resume accepts
# Issue 17 item 3: a resume that accepted any run.json (no settings or file check) passed every
# test above, and --no-resume had none. In this process, one small scene each.

@pytest.fixture()
def one_done(tmp_path):
    """One scene fused (in this process) into outputs/a_hr: (scenes, its output folder)."""
    make_pair(tmp_path, "a", seed=0)
    write_csv(tmp_path / "pairs.csv", [{"hr_msi_file": "a_hr.npy", "lr_hsi_file": "a_lr.npy"}])
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    base, keys = batch.load_base(tmp_path / "base.yaml")
    scenes = batch.load_manifest(tmp_path / "pairs.csv", base, keys)
    assert [r["status"] for r in batch.run_batch(scenes)] == ["ok"]
    out = tmp_path / "outputs" / "a_hr"
    assert batch.complete_run(scenes[0].config) is not None
    assert [r["status"] for r in batch.run_batch(scenes)] == [batch.STATUS_SKIPPED]
    return scenes, out


def _stamp(out: Path) -> int:
    return (out / "run.json").stat().st_mtime_ns


def test_resume_reruns_a_scene_made_with_other_settings(one_done):
    scenes, out = one_done
    before = _stamp(out)
    other = [batch.Scene(s.name, s.row, s.config.replace(epochs=s.config.epochs + 1)) for s in scenes]
    assert batch.complete_run(other[0].config) is None
    assert [r["status"] for r in batch.run_batch(other)] == ["ok"]
    assert _stamp(out) != before
    assert json.loads((out / "run.json").read_text())["config"]["epochs"] == BASE["epochs"] + 1
    # a run.json with no settings at all is no finished run either
    run = json.loads((out / "run.json").read_text())
    del run["config"]
    (out / "run.json").write_text(json.dumps(run))
    assert batch.complete_run(other[0].config) is None


def test_resume_reruns_a_scene_whose_listed_file_is_missing(one_done):
    scenes, out = one_done
    run = json.loads((out / "run.json").read_text())
    assert Path(run["outputs"]["hr_hsi"]).exists()
    Path(run["outputs"]["hr_hsi"]).unlink()
    assert batch.complete_run(scenes[0].config) is None
    assert [r["status"] for r in batch.run_batch(scenes)] == ["ok"]
    assert np.load(out / "hr_hsi.npy").shape == (32, 32, 24)
    # a run.json that lists no result is not complete
    run = json.loads((out / "run.json").read_text())
    run["outputs"] = {k: v for k, v in run["outputs"].items() if k != "hr_hsi"}
    (out / "run.json").write_text(json.dumps(run))
    assert batch.complete_run(scenes[0].config) is None


def test_no_resume_reruns_a_complete_scene(one_done, capsys):
    from spectramorph_engine.cli import main as cli
    scenes, out = one_done
    tmp_path = out.parent.parent
    args = ["batch", str(tmp_path / "pairs.csv"), "--config", str(tmp_path / "base.yaml"), "--scheduler", "none",
            "--quiet"]
    before = _stamp(out)
    assert cli.main(args) == 0
    assert "0 succeeded, 1 skipped (complete), 0 failed" in capsys.readouterr().out
    assert _stamp(out) == before
    assert cli.main(args + ["--no-resume"]) == 0
    assert "1 succeeded, 0 skipped (complete), 0 failed" in capsys.readouterr().out
    assert _stamp(out) != before and batch.complete_run(scenes[0].config) is not None
