"""What dataset-level methods share: the training context, per-image fitting, normalisation.

The user's front doors (:func:`napari_useg.fit`, :func:`napari_useg.iter_fit`) live in
:mod:`napari_useg.api`; this module holds what the methods themselves need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.image import (
    PERCENTILES,
    PreparedImage,
    apply_ranges,
    channel_ranges,
    light_background,
    objects_on_background,
)
from napari_useg.core.options import NORMALISATIONS
from napari_useg.core.progress import Progress
from napari_useg.core.registry import RunContext

__all__ = ["fit_and_label", "FitContext", "NORMALISATIONS", "normalise_collection", "value_range"]


@dataclass
class FitContext(RunContext):
    """:class:`~napari_useg.core.registry.RunContext` plus training options.

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


def normalise_collection(arrays: list[Any], mode: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Scale a training collection's raw ``(H, W, C)`` arrays to float32 in [0, 1].

    Parameters
    ----------
    arrays : list of array_like
        Raw images, channels last.
    mode : {"auto", "dataset", "per_image", "per_image_dark"}
        One set of per-channel ranges for the pooled pixels, or each image's own
        (``"per_image_dark"``: then inverted where the background is light, see
        :func:`~napari_useg.core.image.light_background`). ``"auto"``:
        ``"per_image_dark"`` when the collection holds objects on a plain background
        (:func:`~napari_useg.core.image.objects_on_background`), else ``"per_image"``;
        the rule's choice is stored as ``norm["auto"]``.

    Returns
    -------
    data : list of numpy.ndarray
        The scaled images.
    norm : dict
        The rule, as stored in a model's config (so prediction scales the same way).
    """
    chosen = None
    if mode == "auto":
        mode = chosen = "per_image_dark" if objects_on_background(arrays) else "per_image"
    if mode == "dataset":
        lo, hi = channel_ranges(arrays)
        data = [apply_ranges(np.asarray(a), lo, hi) for a in arrays]
        norm = {"mode": "dataset", "lo": lo.tolist(), "hi": hi.tolist(),
                "dtype": str(np.dtype(arrays[0].dtype))}
    else:  # percentiles of each image, whatever its dtype (the model's predict does the same)
        data = []
        dark = mode == "per_image_dark"
        for a in arrays:
            a = np.asarray(a)
            lo, hi = channel_ranges([a], percentiles=PERCENTILES)
            d = apply_ranges(a, lo, hi)
            if dark and light_background(a, lo, hi):
                d = 1.0 - d
            data.append(d)
        norm = {"mode": "per_image", "percentiles": list(PERCENTILES)}
        if dark:
            norm["dark_background"] = True
    if chosen is not None:
        norm["auto"] = chosen
    for d in data:
        if not np.isfinite(d).all():  # pragma: no cover - NaN inputs are caught by channel_ranges
            raise ValueError("image contains NaN or infinite values")
    return data, norm


def value_range(arrays: list[Any], max_pixels: int = 1_000_000) -> dict[str, Any]:
    """Per-channel 1st and 99.8th percentiles of a collection's raw values (pooled).

    Stored in a fitted model's ``training`` so that applying it to an image whose values
    lie far outside them warns (:meth:`napari_useg.core.model.Model.check_values`).
    Computed on an even subsample of about ``max_pixels`` pixels.

    Returns
    -------
    dict
        ``{"lo": [...], "hi": [...], "dtype": "uint8"}``.
    """
    total = sum(int(np.prod(np.shape(a)[:2])) for a in arrays)
    step = max(1, int(np.sqrt(total / max_pixels)))
    c = int(np.shape(arrays[0])[-1])
    sub = np.concatenate([np.asarray(a)[::step, ::step].reshape(-1, c).astype(np.float64)
                          for a in arrays])
    sub = np.where(np.isfinite(sub), sub, np.nan)
    lo, hi = np.nanpercentile(sub, PERCENTILES, axis=0)
    return {"lo": [float(v) for v in lo], "hi": [float(v) for v in hi],
            "dtype": str(np.dtype(np.asarray(arrays[0][:1, :1]).dtype))}
