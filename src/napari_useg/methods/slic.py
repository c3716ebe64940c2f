"""SLIC superpixels (Achanta et al. 2012) as a segmentation baseline (scikit-image)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from napari_useg.core.image import PreparedImage
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register
from napari_useg.core.superpixels import slic_superpixels

__all__ = ["SlicParams", "METHOD"]


@dataclass(frozen=True)
class SlicParams:
    """Parameters of SLIC."""

    n_segments: int = param(200, "approximate number of superpixels", low=1, high=10_000_000)
    compactness: float = param(10.0, "colour vs space trade-off (larger: squarer)", low=1e-3,
                               high=1e4)


def run(image: PreparedImage, p: SlicParams, ctx: RunContext) -> Iterator[Progress]:
    """One SLIC call (CIELAB for RGB images)."""
    labels = slic_superpixels(image.data, p.n_segments, p.compactness, image.is_rgb)
    yield Progress(step=1, total=1, labels=labels, done=True, message="SLIC")


METHOD = register(
    Method(
        name="slic",
        title="SLIC superpixels",
        summary="Simple linear iterative clustering of pixels in colour and position.",
        reference="R. Achanta et al., SLIC superpixels compared to state-of-the-art superpixel "
                  "methods, TPAMI 2012",
        params=SlicParams,
        run=run,
    )
)
