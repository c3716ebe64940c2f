"""Atomic writing of files and folders that never replaces anything silently.

Every output of the package goes through here:

* :func:`atomic_write` yields a temporary file next to the destination and moves it into
  place when the block succeeds (``fsync`` first), so a reader or a crash sees the old
  file or the whole new one, never a half-written one;
* :func:`atomic_folder` does the same for a folder (a saved model): the new folder is
  written beside the old one and the two are swapped in one step where the system allows
  it (Linux ``renameat2(RENAME_EXCHANGE)``), so a kill at any moment leaves the old
  folder or the new one at the destination;
* :func:`check_output` checks a destination before any computation starts: no
  existing file without ``overwrite``, never a folder where a file goes, never one of
  the inputs, and the folder it goes into exists.

Temporary names carry the writing process's id (``.<name>.useg-<pid>-<random>``); a
later write to the same place removes those whose process is gone (left by a kill).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_write", "atomic_folder", "check_output", "clean_stale_temporaries"]

_TAG = "useg"
_STALE = re.compile(rf"^\.(?P<name>.+)\.{_TAG}-(?P<pid>\d+)-")


def _exists_message(dest: Path) -> str:
    return f"{dest} exists; pass overwrite=True (CLI: --overwrite) to replace it"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(dest: str | os.PathLike) -> list[Path]:
    """Remove temporaries of this package left beside ``dest`` by a killed process.

    Only names of the form ``.<dest name>.useg-<pid>-...`` whose process no longer
    runs are removed; returns what was removed.
    """
    dest = Path(dest)
    removed: list[Path] = []
    if not dest.parent.is_dir():
        return removed
    for p in dest.parent.iterdir():
        m = _STALE.match(p.name)
        if m is None or m["name"] != dest.name or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


def _same_or_inside(path: Path, other: Path) -> bool:
    """Whether ``path`` is ``other`` or a folder that contains it."""
    try:
        p, o = path.resolve(), other.resolve()
    except OSError:  # pragma: no cover - unreadable path: compare as given
        p, o = path.absolute(), other.absolute()
    return p == o or p in o.parents


def check_output(path: str | os.PathLike, *, overwrite: bool = False,
                 inputs: Iterable[str | os.PathLike] = (), folder: bool = False) -> Path:
    """Check a destination before any work starts; return it as a :class:`~pathlib.Path`.

    Parameters
    ----------
    path : path-like
        The file (or, with ``folder=True``, the folder) to be written.
    overwrite : bool
        Whether an existing destination may be replaced.
    inputs : iterable of path-like
        The run's inputs; the destination may not be one of them, nor a folder holding one.
    folder : bool
        Whether the destination is a folder (a saved model) rather than a file.

    Raises
    ------
    FileExistsError
        If the destination exists and ``overwrite`` is false.
    IsADirectoryError, NotADirectoryError
        If a folder stands where a file goes, or the other way round.
    ValueError
        If the destination is, or contains, one of the inputs.
    FileNotFoundError
        If the folder it goes into does not exist (files only: model folders get
        their parent made).
    """
    dest = Path(path)
    if dest.is_dir() and not folder:
        raise IsADirectoryError(f"{dest} is a folder; name a file to write")
    for inp in inputs:
        if _same_or_inside(dest, Path(inp)):
            raise ValueError(f"output {dest} is the input {inp} or a folder holding it; "
                             "choose another output")
    if dest.exists() and folder and not dest.is_dir():
        raise NotADirectoryError(f"{dest} is a file; name a folder for the model")
    if dest.exists() and not overwrite:
        raise FileExistsError(_exists_message(dest))
    if not folder and not dest.parent.is_dir():
        raise FileNotFoundError(f"folder {dest.parent} does not exist (for {dest})")
    return dest


def _fsync(path: Path) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - e.g. folders on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without fsync on folders
        pass
    finally:
        os.close(fd)


def _normal_mode(path: Path, *, folder: bool) -> None:
    """mkstemp/mkdtemp make 0600/0700 entries; give the result a normal new entry's mode."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if folder else 0o666) & ~umask)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, overwrite: bool = False,
                 suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place when the block succeeds.

    The data are flushed to disk (``fsync``) before the move, and the move is atomic
    (readers see either nothing, the old file, or the whole new file); a failure
    inside the block leaves no file behind.

    Parameters
    ----------
    path : path-like
        Destination.
    overwrite : bool
        Replace an existing file; otherwise an existing destination raises.
    suffix : str, optional
        Suffix of the temporary file (so writers that pick a format by extension
        still work); defaults to the destination's suffix.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false (checked before and at the move).
    IsADirectoryError
        If ``path`` is a folder.
    FileNotFoundError
        If the destination folder does not exist.
    """
    dest = check_output(path, overwrite=overwrite)
    clean_stale_temporaries(dest)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.{_TAG}-{os.getpid()}-",
                                    suffix=suffix or dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _normal_mode(tmp, folder=False)
        _fsync(tmp)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile: no clobbering
            except FileExistsError:
                raise FileExistsError(_exists_message(dest)) from None
            except OSError:  # file systems without hard links
                if dest.exists():
                    raise FileExistsError(_exists_message(dest)) from None
                os.replace(tmp, dest)
        _fsync(dest.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:  # pragma: no cover - no C library found
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:  # pragma: no cover - old glibc, macOS
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    res = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return res == 0


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike, *, overwrite: bool = False,
                  replaceable: Callable[[Path], bool] | None = None,
                  what: str = "folder") -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; put it in place when the block succeeds.

    An existing destination is replaced only with ``overwrite`` and only when
    ``replaceable(path)`` says it is one of ours (e.g. a model folder written by this
    package), never an arbitrary folder. The old and new folders are swapped in one
    step where the system allows it, so a kill at any moment leaves the old folder or
    the new one at ``path``; elsewhere the old one is moved aside first and removed
    last.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    ValueError
        If ``path`` exists but ``replaceable`` does not accept it.
    """
    dest = check_output(path, overwrite=overwrite, folder=True)
    if dest.exists() and replaceable is not None and not replaceable(dest):
        raise ValueError(f"{dest} is not a {what} written by napari-useg; refusing to replace "
                         "it: choose another output folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{_TAG}-{os.getpid()}-", dir=dest.parent))
    try:
        yield tmp
        _normal_mode(tmp, folder=True)
        for f in tmp.iterdir():
            _fsync(f)
        _fsync(tmp)
        if not dest.exists():
            try:
                os.rename(tmp, dest)  # refuses a non-empty folder that appeared meanwhile
            except OSError:
                raise FileExistsError(_exists_message(dest)) from None
        elif _exchange(tmp, dest):
            pass  # tmp now holds the old folder, removed below
        else:  # pragma: no cover - systems without renameat2
            aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{_TAG}-{os.getpid()}-",
                                          dir=dest.parent))
            os.rename(dest, aside / "old")
            os.rename(tmp, dest)
            shutil.rmtree(aside, ignore_errors=True)
        _fsync(dest.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
