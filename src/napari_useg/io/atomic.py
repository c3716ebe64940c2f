"""Atomic file writing that never overwrites silently."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, overwrite: bool = False,
                 suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place when the block succeeds.

    The final move is atomic (readers see either nothing, the old file, or the
    whole new file), and a failure inside the block leaves no file behind.

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
    FileNotFoundError
        If the destination folder does not exist.
    """
    dest = Path(path)
    if dest.exists() and not overwrite:
        raise FileExistsError(
            f"{dest} exists; pass overwrite=True (CLI: --overwrite) to replace it"
        )
    if not dest.parent.exists():
        raise FileNotFoundError(f"folder {dest.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix or dest.suffix,
                                    dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the permissions of a normal new file
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if dest appeared meanwhile: no clobbering
            except FileExistsError:
                raise FileExistsError(
                    f"{dest} exists; pass overwrite=True (CLI: --overwrite) to replace it"
                ) from None
            except OSError:  # file systems without hard links
                if dest.exists():
                    raise FileExistsError(f"{dest} exists") from None
                os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
