"""Atomic writing: the one way every file of the project is written.

A file is written under a temporary name in its target folder, flushed to
disk, given the permissions a plain `open(path, "w")` would give it (the
user's umask; `mkstemp` alone makes it private, 0600), and renamed over the
target in one step. A reader therefore sees either the old file or the whole
new one, never a partial file, whatever stops the writer (an exception, a
cancel, a kill). Temporary names are hidden and carry `TEMP_MARK` and the
writer's process id (`.hr_hsi.tmp-4242-x8d1.npy`), so what a killed writer
left behind is recognised and removed by the next run
(`remove_temporaries`), while a writer still alive keeps its files.

    with atomic_path("out/hr_hsi.npy") as tmp:      # for writers that want a path
        np.save(tmp, cube)
    with atomic_open("out/run.json", "w") as fh:    # for writers that want a file object
        fh.write(text)
    atomic_write_text("out/run.json", text)

Errors of the file system (no space, no permission, a folder in the way)
become `InputError` naming the target: the user can fix them.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator, Union

from ..core.errors import InputError

PathLike = Union[str, os.PathLike]

# Every temporary file or folder made here carries this in its name.
TEMP_MARK = ".tmp-"


def umask_mode(executable: bool = False) -> int:
    """The permissions a new file gets from the user's umask (0o644 with the usual 022)."""
    mask = _read_umask()
    return (0o777 if executable else 0o666) & ~mask


def _read_umask() -> int:
    # os.umask can only be read by setting it, which races with other threads creating files;
    # Linux shows it in /proc without changing it.
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_name(target: Path) -> str:
    """Prefix for a temporary file or folder beside `target`: hidden, TEMP_MARK, our pid."""
    return f".{target.stem}{TEMP_MARK}{os.getpid()}-"


def _writer_pid(name: str) -> int:
    """The process id in a temporary name, or 0 when there is none."""
    rest = name.split(TEMP_MARK, 1)[1] if TEMP_MARK in name else ""
    head = rest.split("-", 1)[0]
    return int(head) if head.isdigit() and "-" in rest else 0


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:            # exists, owned by someone else
        return True
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """Whether `pid` has exited but its parent has not reaped it yet (a zombie: signal 0 still
    reaches it). Its files are as orphaned as a dead process's: a killed worker stays one until
    its parent (a Dask nanny, say) collects it. Read from /proc (Linux);
    elsewhere a zombie counts as alive and its files wait for the next run."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return False
    # "pid (command) state ...": the command may hold spaces and parentheses, the state follows
    # the last ")"
    end = stat.rfind(b")")
    return end >= 0 and stat[end + 2:end + 3] in (b"Z", b"X")


def _folder_of(target: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"output folder '{folder}' cannot be created: {exc.strerror or exc}") from None
    return folder


# fsync errors that say "this file system cannot sync files at all", not "your data did not
# reach the disk": EINVAL (Linux: the file system or special file does not implement fsync --
# some FUSE and network mounts), ENOTSUP/EOPNOTSUPP (the same on BSD and macOS, some Linux
# file systems), ENOSYS. Nothing more can be done there; the rename still keeps every reader
# from seeing a partial file. Every other error (EIO, ENOSPC, EDQUOT: a delayed write failed,
# e.g. on NFS or a thin volume; EROFS: the file system went read-only under us) means the data
# may be lost, and renaming it over the previous file would replace good data with bad.
_FSYNC_UNSUPPORTED = frozenset(getattr(errno, name) for name in ("EINVAL", "ENOTSUP", "EOPNOTSUPP", "ENOSYS")
                               if hasattr(errno, name))


def fsync_fd(fd: int) -> None:
    """os.fsync that raises only when the data may not be on disk (see _FSYNC_UNSUPPORTED)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _FSYNC_UNSUPPORTED:
            raise


def _fsync_file(path: Path) -> None:
    """Flush a file we have just written to disk; OSError when its data may not be there (the
    callers then drop it and keep the previous file). A file that cannot even be opened again
    (gone, or a umask that denies its owner reading) fails the write too: it is unchecked."""
    # POSIX fsyncs a read-only descriptor; Windows' _commit needs one open for writing (EBADF)
    flags = os.O_RDWR | getattr(os, "O_BINARY", 0) if os.name == "nt" else os.O_RDONLY
    fd = os.open(path, flags)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # makes the rename itself durable; not possible on every platform (Windows), hence optional
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit(tmp: PathLike, target: PathLike) -> None:
    """Give the finished temporary file `tmp` the user's permissions and rename it onto `target`."""
    tmp, target = Path(tmp), Path(target)
    os.chmod(tmp, umask_mode())
    _fsync_file(tmp)
    os.replace(tmp, target)
    _fsync_folder(target.parent if str(target.parent) else Path("."))


def discard(path: PathLike) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so writers that pick the format by
    suffix still work); on success it replaces `path` in one rename.

    On any exception (including KeyboardInterrupt and cancellation) the temporary file is
    removed and `path`, if it existed, is untouched. The temporary file exists (empty) when
    the block starts; writers that refuse to overwrite need their `force` option.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise InputError(f"cannot write '{target}': it is a folder")
    folder = _folder_of(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_name(target), suffix=target.suffix, dir=folder)
    except OSError as exc:
        raise InputError(f"output folder '{folder}' cannot be written: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        commit(tmp, target)
    except OSError as exc:
        discard(tmp)
        # a full disk, a lost permission, a folder now in the way: the user's to fix
        raise InputError(f"cannot write '{target}': {exc.strerror or exc}") from None
    except BaseException:
        discard(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", encoding: str = "utf-8") -> Iterator[IO]:
    """An open temporary file (`mode` "w" or "wb") committed onto `path` when the block ends."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes new files: mode 'w' or 'wb', not {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": encoding})) as fh:
            yield fh


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def remove_temporaries(folder: PathLike) -> list:
    """Remove what killed writers left in `folder`: hidden files and folders whose names
    carry TEMP_MARK and the id of a process that is no longer running (a writer still at
    work, in this process or another, keeps its own). Returns the names removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or TEMP_MARK not in entry.name:
            continue
        if _alive(_writer_pid(entry.name)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry.name)
        except OSError:
            continue
    return removed


class AtomicLogHandler(logging.StreamHandler):
    """A log file that is never seen half-written: one run's records go to a temporary
    file beside `path`; `close()` replaces `path` by its old content followed by this run's
    records, in one atomic rename. A run killed before `close()` leaves only its temporary
    file, which the next run removes."""

    def __init__(self, path: PathLike, encoding: str = "utf-8"):
        self.path = Path(path).expanduser()
        folder = _folder_of(self.path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_name(self.path), suffix=self.path.suffix, dir=folder)
        except OSError as exc:
            raise InputError(f"log folder '{folder}' cannot be written: {exc.strerror or exc}") from None
        self.tmp = Path(tmp)
        super().__init__(os.fdopen(fd, "w", encoding=encoding))

    def close(self) -> None:
        self.acquire()
        try:
            stream = self.stream
            if stream is None or stream.closed:
                return
            stream.flush()
            stream.close()
            try:
                with atomic_open(self.path, "wb") as out:
                    if self.path.is_file():
                        with open(self.path, "rb") as old:
                            shutil.copyfileobj(old, out)
                    with open(self.tmp, "rb") as new:
                        shutil.copyfileobj(new, out)
            finally:
                discard(self.tmp)
        finally:
            self.release()
            super().close()
