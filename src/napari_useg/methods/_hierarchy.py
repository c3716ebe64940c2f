"""The hierarchy every per-image backprop method returns with its final snapshot.

From fine regions (the connected components of the method's result, optionally split
further by a Felzenszwalb over-segmentation, or that over-segmentation alone) and
per-region features (image colour in CIELAB and
the network's response maps, softmax-normalised and weighted), a
:class:`~napari_useg.core.hierarchy.Hierarchy` is built with
:func:`~napari_useg.core.hierarchy.build_hierarchy`. The final snapshot carries it in
``info["hierarchy"]``; when ``cut`` > 0 the snapshot's labels are its cut at that
level instead of the method's own result.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from skimage.segmentation import felzenszwalb

from napari_useg.core.hierarchy import (
    Hierarchy,
    build_hierarchy,
    colour_edges,
    colour_features,
    fine_regions,
)
from napari_useg.core.image import PreparedImage
from napari_useg.methods._backprop import BackpropParams

__all__ = ["absorb_pixels", "cut_note", "floored_cut", "hierarchy_features",
           "method_hierarchy"]

#: Passes of ``absorb_fraction``: a region under it whose neighbours are all as small joins
#: a larger one once one of them has (slivers along an edge come in chains).
ABSORB_PASSES = 16

#: With ``absorb_fraction`` > 0, regions under this many pixels are absorbed on any image
#: (a sliver along an edge is a few pixels wide whatever the image's size, so on a small
#: image the fraction alone would keep it).
ABSORB_MIN_PIXELS = 64


def absorb_pixels(fraction: float, n_pixels: int) -> int:
    """Region size in pixels below which ``absorb_fraction`` absorbs a region: the fraction
    of the image, at least :data:`ABSORB_MIN_PIXELS` (0 when the fraction is 0)."""
    if fraction <= 0:
        return 0
    return max(int(np.ceil(fraction * n_pixels)), ABSORB_MIN_PIXELS)


def hierarchy_features(image: PreparedImage, response: torch.Tensor | np.ndarray | None,
                       feature_weight: float) -> np.ndarray:
    """Per-pixel features: colour (CIELAB / 100), then ``feature_weight`` x softmax(response).

    ``response`` is ``(q, H, W)`` at full resolution (``None``: colour only).
    """
    colour = colour_features(image.data, image.is_rgb)
    if response is None or feature_weight == 0:
        return colour
    r = torch.as_tensor(response).float()
    prob = torch.softmax(r, dim=0).permute(1, 2, 0).cpu().numpy()
    return np.concatenate([colour, feature_weight * prob.astype(np.float64)], axis=-1)


def method_hierarchy(image: PreparedImage, labels: np.ndarray,
                     response: torch.Tensor | np.ndarray | None, p: BackpropParams
                     ) -> tuple[np.ndarray, Hierarchy]:
    """The hierarchy of one result and the labels the final snapshot reports.

    Parameters
    ----------
    image : PreparedImage
    labels : numpy.ndarray
        The method's own full-resolution label map.
    response : torch.Tensor or numpy.ndarray or None
        ``(q, H, W)`` full-resolution response of the network.
    p : BackpropParams
        Its ``regions``, ``region_scale``, ``region_min_size``, ``feature_weight``,
        ``edge_power``, ``absorb_fraction`` and ``cut``.

    Returns
    -------
    labels : numpy.ndarray
        ``labels`` itself when ``p.cut`` is 0, else the hierarchy's cut at ``p.cut``, or
        at ``p.min_labels`` segments where that cut has fewer (a low-contrast image).
    hierarchy : Hierarchy
        With ``default_threshold`` at that cut (when ``p.cut`` is 0 its default cut is
        its finest level, the connected components of the regions it was built from).
    """
    maps = [] if p.regions == "felzenszwalb" else [labels]
    if p.regions in ("intersect", "felzenszwalb"):
        with warnings.catch_warnings():  # skimage's note on > 3 channels: intended here
            warnings.filterwarnings("ignore", message=".*third dimension", category=RuntimeWarning)
            maps.append(felzenszwalb(image.data, scale=p.region_scale, sigma=0.8,
                                     min_size=p.region_min_size, channel_axis=-1))
    fine = fine_regions(*maps)
    feats = hierarchy_features(image, response, p.feature_weight)
    edges = colour_edges(image.data, image.is_rgb) if p.edge_power > 0 else None
    hier = build_hierarchy(fine, feats, default_threshold=p.cut, edges=edges,
                           edge_power=p.edge_power,
                           absorb_below=absorb_pixels(p.absorb_fraction, fine.size),
                           absorb_passes=ABSORB_PASSES)
    if p.cut > 0:
        return floored_cut(hier, p.min_labels)
    return labels, hier


def floored_cut(hier: Hierarchy, min_labels: int) -> tuple[np.ndarray, Hierarchy]:
    """The hierarchy's default cut, or its cut at ``min_labels`` segments where the
    default leaves fewer (a low-contrast image), with the default moved there."""
    cut = hier.labels
    floor = min(min_labels, hier.n_regions)
    if int(cut.max()) < floor:
        hier = hier.with_default(hier.threshold_for(floor))
        cut = hier.labels
    return cut, hier


def cut_note(hierarchy: Hierarchy, p: BackpropParams) -> str:
    """The final message's words on the result: the cut, and whether the floor moved it."""
    note = f"result: its hierarchy cut at {p.cut:g}"
    if hierarchy.default_threshold != p.cut:
        note += (f" (lowered to {hierarchy.default_threshold:.3g} to keep {p.min_labels} "
                 f"segments)")
    return note
