"""All-or-nothing outputs: a CLI run killed with SIGKILL while loading, training or writing
leaves the previous run's outputs byte-identical; the next run cleans up after it."""
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

# Runs the real CLI (spectramorph_engine.cli.main) and, at the chosen point, prints KILL-ME and
# waits there for the test's SIGKILL: a kill at a known place, not at a guessed time.
WRAPPER = r'''
import os, sys, time
from spectramorph_engine import io
from spectramorph_engine.cli import main as cli
from spectramorph_engine.core import events
from spectramorph_engine.quality import figures

point = os.environ["KILL_POINT"]

def park():
    print("KILL-ME", flush=True)
    time.sleep(300)

if point == "loading":
    real_load = io.load_cube
    def load_cube(*args, **kw):
        real_load(*args, **kw)          # the input is read ...
        park()                          # ... and the run dies before it goes on
    io.load_cube = load_cube
elif point == "training":
    real_emit = events.emit
    def emit(progress, event):
        real_emit(progress, event)
        if isinstance(event, events.EpochEnd) and event.epoch == 3:
            park()
    events.emit = emit
elif point == "writing":
    real_save = figures.save_figure
    def save_figure(fig, path):
        out = real_save(fig, path)      # the result and one figure are complete ...
        park()                          # ... the other outputs are not
        return out
    figures.save_figure = save_figure
sys.exit(cli.main(sys.argv[1:]))
'''


def _snapshot(folder: Path) -> dict:
    """name -> bytes of everything in `folder`, hidden files included."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder.exists() else {}


def _temporaries(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp-" in p.name)


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "SPECTRAMORPH_THREADS": "1"}


def _run(cfg: Path, *overrides):
    args = [sys.executable, "-m", "spectramorph_engine", "run", "--config", str(cfg), "--quiet"]
    for o in overrides:
        args += ["--set", o]
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _run_and_kill(cfg: Path, wrapper: Path, point: str):
    # a training that would go on for minutes, so the kill surely lands in it
    epochs = ["--set", "epochs=1000000"] if point == "training" else []
    proc = subprocess.Popen([sys.executable, str(wrapper), "run", "--config", str(cfg), "--quiet", *epochs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**_env(), "KILL_POINT": point})
    deadline = time.monotonic() + 240
    seen = b""
    try:
        while b"KILL-ME" not in seen:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if ready else b""
            if not ready or (not line and proc.poll() is not None):
                pytest.fail(f"the run never reached '{point}': {proc.stderr.read().decode()[-2000:]}")
            seen += line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.slow
def test_sigkill_while_loading_training_or_writing_leaves_the_previous_outputs(tmp_path):
    from spectramorph_engine.run.demo import demo_scene
    truth = demo_scene(size=32, num_bands=30, seed=1)[0]
    np.save(tmp_path / "scene.npy", np.asarray(truth, dtype=np.float32))
    out, logs = tmp_path / "out", tmp_path / "logs"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({
        "synthetic": True, "mat_file": str(tmp_path / "scene.npy"), "epochs": 20, "hidden_size": 16,
        "num_endmembers": 3, "downsample_ratio": 2, "kernel_size": 2, "sigma": 1.0, "device": "cpu",
        "output_file_type": "h5", "output_dir": str(out), "log_dir": str(logs)}))
    wrapper = tmp_path / "killable_cli.py"
    wrapper.write_text(WRAPPER)

    _run(cfg)                                             # the previous run, complete
    previous = _snapshot(out)
    assert {"hr_hsi.h5", "endmembers.png", "abundances.png", "metrics.json", "run.json"} <= set(previous)
    previous_logs = _snapshot(logs)

    for point in ("loading", "training", "writing"):
        _run_and_kill(cfg, wrapper, point)
        assert _snapshot(out) == previous, f"killed while {point}: the outputs changed"
        assert _snapshot(logs)["spectramorph.log"] == previous_logs["spectramorph.log"]
        assert _snapshot(logs)["config_used.yaml"] == previous_logs["config_used.yaml"]

    # the kills left temporaries behind (staging folders, a temporary log) ...
    assert _temporaries(tmp_path)
    _run(cfg, "seed=7")                                   # ... which the next run removes
    assert _temporaries(tmp_path) == []
    now = _snapshot(out)
    assert sorted(now) == sorted(previous)                # exactly the expected files, all new
    assert now["hr_hsi.h5"] != previous["hr_hsi.h5"] and now["run.json"] != previous["run.json"]
