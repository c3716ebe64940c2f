"""Collections of images: folders, glob patterns, file lists and stacks.

One list of image file types (:data:`IMAGE_SUFFIXES`) serves every reader of folders:
batch inputs, training collections and annotated datasets.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from napari_useg.core.image import channels_last
from napari_useg.io.images import read_image

__all__ = ["IMAGE_SUFFIXES", "find_images", "folder_images", "collect_images"]

#: File types taken from a folder (a glob or an explicit file may name any type).
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")


def folder_images(folder: str | os.PathLike, *, required: bool = True) -> list[Path]:
    """The image files directly in ``folder`` (hidden files left out), sorted by name.

    Raises
    ------
    ValueError
        If the folder holds no image file and ``required`` is true.
    """
    folder = Path(folder)
    files = sorted((f for f in folder.iterdir()
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                    and not f.name.startswith(".")), key=lambda f: f.name)
    if required and not files:
        raise ValueError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


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
            files = folder_images(p)
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


def collect_images(images, channel_axis: int | None = None) -> tuple[list[Any], bool, list[str]]:
    """Turn what the user passed into a list of raw ``(H, W, C)`` arrays.

    Parameters
    ----------
    images : path, array or sequence
        A folder (every image file in it, sorted by name), one file, a stack
        (an array whose first axis indexes images: ``(N, H, W)``, ``(N, H, W, 3)``
        or ``(N, ...)`` with ``channel_axis`` counted within one image), or a
        list of arrays and/or file paths (sizes may differ).
    channel_axis : int, optional
        Channel axis of each image.

    Returns
    -------
    arrays : list
        Raw ``(H, W, C)`` views (dask arrays stay lazy).
    is_rgb : bool
        Whether they are RGB.
    names : list of str
        A name per image (file stem or ``image_<i>``).

    Raises
    ------
    ValueError, TypeError
        For an empty collection, unreadable files, or images with different
        channel counts.
    """
    items: list[Any]
    names: list[str]
    if isinstance(images, (str, os.PathLike)):
        p = Path(images)
        if p.is_dir():
            files = folder_images(p)
            items, names = [read_image(f) for f in files], [f.stem for f in files]
        elif p.is_file():
            items, names = [read_image(p)], [p.stem]
        else:
            raise FileNotFoundError(f"no image file or folder at {p}")
    elif hasattr(images, "shape") and hasattr(images, "ndim"):
        if images.ndim < 3:
            raise ValueError(
                f"a single array is read as a stack of images along its first axis; got "
                f"{images.ndim}-D with shape {tuple(images.shape)}: wrap one image in a list"
            )
        items = [images[i] for i in range(int(images.shape[0]))]
        names = [f"image_{i}" for i in range(len(items))]
    elif isinstance(images, (list, tuple)):
        items, names = [], []
        for i, im in enumerate(images):
            if isinstance(im, (str, os.PathLike)):
                if Path(im).is_dir():
                    files = folder_images(Path(im))
                    items += [read_image(f) for f in files]
                    names += [f.stem for f in files]
                    continue
                items.append(read_image(im))
                names.append(Path(im).stem)
            else:
                items.append(im)
                names.append(f"image_{i}")
    else:
        raise TypeError(
            f"images must be a folder, a file, a stack array or a list of arrays/paths, got "
            f"{type(images).__name__}"
        )
    if not items:
        raise ValueError("no images given")
    arrays, rgbs = [], []
    for name, im in zip(names, items, strict=True):
        try:
            arr, is_rgb = channels_last(im, channel_axis)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {exc}") from exc
        arrays.append(arr)
        rgbs.append(is_rgb)
    chans = sorted({int(a.shape[-1]) for a in arrays})
    if len(chans) > 1:
        raise ValueError(f"images have different numbers of channels {chans}; a model needs one "
                         "channel layout")
    return arrays, all(rgbs), names
