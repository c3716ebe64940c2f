"""Turning ``INPUT_DIR_OR_GLOB`` arguments into a sorted list of image files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "find_images"]

#: File types taken from a folder (a glob or an explicit file may name any type).
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def find_images(inputs: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Image files named by folders, glob patterns and/or files.

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        A folder (its image files, not recursive), a glob pattern (``**`` recurses;
        quote it in a shell), or a file; or several of these.

    Returns
    -------
    list of pathlib.Path
        Files in the order given, each group sorted by name, without repeats.

    Raises
    ------
    FileNotFoundError
        If a folder or file does not exist, or a pattern matches no file.
    ValueError
        If nothing is found, or two inputs share a file stem (their outputs would
        have the same name).
    """
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found: list[Path] = []
    for entry in inputs:
        if not isinstance(entry, (str, os.PathLike)):
            raise TypeError(f"inputs must be paths or glob patterns, got {entry!r}")
        text = os.fspath(entry)
        p = Path(text)
        if p.is_dir():
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise ValueError(f"folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        elif p.is_file():
            files = [p]
        elif _is_glob(text):
            files = sorted(Path(f) for f in glob.glob(text, recursive=True) if Path(f).is_file())
            if not files:
                raise FileNotFoundError(f"no file matches {text!r}")
        else:
            raise FileNotFoundError(f"no image, folder or pattern at {text!r}")
        found.extend(files)
    unique: dict[Path, Path] = {}
    for f in found:
        unique.setdefault(f.resolve(), f)
    files = list(unique.values())
    if not files:
        raise ValueError("no input images")
    stems: dict[str, Path] = {}
    for f in files:
        other = stems.setdefault(f.stem, f)
        if other is not f:
            raise ValueError(f"{other} and {f} have the same name stem {f.stem!r}, so their "
                             "outputs would collide; run them into separate output folders")
    return files
