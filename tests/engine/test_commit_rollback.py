"""A commit of a run's outputs is a transaction: it fails before moving anything (a folder in
the way), or undoes its moves when a rename fails half-way (no space, no permission, a
read-only file system, an interrupt), or -- killed -- is finished or undone by the next run.
output_dir always ends up wholly old or wholly new, compared byte for byte."""
import errno
import os
import re
import shutil
import signal
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from spectramorph_engine import FusionConfig, FusionInputs, run_fusion
from spectramorph_engine.io.atomic import TEMP_MARK
from spectramorph_engine.core.errors import InputError
from spectramorph_engine.io.outputs import COMPLETE_MARKER, ROLLBACK_MARKER, StagedOutputs, recover

OBSOLETE = "hr_hsi_wavelengths.txt"      # a file of the previous result the new one drops
# renames of one commit of the layout below: the journal, then per name (sorted) previous
# version aside + new one in (2), a name new to output_dir (1), the obsolete file aside (1)
N_RENAMES = 1 + 2 * 6 + 1 + 1


def _tree(folder: Path) -> dict:
    """relative path -> bytes (a folder: None), everything under `folder`."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def _leftovers(root: Path) -> list:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if TEMP_MARK in p.name)


def _write_tree(folder: Path, tree: dict) -> None:
    for rel, data in tree.items():
        path = folder / rel
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _small_config(root: Path, **kw) -> FusionConfig:
    base = dict(epochs=15, hidden_size=16, num_endmembers=3, downsample_ratio=2, kernel_size=2, sigma=1.0,
                num_msi_bands=3, device="cpu", refine=False, output_dir=str(root / "out"),
                log_dir=str(root / "logs"))
    base.update(kw)
    return FusionConfig(**base)


@pytest.fixture(scope="module")
def truth():
    from spectramorph_engine.run.demo import demo_scene
    return FusionInputs(truth=demo_scene(size=32, num_bands=20, seed=2)[0])


# the files of two real runs (see `runs`); `first`: the first run's output_dir, untouched
Runs = namedtuple("Runs", "old new first")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, truth):
    """(previous output_dir, new staged outputs): two real runs' files, plus a folder output
    (a zarr store), a file new to output_dir, an obsolete file and a file of the user's."""
    root = tmp_path_factory.mktemp("runs")
    old, new = {}, {}
    for seed, tree in ((1, old), (5, new)):
        cfg = _small_config(root / str(seed), seed=seed)
        run_fusion(cfg, inputs=truth)
        tree.update(_tree(Path(cfg.output_dir)))
    assert sorted(old) == ["abundances.png", "endmembers.png", "hr_hsi.npy", "metrics.json", "run.json"]
    assert all(old[k] != new[k] for k in ("hr_hsi.npy", "run.json"))
    old.update({"hr_hsi.zarr": None, "hr_hsi.zarr/.zarray": b"old meta", "hr_hsi.zarr/0.0.0": b"old chunk",
                OBSOLETE: b"400\n410\n", "notes.txt": b"the user's own file"})
    new.update({"hr_hsi.zarr": None, "hr_hsi.zarr/.zarray": b"new meta", "hr_hsi.zarr/1.0.0": b"new chunk",
                "consistency.json": b'{"new": true}'})
    return Runs(old, new, root / "1" / "out")


def _expected_new(old: dict, new: dict) -> dict:
    out = {k: v for k, v in old.items() if k != OBSOLETE and not k.startswith("hr_hsi.zarr")}
    out.update(new)
    return out


def _stage(out: Path, new: dict) -> StagedOutputs:
    """What the pipeline does: a StagedOutputs, every output written into it, an obsolete name."""
    staged = StagedOutputs(out)
    _write_tree(staged.folder, new)
    staged.obsolete(OBSOLETE)
    return staged


def _setup(tmp_path, runs, name="out"):
    old, new = runs.old, runs.new
    out = tmp_path / name
    _write_tree(out, old)
    return out, _tree(out), _expected_new(old, new), new


class _Renames:
    """os.replace that does `action` at the k-th call (and, `persistent`, at every later call
    that `touches` says may fail)."""

    def __init__(self, k, action, persistent=False, touches=lambda src, dst: True):
        self.real, self.k, self.action, self.persistent, self.touches = os.replace, k, action, persistent, touches
        self.calls = 0

    def __call__(self, src, dst, **kw):
        self.calls += 1
        if self.calls == self.k or (self.persistent and self.calls > self.k and self.touches(src, dst)):
            self.action(src, dst)
        return self.real(src, dst, **kw)


def _oserror(code):
    def fail(src, dst):
        raise OSError(code, os.strerror(code), str(src), None, str(dst))
    return fail


def test_a_commit_makes_exactly_the_renames_counted_and_gives_the_new_outputs(tmp_path, runs, monkeypatch):
    out, before, after, new = _setup(tmp_path, runs)
    staged = _stage(out, new)
    counter = _Renames(0, None)
    monkeypatch.setattr(os, "replace", counter)
    moved = staged.commit()
    assert counter.calls == N_RENAMES         # so the positions below cover every rename
    assert _tree(out) == after and before != after
    assert sorted(p.name for p in moved) == sorted(k for k in new if "/" not in k)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
@pytest.mark.parametrize("k", range(1, N_RENAMES + 1))
def test_a_rename_failing_at_any_point_leaves_output_dir_as_before(tmp_path, runs, monkeypatch, k, code):
    """No space / a read-only file (EACCES: chmod cannot make one for root) / a read-only file
    system at the k-th rename: everything moved is put back, the error names the path."""
    out, before, _, new = _setup(tmp_path, runs)
    staged = _stage(out, new)
    monkeypatch.setattr(os, "replace", _Renames(k, _oserror(code)))
    with pytest.raises(InputError, match=os.strerror(code)) as info:
        staged.commit()
    staged.abort()                      # what the pipeline does next
    message = str(info.value)
    assert str(out) in message and "\n" not in message
    if k == 1:                          # the journal: nothing moved yet
        assert "nothing was changed" in message
    else:                               # a move: the path it failed on is named
        assert f"cannot move '{out}{os.sep}" in message and "left as it was" in message
    assert _tree(out) == before
    assert _leftovers(tmp_path) == []


class Interrupted(BaseException):
    """Stands for KeyboardInterrupt / SystemExit arriving in the middle of the moves."""


@pytest.mark.parametrize("k", range(1, N_RENAMES + 1))
def test_an_interrupt_in_the_middle_of_the_moves_is_undone_and_raised_again(tmp_path, runs, monkeypatch, k):
    out, before, _, new = _setup(tmp_path, runs)
    staged = _stage(out, new)

    def interrupt(src, dst):
        raise Interrupted()
    monkeypatch.setattr(os, "replace", _Renames(k, interrupt))
    with pytest.raises(Interrupted):
        with staged:
            staged.commit()
    assert _tree(out) == before and _leftovers(tmp_path) == []


def _commit_killed_at(out: Path, new: dict, k: int) -> None:
    """A child process stages `new` for `out` and commits, SIGKILLed at its k-th rename (before
    doing it): no handler, no finally runs, as with a real kill."""
    pid = os.fork()
    if pid == 0:                        # the child: never returns into pytest
        code = 3
        try:
            staged = _stage(out, new)

            def kill(src, dst):
                os.kill(os.getpid(), signal.SIGKILL)
            os.replace = _Renames(k, kill)
            staged.commit()
            code = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if k <= N_RENAMES:
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    else:
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
@pytest.mark.parametrize("k", range(1, N_RENAMES + 2))
def test_a_run_killed_during_its_commit_is_finished_by_the_next_run(tmp_path, runs, k):
    """Killed before the journal is in place (k = 1): the next run drops the staging folder
    (output_dir old); killed later: the next run finishes the moves (output_dir new)."""
    out, before, after, new = _setup(tmp_path, runs, name="scene.v2")   # a dot in the name
    _commit_killed_at(out, new, k)
    if 1 < k <= N_RENAMES:              # a mixture of old and new until the next run starts
        assert len(list(tmp_path.glob(f".scene.v2{TEMP_MARK}*/{COMPLETE_MARKER}"))) == 1
    StagedOutputs(out).abort()          # the next run starts (and is cancelled at once)
    assert _tree(out) == (before if k == 1 else after)
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_killed_commit_that_can_no_longer_be_finished_is_undone(tmp_path, runs):
    out, before, _, new = _setup(tmp_path, runs)
    _commit_killed_at(out, new, 3)      # the journal in place, the previous abundances.png set aside
    assert "abundances.png" not in _tree(out)
    (out / "consistency.json").mkdir()  # then a folder takes the name of an output not moved yet
    report = recover(out)
    assert len(report["undone"]) == 1
    assert _tree(out) == {**before, "consistency.json": None} and _leftovers(tmp_path) == []


@pytest.mark.parametrize("k", range(3, N_RENAMES + 1))     # from the 3rd on, something has moved
def test_a_commit_that_cannot_be_undone_either_is_undone_by_the_next_run(tmp_path, runs, monkeypatch, k):
    """output_dir turns read-only at the k-th rename: the moves cannot be undone now; the
    staging folder and its journal (marked to be undone) stay, even through abort(), and the
    next run -- here in the same process, as in the app -- puts the previous files back."""
    out, before, _, new = _setup(tmp_path, runs)
    staged = _stage(out, new)
    touches_out = lambda src, dst: out in (Path(src).parent, Path(dst).parent)  # noqa: E731
    monkeypatch.setattr(os, "replace", _Renames(k, _oserror(errno.EROFS), persistent=True, touches=touches_out))
    with pytest.raises(InputError, match=r"nor undo .* will put back the previous outputs"):
        staged.commit()
    staged.abort()
    assert (staged.folder / ROLLBACK_MARKER).is_file()
    monkeypatch.undo()
    StagedOutputs(out).abort()
    assert _tree(out) == before and _leftovers(tmp_path) == []


def test_a_commit_whose_undo_cannot_even_be_recorded_is_finished_by_the_next_run(tmp_path, runs, monkeypatch):
    out, before, after, new = _setup(tmp_path, runs)
    staged = _stage(out, new)
    monkeypatch.setattr(os, "replace", _Renames(6, _oserror(errno.EROFS), persistent=True))
    with pytest.raises(InputError, match=r"will finish moving the new ones in"):
        staged.commit()
    staged.abort()
    assert (staged.folder / COMPLETE_MARKER).is_file()
    monkeypatch.undo()
    StagedOutputs(out).abort()
    assert _tree(out) == after and _leftovers(tmp_path) == []


def test_a_folder_in_the_way_refuses_the_commit_before_anything_moves(tmp_path, runs, monkeypatch):
    out, _, _, new = _setup(tmp_path, runs)
    (out / "metrics.json").unlink()
    (out / "metrics.json").mkdir()
    (out / "metrics.json" / "mine.txt").write_bytes(b"the user's")
    before = _tree(out)
    staged = _stage(out, new)
    counter = _Renames(0, None)
    monkeypatch.setattr(os, "replace", counter)
    with pytest.raises(InputError, match=re.escape(f"'{out / 'metrics.json'}' is a folder in the way")):
        staged.commit()
    staged.abort()
    assert counter.calls == 0 and _tree(out) == before and _leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- through run_fusion

def _after_a_good_run(tmp_path, runs):
    """The config of a second run, into an output_dir holding a first run's outputs."""
    cfg = _small_config(tmp_path, seed=5)
    shutil.copytree(runs.first, cfg.output_dir)
    return cfg, Path(cfg.output_dir).absolute()


def test_a_folder_squatting_an_output_name_leaves_output_dir_exactly_as_before(tmp_path, truth, runs):
    """Issue 17: a directory named metrics.json in output_dir after a good run."""
    cfg, out = _after_a_good_run(tmp_path, runs)
    (out / "metrics.json").unlink()
    (out / "metrics.json").mkdir()
    (out / "metrics.json" / "mine.txt").write_bytes(b"the user's")
    before = _tree(out)
    with pytest.raises(InputError) as info:
        run_fusion(cfg, inputs=truth)
    message = str(info.value)
    assert f"'{out / 'metrics.json'}' is a folder in the way" in message
    assert "\n" not in message and message.count(". ") == 0
    assert _tree(out) == before and _leftovers(tmp_path) == []


def test_a_folder_in_the_way_is_refused_before_the_run(tmp_path, truth, runs, monkeypatch):
    """The commit would refuse it after all the work: the run refuses it before any."""
    from spectramorph_engine.run import pipeline
    cfg, out = _after_a_good_run(tmp_path, runs)
    (out / "run.json").unlink()
    (out / "run.json").mkdir()
    before = _tree(out)

    def no_work(*_a, **_k):
        raise AssertionError("the run started")
    monkeypatch.setattr(pipeline, "prepare_inputs", no_work)
    with pytest.raises(InputError, match=re.escape(f"'{out / 'run.json'}' is a folder in the way")):
        run_fusion(cfg, inputs=truth)
    assert _tree(out) == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("k", [1, 3])
def test_a_full_disk_while_a_run_commits_leaves_output_dir_as_before(tmp_path, truth, runs, monkeypatch, k):
    cfg, out = _after_a_good_run(tmp_path, runs)
    before = _tree(out)
    moves_into_out = lambda src, dst: Path(dst).parent == out  # noqa: E731
    real = os.replace
    seen = []

    def replace(src, dst, **kw):
        if moves_into_out(src, dst) and len(seen) < k:      # (then the undo's moves)
            seen.append(dst)
            if len(seen) == k:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src), None, str(dst))
        return real(src, dst, **kw)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(InputError) as info:
        run_fusion(cfg, inputs=truth)
    assert len(seen) == k
    assert str(info.value).startswith(f"cannot move '{seen[-1]}' into place (No space left on device)")
    assert _tree(out) == before and _leftovers(tmp_path) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_refuses_the_commit(tmp_path, runs):
    out, before, _, new = _setup(tmp_path, runs)
    staged = _stage(out, new)
    out.chmod(0o555)
    try:
        with pytest.raises(InputError, match=re.escape(f"output folder '{out}' cannot be written")):
            staged.commit()
        staged.abort()
    finally:
        out.chmod(0o755)
    assert _tree(out) == before and _leftovers(tmp_path) == []
