"""The classical nucleus baseline: Gaussian smoothing, Otsu threshold, connected components.

What microscopists do first with a nuclear stain (2-D or 3-D, scikit-image/scipy):

1. the intensity (mean of the channels), negated where the objects are dark
   (``polarity``; ``"auto"``: where the image's background is light, as in brightfield and
   stained tissue, by the rule of :func:`~napari_useg.core.image.light_background`);
2. Gaussian smoothing, ``sigma`` in pixels/voxels;
3. optionally (``background``), the background subtracted: a grey opening with a window
   larger than the objects (a white top-hat, as a rolling ball does), which evens out
   uneven illumination;
4. Otsu's threshold: above it is foreground;
5. 6-connected (4-connected in 2-D) components, objects of fewer than ``min_size``
   pixels/voxels removed;
6. optionally (``watershed``), touching nuclei split by a watershed of the distance
   transform computed with the voxel spacing (:func:`napari_useg.core.instances.label_objects`).

The result is one label per object plus one for the background (label 1 once the labels
are numbered ``1..n``: the background is the class with the largest connected region, so
``result="instances"`` gives back the same objects with background 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from napari_useg.core.image import (
    PERCENTILES,
    PreparedImage,
    channel_ranges,
    light_background,
    subtract_background,
)
from napari_useg.core.instances import label_objects
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register

__all__ = ["OtsuParams", "METHOD", "background_window", "objects_are_dark", "otsu_objects"]


@dataclass(frozen=True)
class OtsuParams:
    """Parameters of the Otsu baseline."""

    polarity: str = param("auto", "which objects: 'bright', 'dark', or 'auto' (dark where the "
                                  "image's background is light: brightfield, stained tissue)",
                          choices=("auto", "bright", "dark"))
    sigma: float = param(1.0, "Gaussian smoothing (pixels/voxels; 0: none)", low=0.0,
                         high=50.0)
    background: float = param(0.0, "subtract the background first: side of the window of a "
                                    "grey opening, in pixels of the image plane, larger than "
                                    "the objects (0: none)", low=0.0, high=10_000.0)
    min_size: int = param(64, "drop objects smaller than this many pixels/voxels", low=0,
                          high=10**9)
    watershed: bool = param(False, "split touching objects with a distance-transform watershed "
                               "(uses the spacing)")
    split_radius: float = param(0.0, "smallest distance between two object centres, in "
                                     "spacing units (0: twice the largest spacing)", low=0.0,
                                high=1e6)


def objects_are_dark(data: np.ndarray, polarity: str) -> bool:
    """Whether the objects of a ``(..., C)`` image are darker than its background.

    ``"auto"``: when the background is light (median above the middle of the image's
    1st-99.8th percentile range), as in brightfield and stained tissue.
    """
    if polarity != "auto":
        return polarity == "dark"
    flat = data.reshape(-1, 1, data.shape[-1])
    lo, hi = channel_ranges([flat], percentiles=PERCENTILES)
    return light_background(flat, lo, hi)


def background_window(side: float, spacing: tuple[float, ...]) -> tuple[int, ...]:
    """Odd window sides of the background opening: ``side`` pixels in the image plane.

    Along a volume's first axis the side is scaled by the spacing (``side`` times the
    in-plane spacing over the axial one), so that the window is as long in every axis.

    Examples
    --------
    >>> background_window(41, (1.0, 1.0)), background_window(41, (4.0, 1.0, 1.0))
    ((41, 41), (11, 41, 41))
    """
    plane = float(spacing[-1])
    return tuple(max(1, round(side * plane / float(s))) // 2 * 2 + 1 for s in spacing)


def otsu_objects(data: np.ndarray, p: OtsuParams, spacing: tuple[float, ...]) -> np.ndarray:
    """Objects ``1..n`` (0 = background) of a ``(..., C)`` float image or volume."""
    intensity = data.mean(axis=-1)
    if objects_are_dark(data, p.polarity):
        intensity = -intensity
    if p.sigma > 0:
        intensity = ndi.gaussian_filter(intensity, p.sigma, mode="nearest")
    if p.background > 0:
        size = background_window(p.background, spacing)
        intensity = subtract_background(intensity, size)
    mask = intensity > threshold_otsu(intensity) if np.ptp(intensity) > 0 else \
        np.zeros(intensity.shape, bool)
    return label_objects(mask, spacing=spacing, split=p.watershed, min_size=p.min_size,
                         split_radius=p.split_radius or None)


def run(image: PreparedImage, p: OtsuParams, ctx: RunContext) -> Iterator[Progress]:
    """One step: threshold, components (and split); background 0 becomes label 1."""
    spacing = tuple(ctx.spacing) if len(ctx.spacing) == image.spatial_dims else \
        (1.0,) * image.spatial_dims
    objects = otsu_objects(image.data, p, spacing)
    n = int(objects.max())
    yield Progress(step=1, total=1, labels=objects, n_labels=n + 1, done=True,
                   message=f"{n} objects")


METHOD = register(
    Method(
        name="otsu",
        title="Otsu threshold + connected components (nuclei)",
        summary="Gaussian smoothing, optionally background subtraction, Otsu threshold "
                "(bright or dark objects), connected components with small ones removed; "
                "optionally a distance-transform watershed split (2-D or 3-D).",
        reference="N. Otsu, IEEE Trans. SMC 1979; the classical nucleus pipeline of "
                  "scikit-image",
        params=OtsuParams,
        run=run,
        presets={"watershed": {"watershed": True}, "background": {"background": 41.0}},
        volumes=True,
    )
)
