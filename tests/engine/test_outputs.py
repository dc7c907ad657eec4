"""All-or-nothing outputs: a run's files reach output_dir together or not at all; what killed
runs leave is finished (complete) or removed (incomplete) by the next run."""
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from spectramorph_engine import Cancelled, FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.io.atomic import TEMP_MARK
from spectramorph_engine.io.outputs import COMPLETE_MARKER, StagedOutputs, recover


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _leftovers(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if TEMP_MARK in p.name)


def _killed_staging(out: Path, complete: bool) -> Path:
    staging = out.parent / f".{out.name}{TEMP_MARK}{_dead_pid()}-abcd"
    staging.mkdir()
    (staging / "hr_hsi.npy").write_bytes(b"new result")
    (staging / "run.json").write_bytes(b"{\"new\": 1}")
    if complete:
        (staging / COMPLETE_MARKER).write_bytes(b"")
    return staging


def test_a_run_killed_while_moving_its_files_is_completed_by_the_next(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hr_hsi.npy").write_bytes(b"old result")
    (out / "notes.txt").write_bytes(b"the user's own file")
    _killed_staging(out, complete=True)
    staged = StagedOutputs(out)
    assert _snapshot(out) == {"hr_hsi.npy": b"new result", "notes.txt": b"the user's own file",
                              "run.json": b"{\"new\": 1}"}
    staged.abort()
    assert _leftovers(tmp_path) == []


def test_a_run_killed_before_its_files_were_complete_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "hr_hsi.npy").write_bytes(b"old result")
    _killed_staging(out, complete=False)
    assert recover(out)["removed"]
    assert _snapshot(out) == {"hr_hsi.npy": b"old result"} and _leftovers(tmp_path) == []


def test_a_live_runs_staging_folder_is_left_alone(tmp_path):
    out = tmp_path / "out"
    first = StagedOutputs(out)                 # this process: alive
    first.path("hr_hsi.npy").write_bytes(b"in progress")
    second = StagedOutputs(out)
    assert first.folder.exists() and first.path("hr_hsi.npy").read_bytes() == b"in progress"
    second.abort()
    first.commit()
    assert _snapshot(out) == {"hr_hsi.npy": b"in progress"} and _leftovers(tmp_path) == []


def _small_run_config(tmp_path, **kw):
    base = dict(epochs=15, hidden_size=16, num_endmembers=3, downsample_ratio=2, kernel_size=2, sigma=1.0,
                num_msi_bands=3, device="cpu", output_dir=str(tmp_path / "out"), log_dir=str(tmp_path / "logs"))
    base.update(kw)
    return FusionConfig(**base)


@pytest.fixture
def truth():
    from spectramorph_engine.run.demo import demo_scene
    return FusionInputs(truth=demo_scene(size=32, num_bands=20, seed=2)[0])


def test_cancel_while_saving_keeps_the_previous_outputs_byte_identical(tmp_path, truth, monkeypatch):
    cfg = _small_run_config(tmp_path)
    run_fusion(cfg, inputs=truth)
    before = _snapshot(tmp_path / "out")
    assert sorted(before) == ["abundances.png", "endmembers.png", "hr_hsi.npy", "metrics.json", "run.json"]
    cancel = threading.Event()
    from spectramorph_engine.quality import figures
    real_save = figures.save_figure

    def save_then_cancel(fig, path):
        out = real_save(fig, path)
        cancel.set()          # the user presses Stop once the new result and a figure are written
        return out
    monkeypatch.setattr(figures, "save_figure", save_then_cancel)
    with pytest.raises(Cancelled):
        run_fusion(cfg.replace(seed=5), inputs=truth, cancel=cancel)
    assert _snapshot(tmp_path / "out") == before and _leftovers(tmp_path) == []


def test_a_failure_while_writing_keeps_the_previous_outputs(tmp_path, truth, monkeypatch):
    cfg = _small_run_config(tmp_path, output_file_type="h5")
    run_fusion(cfg, inputs=truth)
    before = _snapshot(tmp_path / "out")
    from spectramorph_engine.quality import figures
    real_save = figures.save_figure
    calls = []

    def fail_second(fig, path):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk trouble in the middle of writing")
        return real_save(fig, path)
    monkeypatch.setattr(figures, "save_figure", fail_second)
    with pytest.raises(RuntimeError, match="disk trouble"):
        run_fusion(cfg.replace(seed=5), inputs=truth)
    assert len(calls) == 2                                # the result and one figure were written...
    assert _snapshot(tmp_path / "out") == before          # ... but never reached output_dir
    assert _leftovers(tmp_path) == []


def test_the_run_lists_its_outputs_where_they_end_up(tmp_path, truth):
    result = run_fusion(_small_run_config(tmp_path), inputs=truth)
    out = (tmp_path / "out").absolute()
    assert {Path(p).parent for p in result.output_files.values()} == {out}
    assert all(Path(p).is_file() for p in result.output_files.values())
    assert sorted(Path(p).name for p in result.output_files.values()) == sorted(_snapshot(out))
