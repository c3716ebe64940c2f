"""Reading images and writing label maps and overlays."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import tifffile
import zarr
from skimage.color import label2rgb
from skimage.segmentation import find_boundaries

from napari_useg.core.atomic import atomic_write
from napari_useg.core.image import prepare_image

__all__ = ["read_image", "open_volume", "read_spacing", "write_labels", "write_overlay",
           "LABEL_SUFFIXES"]


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
    if p.stat().st_size == 0:
        raise ValueError(f"could not read {p} as an image: the file is empty (0 bytes)")
    try:
        if p.suffix.lower() in (".tif", ".tiff"):
            return tifffile.imread(p)
        if p.suffix.lower() == ".npy":
            return np.load(p, allow_pickle=False)
        return np.asarray(iio.imread(p))
    except Exception as exc:  # noqa: BLE001 - report decoder failures clearly
        # first line only: imageio appends advice to install optional video backends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"could not read {p} as an image: {first}") from exc


def open_volume(path: str | os.PathLike) -> Any:
    """Open a volume file without reading its voxels, for a method that reads windows.

    A zarr array (a ``.zarr`` directory), a TIFF (through tifffile's zarr view of it: only
    the strips or tiles a window needs are decoded) or a ``.npy`` file (memory-mapped).
    Other files are read whole (:func:`read_image`).

    Raises
    ------
    FileNotFoundError
        If nothing exists at ``path``.
    ValueError
        If the file cannot be opened as one array (the message names the file).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no image file at {p}")
    suffix = p.suffix.lower()
    if suffix not in (".zarr", ".tif", ".tiff", ".npy"):
        return read_image(p)
    try:
        if suffix == ".npy":
            return np.load(p, mmap_mode="r", allow_pickle=False)
        store = tifffile.imread(p, aszarr=True) if suffix != ".zarr" else str(p)
        arr = zarr.open(store, mode="r")
    except Exception as exc:  # noqa: BLE001 - report decoder failures clearly
        raise ValueError(f"could not open {p} as an array: {exc}") from exc
    if not hasattr(arr, "shape"):  # a zarr group (e.g. a pyramid): no single array
        raise ValueError(f"{p} holds a group of arrays, not one volume; open the level "
                         "to segment (e.g. zarr.open(path)['0']) and pass it from Python")
    return arr


def _resolution(page: Any) -> tuple[float, float] | None:
    """``(dy, dx)`` pixel size from a TIFF page's resolution tags (``None`` if absent)."""
    tags = page.tags
    if "XResolution" not in tags or "YResolution" not in tags:
        return None
    out = []
    for name in ("YResolution", "XResolution"):
        num, den = tags[name].value
        if not num or not den:
            return None
        out.append(den / num)
    if out == [1.0, 1.0]:
        return None  # the default of writers that record no size
    return out[0], out[1]


def _ome_spacing(ome: str, ndim: int) -> tuple[float, ...] | None:
    """``PhysicalSize{Z,Y,X}`` of the first OME Pixels element (only those needed)."""
    try:
        root = ET.fromstring(ome)
    except ET.ParseError:
        return None
    pixels = next((e for e in root.iter() if e.tag.endswith("Pixels")), None)
    if pixels is None:
        return None
    axes = "ZYX"[3 - ndim:]
    values = [pixels.get(f"PhysicalSize{a}") for a in axes]
    if any(v is None for v in values):
        return None
    return tuple(float(v) for v in values)


def read_spacing(path: str | os.PathLike, spatial_dims: int = 3) -> tuple[float, ...] | None:
    """Pixel/voxel size stored in a TIFF file (OME or ImageJ metadata), ``None`` if none.

    OME-TIFF: ``PhysicalSizeZ/Y/X`` of the first image. ImageJ hyperstacks: ``spacing``
    (the z step) from the ImageJ description and ``dy, dx`` from the resolution tags.
    Other files and formats: ``None`` (the caller then uses unit spacing).

    Parameters
    ----------
    path : path-like
        The image file.
    spatial_dims : {2, 3}
        Number of values wanted: ``(dy, dx)`` or ``(dz, dy, dx)``.

    Returns
    -------
    tuple of float or None
    """
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        with tifffile.TiffFile(p) as tif:
            if tif.is_ome and tif.ome_metadata:
                found = _ome_spacing(tif.ome_metadata, spatial_dims)
                if found is not None:
                    return found
            page = tif.pages[0]
            yx = _resolution(page)
            ij = tif.imagej_metadata or {}
    except Exception as exc:  # noqa: BLE001 - report decoder failures clearly
        raise ValueError(f"could not read the metadata of {p}: {exc}") from exc
    if spatial_dims == 2:
        return yx
    dz = ij.get("spacing")
    if dz is None and yx is None:
        return None
    dy, dx = yx if yx is not None else (1.0, 1.0)
    return (float(dz) if dz else 1.0, float(dy), float(dx))


#: File types :func:`write_labels` writes, by suffix.
LABEL_SUFFIXES = (".tif", ".tiff", ".png", ".npy")


def _labels_dtype(labels: np.ndarray, path: Path) -> np.dtype:
    if labels.size == 0:
        return np.dtype(np.uint16)
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0:
        raise ValueError(f"labels must be >= 0 to be written to {path}, got a minimum of {lo}")
    for dt in (np.uint16, np.uint32, np.uint64):
        if hi <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"labels up to {hi} do not fit 64 bits")  # pragma: no cover


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, overwrite: bool = False,
                 metadata: dict[str, Any] | None = None) -> Path:
    """Write a label map in the format its suffix names, atomically.

    ``.tif``/``.tiff``: a zlib-compressed TIFF with ``metadata`` as JSON in its
    ImageDescription; ``.png``: a 16-bit PNG (labels up to 65535); ``.npy``: NumPy.
    Labels are stored as ``uint16`` when they fit, else ``uint32`` or ``uint64``:
    never wrapped or truncated.

    Parameters
    ----------
    path : path-like
        Destination; its suffix picks the format.
    labels : numpy.ndarray
        Non-negative integer labels.
    overwrite : bool
        Replace an existing file.
    metadata : dict, optional
        JSON-serialisable description (TIFF only).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    TypeError
        If the labels are not integers.
    ValueError
        If a label is negative, the suffix names no supported format, or the labels
        do not fit the format (PNG above 65535).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise ValueError(f"cannot write labels to {path}: unsupported file type "
                         f"{suffix or '(none)'}; use one of {', '.join(LABEL_SUFFIXES)}")
    labels = np.asarray(labels)
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"labels must be integers, got {labels.dtype}")
    dtype = _labels_dtype(labels, path)
    if suffix == ".png" and dtype != np.uint16:
        raise ValueError(f"labels up to {int(labels.max())} do not fit a 16-bit PNG ({path}); "
                         "write a .tif instead")
    out = labels.astype(dtype)
    with atomic_write(path, overwrite=overwrite) as tmp:
        if suffix in (".tif", ".tiff"):
            desc = json.dumps(metadata or {}, default=str)
            tifffile.imwrite(tmp, out, compression="zlib", description=desc, metadata=None)
        elif suffix == ".png":
            iio.imwrite(tmp, out, extension=".png")
        else:
            with open(tmp, "wb") as fh:
                np.save(fh, out)
    return path


def write_agreement(path: str | os.PathLike, agreement: np.ndarray, *,
                    overwrite: bool = False, metadata: dict[str, Any] | None = None) -> Path:
    """Write an agreement (uncertainty) map as a ``float32`` TIFF, atomically.

    Parameters
    ----------
    path : path-like
        Destination, ``.tif`` or ``.tiff``.
    agreement : numpy.ndarray
        Values in ``[0, 1]`` (:func:`napari_useg.core.consensus.agreement_map`).
    overwrite : bool
        Replace an existing file.
    metadata : dict, optional
        JSON-serialisable description stored in the ImageDescription.

    Raises
    ------
    ValueError
        If the suffix is not a TIFF one or a value lies outside ``[0, 1]``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff"):
        raise ValueError(f"cannot write the agreement map to {path}: it is a float image, "
                         "the file name must end in .tif or .tiff")
    values = np.asarray(agreement, dtype=np.float32)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0
                            and values.max() <= 1):
        raise ValueError("agreement values must lie in [0, 1]")
    with atomic_write(path, overwrite=overwrite) as tmp:
        tifffile.imwrite(tmp, values, compression="zlib",
                         description=json.dumps(metadata or {}, default=str), metadata=None)
    return path


def write_overlay(path: str | os.PathLike, image: np.ndarray, labels: np.ndarray, *,
                  channel_axis: int | None = None, overwrite: bool = False,
                  alpha: float = 0.35) -> Path:
    """Write a PNG of the image with coloured labels and their boundaries on top.

    ``image`` is anything :func:`napari_useg.core.image.prepare_image` accepts; images
    with other than 1 or 3 channels are shown by their first channel.
    """
    data = prepare_image(image, channel_axis).data
    rgb = data if data.shape[2] == 3 else np.repeat(data[..., :1], 3, axis=2)
    over = label2rgb(labels, image=rgb, alpha=alpha, bg_label=-1, image_alpha=1.0, kind="overlay")
    over[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    out = (np.clip(over, 0, 1) * 255).round().astype(np.uint8)
    with atomic_write(path, overwrite=overwrite, suffix=".png") as tmp:
        iio.imwrite(tmp, out, extension=".png")
    return Path(path)
