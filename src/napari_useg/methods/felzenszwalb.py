"""Felzenszwalb & Huttenlocher efficient graph-based segmentation (scikit-image)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from skimage.segmentation import felzenszwalb

from napari_useg.core.hierarchy import build_hierarchy, colour_features
from napari_useg.core.image import PreparedImage
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register

__all__ = ["FelzenszwalbParams", "METHOD"]


@dataclass(frozen=True)
class FelzenszwalbParams:
    """Parameters of graph-based segmentation (``skimage.segmentation.felzenszwalb``)."""

    scale: float = param(500.0, "observation scale (beta in Kanezaki 2018): larger, larger "
                                "segments", low=1e-3, high=1e6)
    sigma: float = param(0.8, "Gaussian pre-smoothing width", low=0.0, high=100.0)
    min_size: int = param(50, "minimum segment size in pixels (merged afterwards)", low=1,
                          high=10_000_000)


def run(image: PreparedImage, p: FelzenszwalbParams, ctx: RunContext) -> Iterator[Progress]:
    """One call to scikit-image; values in [0, 1] so ``scale`` is on the 0-255 scale.

    The final snapshot's ``info["hierarchy"]`` merges the result's regions by mean
    colour (CIELAB; :func:`~napari_useg.core.hierarchy.build_hierarchy`), its default cut
    at 0: the result's connected regions.
    """
    labels = felzenszwalb(image.data, scale=p.scale, sigma=p.sigma, min_size=p.min_size,
                          channel_axis=-1)
    hierarchy = build_hierarchy(labels, colour_features(image.data, image.is_rgb),
                                default_threshold=0.0)
    yield Progress(step=1, total=1, labels=labels, done=True, message="graph segmentation",
                   info={"hierarchy": hierarchy})


METHOD = register(
    Method(
        name="felzenszwalb",
        title="Graph-based segmentation (Felzenszwalb 2004)",
        summary="Efficient graph-based segmentation: greedy merging of a pixel graph.",
        reference="P. Felzenszwalb, D. Huttenlocher, Efficient graph-based image segmentation, "
                  "IJCV 2004",
        params=FelzenszwalbParams,
        run=run,
    )
)
