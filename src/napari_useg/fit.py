"""Training a dataset-level method on a collection of images: :func:`fit` and :func:`iter_fit`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .image import PERCENTILES, PreparedImage, apply_ranges, channel_ranges, channels_last
from .progress import Progress
from .registry import RunContext, get_method

__all__ = ["fit", "iter_fit", "fit_and_label", "collect_images", "FitContext", "IMAGE_SUFFIXES"]

#: File types read from a folder.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
NORMALISATIONS = ("dataset", "per_image")


@dataclass
class FitContext(RunContext):
    """:class:`~napari_useg.registry.RunContext` plus training options.

    Attributes
    ----------
    rgb : bool
        Whether the first three channels are RGB (colour jitter, Sobel grey, SLIC).
    checkpoint : pathlib.Path or None
        File keeping the training state; an interrupted run given the same file
        resumes where it stopped.
    checkpoint_every : int
        Steps between checkpoint saves.
    """

    rgb: bool = False
    checkpoint: Path | None = None
    checkpoint_every: int = 50


def fit_and_label(fit_fn: Callable[..., Iterator[Progress]], image: PreparedImage, p: Any,
                  ctx: RunContext) -> Iterator[Progress]:
    """A dataset-level method's per-image ``run``: fit on the one image, then label it.

    ``fit_fn(images, p, ctx)`` is the method's training iterator, whose final snapshot
    carries the model in ``info["model"]``; the final snapshot here carries the model's
    labels of ``image`` (its default output).
    """
    if not isinstance(ctx, FitContext):
        ctx = FitContext(seed=ctx.seed, device=ctx.device, preview_every=ctx.preview_every,
                         inputs=ctx.inputs, rgb=image.is_rgb)
    for snap in fit_fn([image], p, ctx):
        if snap.done:
            labels = snap.info["model"].predict_prepared(image.data)
            yield Progress(step=snap.step, total=snap.total, loss=snap.loss, labels=labels,
                           done=True, message=snap.message, info=snap.info)
            return
        yield snap

def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
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
    from .io import read_image

    items: list[Any]
    names: list[str]
    if isinstance(images, (str, os.PathLike)):
        p = Path(images)
        if p.is_dir():
            files = _folder_files(p)
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
                    files = _folder_files(Path(im))
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


def _normalise(arrays: list[Any], mode: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    if mode == "dataset":
        lo, hi = channel_ranges(arrays)
        data = [apply_ranges(np.asarray(a), lo, hi) for a in arrays]
        norm = {"mode": "dataset", "lo": lo.tolist(), "hi": hi.tolist(),
                "dtype": str(np.dtype(arrays[0].dtype))}
    else:  # percentiles of each image, whatever its dtype (the model's predict does the same)
        data = []
        for a in arrays:
            a = np.asarray(a)
            data.append(apply_ranges(a, *channel_ranges([a], percentiles=PERCENTILES)))
        norm = {"mode": "per_image", "percentiles": list(PERCENTILES)}
    for d in data:
        if not np.isfinite(d).all():  # pragma: no cover - NaN inputs are caught by channel_ranges
            raise ValueError("image contains NaN or infinite values")
    return data, norm


def iter_fit(
    images,
    method: str = "iic",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    normalisation: str = "dataset",
    rgb: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    **params: Any,
) -> Iterator[Progress]:
    """Train a dataset-level method step by step, yielding :class:`~napari_useg.progress.Progress`.

    Everything (images, method, parameters, device) is validated before this
    function returns. The final snapshot has ``done=True`` and the fitted
    :class:`~napari_useg.model.Model` in ``info["model"]``.

    Parameters
    ----------
    images : folder, file, stack array or list of arrays/paths
        The training collection (see :func:`collect_images`); all images need
        the same number of channels, sizes may differ.
    method : str
        A dataset-level method: ``"iic"`` or ``"inmars"``.
    preset : str, optional
        ``"paper"`` or ``"fast"`` (the method's default when omitted).
    channel_axis : int, optional
        Channel axis of each image.
    seed : int
        Seed of every random choice (initialisation, crops, transforms).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    normalisation : {"dataset", "per_image"}
        How raw values are scaled to [0, 1] (stored in the model, see
        :mod:`napari_useg.model`): ``"dataset"`` uses one set of ranges for every
        image (from the pooled training pixels); ``"per_image"`` stretches each
        image, at training and at prediction, between its own 1st and 99.8th
        percentiles per channel, whatever its dtype (for collections mixing
        exposures or modalities, e.g. dim fluorescence with brightfield).
    rgb : bool, optional
        Whether the first three channels are RGB (default: true for 3-channel
        and RGB(A) images). With ``rgb=True`` further channels (infrared...) are
        extra channels that colour jitter leaves alone.
    checkpoint : path-like, optional
        File for the training state; rerunning with the same file, images,
        parameters and seed resumes an interrupted run.
    checkpoint_every : int
        Steps between checkpoint saves.
    **params
        Method parameters (override the preset).

    Returns
    -------
    iterator of Progress
    """
    from .api import _check_seed
    from .device import resolve_device

    m = get_method(method)
    if m.kind != "dataset" or m.fit is None:
        raise ValueError(f"method {m.name!r} is fitted per image; use segment() "
                         "(dataset-level methods: iic, inmars)")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    p = m.build(preset, params)
    seed = _check_seed(seed)
    dev = resolve_device(device)
    arrays, is_rgb, names = collect_images(images, channel_axis)
    c = int(arrays[0].shape[-1])
    if rgb is None:
        rgb = is_rgb
    elif rgb and c < 3:
        raise ValueError(f"rgb=True needs at least 3 channels, the images have {c}")
    data, norm = _normalise(arrays, normalisation)
    prepared = [PreparedImage(d, bool(rgb) and c == 3, np.dtype(a.dtype))
                for d, a in zip(data, arrays, strict=True)]
    ctx = FitContext(seed=seed, device=dev, rgb=bool(rgb),
                     checkpoint=Path(checkpoint) if checkpoint is not None else None,
                     checkpoint_every=int(checkpoint_every))
    return _fit_iter(m.fit(prepared, p, ctx), norm, names, preset or m.default_preset)


def _fit_iter(snaps: Iterator[Progress], norm: dict[str, Any], names: list[str],
              preset: str | None) -> Iterator[Progress]:
    t0 = time.perf_counter()
    try:
        for snap in snaps:
            snap.elapsed = time.perf_counter() - t0
            if snap.done:
                model = snap.info.get("model")
                if model is None:  # pragma: no cover - method bug
                    raise RuntimeError("dataset-level method finished without a model")
                model.normalisation = norm
                model.training.update({"images": len(names), "preset": preset,
                                       "seconds": round(snap.elapsed, 1)})
            yield snap
            if snap.done:
                return
    finally:
        close = getattr(snaps, "close", None)
        if close is not None:
            close()


def fit(images, method: str = "iic", *, preset: str | None = None,
        channel_axis: int | None = None, seed: int = 0, device: str = "auto",
        normalisation: str = "dataset", rgb: bool | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 50,
        progress: bool = False, **params: Any):
    """Train a dataset-level method on a collection and return the fitted model.

    Parameters are those of :func:`iter_fit`, plus ``progress`` (print one line
    per step to stderr).

    Returns
    -------
    napari_useg.model.Model
        Call ``model.predict(image)`` on new images, ``model.save(folder)`` to keep it.

    Examples
    --------
    >>> import numpy as np, napari_useg
    >>> imgs = np.random.default_rng(0).integers(0, 255, (3, 32, 32), np.uint8)
    >>> model = napari_useg.fit(imgs, "iic", preset="fast", steps=2, input_size=16, batch_size=2)
    >>> model.predict(imgs[0]).shape
    (32, 32)
    """
    snap = None
    for snap in iter_fit(images, method, preset=preset, channel_axis=channel_axis, seed=seed,
                         device=device, normalisation=normalisation, rgb=rgb,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every, **params):
        if progress:
            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.done
    return snap.info["model"]
