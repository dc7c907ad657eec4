"""All-or-nothing outputs: a run's files appear in `output_dir` together, or not at all.

A run writes every output file into a private staging folder
(`.<output_dir name>.tmp-<pid>-xxxx`, beside `output_dir`; inside it when the
parent cannot be written or lies on another file system) and moves them into
`output_dir` only once all of them are complete (`commit`). Before the moves
start, a marker file says the staging folder is complete. So:

- a cancelled or failed run (`abort`) or one killed before the marker leaves
  `output_dir` exactly as it was; the next run deletes its staging folder;
- a run killed during the moves (a few renames, microseconds) leaves the
  marker, and the next run finishes the moves before it starts its own.

Files of `output_dir` that a run does not write are left alone (it may be a
folder with other things in it). Staging folders of processes still running
are never touched, so two runs may share an output folder's parent.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict

from .atomic import TEMP_MARK, _alive, _writer_pid, remove_temporaries, temp_name
from .errors import InputError

log = logging.getLogger(__name__)

# Present in a staging folder once every file in it is complete and the moves may start.
COMPLETE_MARKER = ".complete"


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _stale_folders(target: Path) -> list:
    """Staging folders of `target` left by processes that are no longer running."""
    prefix = f".{target.name}{TEMP_MARK}"
    found = []
    for folder in {target.parent, target}:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink() \
                    and not _alive(_writer_pid(entry.name)):
                found.append(entry)
    return found


def _move_into(staging: Path, target: Path) -> list:
    """Move every file of `staging` (but the marker) into `target`, and every folder (a chunked
    result such as a zarr store); the names moved."""
    moved = []
    for entry in sorted(staging.iterdir()):
        if entry.name == COMPLETE_MARKER or entry.is_symlink():
            continue
        if entry.is_file():
            os.replace(entry, target / entry.name)
        elif entry.is_dir():
            _replace_folder(entry, target / entry.name)
        else:
            continue
        moved.append(entry.name)
    return moved


def _replace_folder(src: Path, dst: Path) -> None:
    """A folder output moved over the previous one: a rename cannot replace a non-empty folder,
    so the previous one is first renamed aside (a hidden temporary name with our pid, which
    remove_temporaries clears if we die before deleting it), then deleted."""
    aside = None
    if dst.is_dir() and not dst.is_symlink():
        aside = dst.with_name(f"{temp_name(dst)}old")
        os.replace(dst, aside)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    os.replace(src, dst)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def recover(target) -> dict:
    """Deal with what killed runs left for `target`: finish the moves of a complete staging
    folder, delete an incomplete one. Returns {"finished": [...], "removed": [...]} (names)."""
    target = Path(target).expanduser().absolute()
    report: Dict[str, list] = {"finished": [], "removed": []}
    for staging in _stale_folders(target):
        try:
            if (staging / COMPLETE_MARKER).exists() and target.is_dir():
                _move_into(staging, target)
                report["finished"].append(staging.name)
            else:
                report["removed"].append(staging.name)
            shutil.rmtree(staging)
        except OSError as exc:
            log.warning("could not clean up '%s': %s", staging, exc)
    if target.is_dir():       # a previous folder output renamed aside by a run killed while replacing it
        report["removed"] += remove_temporaries(target)
    if report["finished"]:
        log.info("completed the outputs of an interrupted run in '%s'", target)
    if report["removed"]:
        log.info("removed the unfinished outputs of an interrupted run beside '%s'", target)
    return report


class StagedOutputs:
    """The staging folder of one run's outputs.

        staged = StagedOutputs(config.output_dir)   # recovers after killed runs, checks writability
        save_cube(staged.path("hr_hsi.npy"), cube)  # every output written into it
        staged.commit()                             # all files move into output_dir
        # or staged.abort() (cancel, failure): output_dir untouched

    `final(name)` is where a file will be once committed (what run.json lists).
    """

    def __init__(self, output_dir):
        self.target = Path(output_dir).expanduser().absolute()
        try:
            self.target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output folder '{self.target}' cannot be created: {exc.strerror or exc}") from None
        if not self.target.is_dir():
            raise InputError(f"output folder '{self.target}' is not a folder")
        recover(self.target)
        self.folder = self._make_folder()
        self.done = False
        self._obsolete: list = []

    def _make_folder(self) -> Path:
        prefix = temp_name(self.target)
        # beside output_dir (as the user sees it: nothing half-made inside), unless the parent is
        # not writable or another file system (a rename could not move the files then)
        places = [self.target.parent, self.target] if _same_device(self.target.parent, self.target) \
            else [self.target]
        error = None
        for place in places:
            try:
                return Path(tempfile.mkdtemp(prefix=prefix, dir=place))
            except OSError as exc:
                error = exc
        raise InputError(f"output folder '{self.target}' cannot be written: "
                         f"{getattr(error, 'strerror', None) or error}") from None

    def path(self, name: str) -> Path:
        """Where to write the output file `name` now."""
        return self.folder / name

    def final(self, name: str) -> Path:
        """Where the output file `name` will be after commit."""
        return self.target / name

    def obsolete(self, name: str) -> None:
        """A file of output_dir that describes the previous result and must go with it (a
        wavelength list beside a .npy result now saved without one); removed at commit."""
        self._obsolete.append(name)

    def commit(self) -> list:
        """Move every staged file into output_dir; returns their final paths."""
        if self.done:
            raise RuntimeError("outputs already committed or aborted")
        (self.folder / COMPLETE_MARKER).write_bytes(b"")
        try:
            moved = _move_into(self.folder, self.target)
            for name in self._obsolete:
                if name not in moved:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.target / name)
        except OSError as exc:
            raise InputError(f"output folder '{self.target}' cannot be written: {exc.strerror or exc}") from None
        self.done = True
        shutil.rmtree(self.folder, ignore_errors=True)
        return [self.target / n for n in moved]

    def abort(self) -> None:
        """Drop everything staged; output_dir stays as it was."""
        if not self.done:
            self.done = True
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.done:
            with contextlib.suppress(Exception):
                self.abort()
