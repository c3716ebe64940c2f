"""Reading images and writing label maps and overlays."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.image import prepare_image
from napari_useg.io.atomic import atomic_write

__all__ = ["read_image", "write_labels", "write_overlay"]


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (TIFF through tifffile, other formats through imageio).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file cannot be decoded as an image (the message names the file).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no image file at {p}")
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(p)
        import imageio.v3 as iio

        return np.asarray(iio.imread(p))
    except Exception as exc:  # noqa: BLE001 - report decoder failures clearly
        raise ValueError(f"could not read {p} as an image: {exc}") from exc


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, overwrite: bool = False,
                 metadata: dict[str, Any] | None = None) -> Path:
    """Write a label map as a compressed TIFF, atomically.

    Parameters
    ----------
    path : path-like
        Destination ``.tif``.
    labels : numpy.ndarray
        Integer labels; stored as ``uint16`` when they fit, else ``uint32``.
    overwrite : bool
        Replace an existing file.
    metadata : dict, optional
        JSON-serialisable description stored in the TIFF's ImageDescription.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    import tifffile

    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {labels.dtype}")
    dtype = np.uint16 if labels.size == 0 or (labels.min() >= 0 and labels.max() < 2**16) \
        else np.uint32
    desc = json.dumps(metadata or {}, default=str)
    with atomic_write(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, labels.astype(dtype), compression="zlib", description=desc,
                         metadata=None)
    return Path(path)


def write_overlay(path: str | os.PathLike, image: np.ndarray, labels: np.ndarray, *,
                  channel_axis: int | None = None, overwrite: bool = False,
                  alpha: float = 0.35) -> Path:
    """Write a PNG of the image with coloured labels and their boundaries on top.

    ``image`` is anything :func:`napari_useg.core.image.prepare_image` accepts; images
    with other than 1 or 3 channels are shown by their first channel.
    """
    import imageio.v3 as iio
    from skimage.color import label2rgb
    from skimage.segmentation import find_boundaries

    data = prepare_image(image, channel_axis).data
    rgb = data if data.shape[2] == 3 else np.repeat(data[..., :1], 3, axis=2)
    over = label2rgb(labels, image=rgb, alpha=alpha, bg_label=-1, image_alpha=1.0, kind="overlay")
    over[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    out = (np.clip(over, 0, 1) * 255).round().astype(np.uint8)
    with atomic_write(path, overwrite=overwrite, suffix=".png") as tmp:
        iio.imwrite(tmp, out, extension=".png")
    return Path(path)
