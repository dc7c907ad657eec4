"""All-or-nothing outputs: a run's files appear in `output_dir` together, or not at all.

A run writes every output file into a private staging folder
(`.<output_dir name>.tmp-<pid>-xxxx`, beside `output_dir`; inside it when the
parent cannot be written or lies on another file system) and moves them into
`output_dir` only once all of them are complete (`commit`), as one transaction:

1. check: every name it will take in `output_dir` must be free, a file where a
   file goes, a folder where a folder output (a zarr store) goes; a folder (or
   anything else) in the way, or an output folder it cannot write, refuses the
   commit with one sentence naming the path -- nothing moved;
2. journal: the plan (each name and its kind) goes into the marker file
   `.complete` of the staging folder, written whole (temporary + rename) and
   flushed to disk. From here on the staging folder is what finishes or undoes
   the commit; `abort` never deletes it while the commit is open;
3. moves, name by name: the previous version in `output_dir` (if any) is renamed
   into the staging folder's `.previous/`, then the new one into `output_dir`;
   an obsolete file of the previous result is renamed into `.previous/` too.
   Every rename stays inside one file system: it needs no space and cannot
   half-happen;
4. done: the folders are flushed, the marker is removed, then the staging
   folder (with the previous versions) is deleted.

How far the moves went is read from where the files are, never from a log
written after a move: for each name of the plan, the new version is still in
the staging folder (not moved), or `.previous/` holds the old one (set aside),
or both are gone from there (done). So there is no window between a rename and
its record.

A rename that fails (no space, no permission, a read-only file system) undoes
the commit at once: the marker is renamed to `.rollback` (the decision), every
new file goes back into the staging folder, every previous version back into
`output_dir`; the error is an `InputError` naming the path. Any other exception
during the moves (KeyboardInterrupt, a cancel) is undone the same way and
raised again.

A run killed during the moves leaves the staging folder and its marker. The
next run with the same output folder (`recover`, when `StagedOutputs` is made)
FINISHES a commit whose marker is `.complete` -- all its files were complete
and checked, and the journal says it was under way -- and falls back to undoing
it when it can no longer be finished (a folder now in the way); it UNDOES one
whose marker is `.rollback`. Either way `output_dir` ends up wholly old or
wholly new. A staging folder without a marker (killed before step 2, or after
step 4 began) is simply deleted. A commit that can be neither finished nor
undone stops the next run with an `InputError` naming the staging folder
rather than mixing a new run's files with it.

Files of `output_dir` that a run does not write are left alone (it may be a
folder with other things in it). Staging folders of processes still running
(and of runs still open in this process) are never touched, so two runs may
share an output folder's parent.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Dict, List, Optional

from .atomic import TEMP_MARK, _alive, _fsync_folder, _writer_pid, fsync_fd, remove_temporaries
from ..core.errors import InputError

log = logging.getLogger(__name__)

# The journal: present in a staging folder once every file in it is complete and the moves
# may start; holds the plan. Renamed to ROLLBACK_MARKER when the commit is being undone.
COMPLETE_MARKER = ".complete"
ROLLBACK_MARKER = ".rollback"
# Previous versions of the files a commit replaces (and obsolete ones), until it is done.
PREVIOUS = ".previous"
_JOURNAL_TMP = ".journal-being-written"
_RESERVED = frozenset({COMPLETE_MARKER, ROLLBACK_MARKER, PREVIOUS, _JOURNAL_TMP})

# Staging folders of this process still in use, by (device, inode): however the output folder
# is spelled. A folder of our own pid not listed here was left by an earlier run of this
# process (the app) whose commit could not be resolved then.
_ACTIVE: set = set()
_ACTIVE_LOCK = threading.Lock()


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _prefix(target: Path) -> str:
    """Name prefix of the staging folders of `target` (its full name: `out.v2` is not `out`)."""
    return f".{target.name}{TEMP_MARK}"


def _identity(folder: Path):
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _stale_folders(target: Path) -> list:
    """Staging folders of `target` left by processes that are no longer running (or by runs of
    this process that are over)."""
    prefix = _prefix(target)
    found = []
    for folder in {target.parent, target}:
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if not (entry.name.startswith(prefix) and entry.is_dir() and not entry.is_symlink()):
                continue
            pid = _writer_pid(entry.name)
            if pid == os.getpid():
                with _ACTIVE_LOCK:
                    if _identity(entry) in _ACTIVE:
                        continue
            elif _alive(pid):
                continue
            found.append(entry)
    return found


# ----------------------------------------------------------------------------- the transaction

def _kind(path: Path) -> Optional[str]:
    """'file' (a regular file or a link), 'folder' (a real folder), 'other', or None (absent)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return "file"
    return "folder" if stat.S_ISDIR(mode) else "other"


def _plan(staging: Path, target: Path, obsolete=()) -> List[dict]:
    """The steps of a commit: every file and folder of `staging` (sorted), then every obsolete
    file of `target` (one the new result does not replace; a folder of that name is not ours)."""
    steps = []
    for entry in sorted(staging.iterdir()):
        kind = _kind(entry)
        if entry.name in _RESERVED or entry.is_symlink() or kind not in ("file", "folder"):
            continue
        steps.append({"name": entry.name, "kind": kind})
    moved = {s["name"] for s in steps}
    for name in dict.fromkeys(obsolete):
        if name not in moved and name not in _RESERVED and _kind(target / name) == "file":
            steps.append({"name": name, "kind": "obsolete"})
    return steps


def _in_the_way(staging: Path, target: Path, steps) -> Optional[str]:
    """Why the commit cannot start (one sentence naming the path), or None. Only steps not yet
    done are looked at (a recovery checks a commit under way)."""
    if not os.access(target, os.W_OK | os.X_OK):
        return f"output folder '{target}' cannot be written (permission denied)"
    for step in steps:
        if step["kind"] == "obsolete" or _kind(staging / step["name"]) is None:
            continue
        dst = target / step["name"]
        found = _kind(dst)
        if found is None or found == step["kind"]:
            continue
        what = {"file": "a file", "folder": "a folder"}.get(found, "not a regular file")
        wanted = "file" if step["kind"] == "file" else "folder"
        return f"'{dst}' is {what} in the way of the output {wanted} '{step['name']}'"
    return None


def _forward(staging: Path, target: Path, step: dict) -> None:
    """Do one step (or what is left of it): the previous version aside, the new one in."""
    name = step["name"]
    new, dst, old = staging / name, target / name, staging / PREVIOUS / name
    if step["kind"] == "obsolete":
        if _kind(dst) == "file" and _kind(old) is None:
            os.replace(dst, old)
        return
    if _kind(new) is None:
        return                                   # done
    if _kind(dst) is not None:
        if _kind(old) is not None:               # set aside already, and something new there since
            raise FileExistsError(17, "something else took its place", str(dst))
        os.replace(dst, old)
    os.replace(new, dst)


def _backward(staging: Path, target: Path, step: dict) -> None:
    """Undo one step (or what of it was done): the new version back, the previous one in."""
    name = step["name"]
    new, dst, old = staging / name, target / name, staging / PREVIOUS / name
    if step["kind"] != "obsolete" and _kind(new) is None and _kind(dst) is not None:
        os.replace(dst, new)
    if _kind(old) is not None:
        os.replace(old, dst)


def _write_journal(staging: Path, target: Path, steps) -> None:
    """The marker, whole or absent: written under another name, flushed, renamed."""
    (staging / PREVIOUS).mkdir(exist_ok=True)
    data = json.dumps({"target": str(target), "steps": steps}, indent=1).encode("utf-8")
    tmp = staging / _JOURNAL_TMP
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        fsync_fd(fd)
    finally:
        os.close(fd)
    os.replace(tmp, staging / COMPLETE_MARKER)
    _fsync_folder(staging)


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and os.sep not in name \
        and not (os.altsep and os.altsep in name)


def _read_journal(staging: Path):
    """(marker name, steps, with backups, target) of a staging folder; (None, None, False, None)
    when it has no marker. A marker without a plan (written by an earlier version: empty, and
    its moves kept no previous versions) gives the staged files as the plan, which can only be
    finished."""
    for marker in (ROLLBACK_MARKER, COMPLETE_MARKER):
        path = staging / marker
        if not path.is_file():
            continue
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
            steps, target = journal["steps"], journal.get("target")
            if not all(isinstance(s, dict) and s.get("kind") in ("file", "folder", "obsolete")
                       and _plain_name(s.get("name")) for s in steps):
                raise ValueError("bad step")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return marker, _plan(staging, staging), False, None
        return marker, steps, True, target
    return None, None, False, None


def _same_folder(a, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError, ValueError):
        return False


def _close(staging: Path, target: Path) -> None:
    """The commit is over (done or undone): flushed, marker gone first (a staging folder
    without one is deleted by the next run), then the folder and the previous versions."""
    _fsync_folder(target)
    _fsync_folder(staging)
    for marker in (COMPLETE_MARKER, ROLLBACK_MARKER):
        with contextlib.suppress(OSError):     # if it stays, the next run sees all done/undone
            os.unlink(staging / marker)
    shutil.rmtree(staging, ignore_errors=True)


def _undo(staging: Path, target: Path, steps) -> None:
    """Record the decision to undo (a rename: needs no space), then undo every step; raises
    OSError when a step cannot be undone (the journal stays for the next run)."""
    if (staging / COMPLETE_MARKER).exists():
        try:
            os.replace(staging / COMPLETE_MARKER, staging / ROLLBACK_MARKER)
        except OSError as exc:
            log.warning("could not mark '%s' to be undone: %s", staging, exc)
    for step in reversed(steps):
        _backward(staging, target, step)
    _close(staging, target)


def _resolve(staging: Path, target: Path) -> str:
    """Finish or undo the commit a killed run left in `staging` (see the module doc):
    "finished", "undone", "removed" (no commit under way) or "skipped" (the staging folder of
    another output folder of the same name, /a/out's inside /a/out when it is /a/out/out). Raises OSError or InputError when
    it can be neither finished nor undone."""
    marker, steps, undoable, journal_target = _read_journal(staging)
    if journal_target is not None and not _same_folder(journal_target, target):
        return "skipped"         # another output folder's, of the same name (inside this one)
    if marker is None or not target.is_dir():
        shutil.rmtree(staging, ignore_errors=True)
        if staging.exists():
            log.warning("could not remove the unfinished outputs in '%s'", staging)
        return "removed"
    if marker == COMPLETE_MARKER:
        try:
            why = _in_the_way(staging, target, steps)
            if why is not None:
                raise InputError(why)
            (staging / PREVIOUS).mkdir(exist_ok=True)      # missing in an earlier version's
            for step in steps:
                _forward(staging, target, step)
            _close(staging, target)
            return "finished"
        except (OSError, InputError) as exc:
            if not undoable:
                raise
            log.warning("could not finish the interrupted commit in '%s' (%s): undoing it", staging, exc)
    _undo(staging, target, steps)
    return "undone"


def recover(target) -> dict:
    """Deal with what killed runs left for `target`: finish (or, when that is impossible,
    undo) the commit of a staging folder with a marker, delete one without. Returns
    {"finished": [...], "undone": [...], "removed": [...]} (staging folder names). InputError
    when a commit can be neither finished nor undone (the next run must not mix with it)."""
    target = Path(target).expanduser().absolute()
    report: Dict[str, list] = {"finished": [], "undone": [], "removed": []}
    for staging in _stale_folders(target):
        try:
            outcome = _resolve(staging, target)
            if outcome in report:
                report[outcome].append(staging.name)
        except (OSError, InputError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise InputError(f"output folder '{target}' holds the outputs of an interrupted run in "
                             f"'{staging}' that can be neither finished nor undone now ({reason}): "
                             f"free the space or permission it needs and run again") from None
    if target.is_dir():       # what killed writers (or an earlier version's commits) left in it
        report["removed"] += remove_temporaries(target)
    if report["finished"]:
        log.info("completed the outputs of an interrupted run in '%s'", target)
    if report["undone"]:
        log.info("undid the unfinished commit of an interrupted run in '%s'", target)
    if report["removed"]:
        log.info("removed the unfinished outputs of an interrupted run beside '%s'", target)
    return report


class StagedOutputs:
    """The staging folder of one run's outputs.

        staged = StagedOutputs(config.output_dir)   # recovers after killed runs, checks writability
        save_cube(staged.path("hr_hsi.npy"), cube)  # every output written into it
        staged.commit()                             # all files move into output_dir, or none
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
        self._steps: Optional[list] = None     # set while a commit is open (journal written, not closed)

    def _make_folder(self) -> Path:
        prefix = f"{_prefix(self.target)}{os.getpid()}-"
        # beside output_dir (as the user sees it: nothing half-made inside), unless the parent is
        # not writable or another file system (a rename could not move the files then)
        places = [self.target.parent, self.target] if _same_device(self.target.parent, self.target) \
            else [self.target]
        error = None
        for place in places:
            try:
                folder = Path(tempfile.mkdtemp(prefix=prefix, dir=place))
            except OSError as exc:
                error = exc
                continue
            self._identity = _identity(folder)
            with _ACTIVE_LOCK:
                _ACTIVE.add(self._identity)
            return folder
        raise InputError(f"output folder '{self.target}' cannot be written: "
                         f"{getattr(error, 'strerror', None) or error}") from None

    def _release(self) -> None:
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self._identity)

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
        """Move every staged file into output_dir, all or none (see the module doc); returns
        their final paths. InputError naming the path when something is in the way or a move
        fails (output_dir then as it was)."""
        if self.done:
            raise RuntimeError("outputs already committed or aborted")
        steps = _plan(self.folder, self.target, self._obsolete)
        why = _in_the_way(self.folder, self.target, steps)
        if why is not None:
            raise InputError(f"{why}: nothing was changed in the output folder")
        self._steps = steps                    # open: from here on abort() must not just delete
        path = None
        try:
            _write_journal(self.folder, self.target, steps)
            for step in steps:
                path = self.target / step["name"]
                _forward(self.folder, self.target, step)
        except BaseException as exc:
            undone = self._undo()
            if not isinstance(exc, OSError):
                raise                          # KeyboardInterrupt, a bug: undone, raised again
            reason = exc.strerror or exc
            if path is None:                   # the journal: nothing was moved
                raise InputError(f"cannot write the outputs into '{self.target}' ({reason}): "
                                 f"nothing was changed in the output folder") from None
            if undone:
                raise InputError(f"cannot move '{path}' into place ({reason}): "
                                 f"the output folder '{self.target}' was left as it was") from None
            then = "put back the previous outputs" if (self.folder / ROLLBACK_MARKER).exists() \
                else "finish moving the new ones in"
            raise InputError(f"cannot move '{path}' into place ({reason}), nor undo the moves made: "
                             f"the next run with output folder '{self.target}' will {then}") from None
        self._steps = None
        self.done = True
        _close(self.folder, self.target)
        self._release()                        # (after: a run beside sees no open commit of ours)
        return [self.target / s["name"] for s in steps if s["kind"] != "obsolete"]

    def _undo(self) -> bool:
        """Undo the open commit; False (the journal kept for the next run) when it cannot be."""
        self.done = True
        try:
            _undo(self.folder, self.target, self._steps)
        except OSError as exc:
            log.warning("could not undo the moves into '%s' (%s): the next run with this output "
                        "folder will finish or undo them", self.target, exc)
            self._release()                    # a later run of this process may resolve it
            return False
        self._steps = None
        self._release()
        return True

    def abort(self) -> None:
        """Drop everything staged; output_dir stays as it was. A commit still open (its undo
        was interrupted or failed) is undone, or, failing that, left with its journal for the
        next run: never deleted half-way."""
        if self._steps is not None:
            self._undo()
            return
        if not self.done:
            self.done = True
            shutil.rmtree(self.folder, ignore_errors=True)
            self._release()

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.done:
            with contextlib.suppress(Exception):
                self.abort()
