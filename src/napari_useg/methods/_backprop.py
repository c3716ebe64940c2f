"""Parameters shared by the backprop methods (Kanezaki 2018, DFC, MMT, DFC reference mode).

The methods train the same kind of network (M conv components of p filters,
a 1x1 classifier to q channels, batch norm of the response) with SGD. The
declarations of the network and optimiser parameters are written once, in
:data:`SHARED`; :func:`shared` turns one into a dataclass field, so a parameter
class that cannot derive from :class:`BackpropParams` (the reference mode has no
stop rules) still declares them identically. The per-image methods derive their
parameter class from :class:`BackpropParams` and add (or re-declare, to change a
default or help text) their own fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from napari_useg.core.params import param

__all__ = ["BackpropParams", "SHARED", "shared", "backprop_memory", "FAST_TRAINING"]

#: The ``fast`` presets' training of Kanezaki and DFC: narrower network, working resolution
#: and the stop on stable labels (chosen by measurement, docs/kanezaki.md, docs/dfc_mmt.md).
FAST_TRAINING: dict[str, Any] = {
    "n_features": 32,
    "n_clusters": 32,
    "max_iter": 150,
    "max_side": 240,
    "patience": 10,
    "change_tol": 0.002,
}

#: Declarations of the shared parameters: name -> (default, help, bounds or choices).
SHARED: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "n_features": (100, "p: filters of each conv component", {"low": 1, "high": 1024}),
    "n_clusters": (100, "q: response channels, the most labels possible",
                   {"low": 2, "high": 1024}),
    "n_conv": (2, "M: number of conv components (3x3 conv, ReLU, BN)", {"low": 1, "high": 10}),
    "lr": (0.1, "SGD learning rate", {"low": 1e-6, "high": 10.0}),
    "momentum": (0.9, "SGD momentum", {"low": 0.0, "high": 0.999}),
    "mu": (1.0, "weight of the spatial continuity loss", {"low": 0.0, "high": 1000.0}),
    "patch_size": (40, "volumes: side of the random training patch along the finest axis, "
                       "in voxels (0: the whole volume)", {"low": 0, "high": 100000}),
    "patch_focus": (0.0, "volumes: fraction of training patches centred on a region that "
                         "stands out from the volume's intensity (for rare objects in a large "
                         "volume)", {"low": 0.0, "high": 1.0}),
    "init": ("xavier", "weight initialisation (Xavier, or torch's default as the authors' code)",
             {"choices": ("xavier", "torch")}),
}


def shared(name: str, default: Any = None, help: str | None = None) -> Any:
    """A dataclass field for the shared parameter ``name``.

    Parameters
    ----------
    name : str
        Key of :data:`SHARED`.
    default : object, optional
        Another default than the shared one.
    help : str, optional
        Another help text than the shared one.
    """
    d, h, limits = SHARED[name]
    return param(d if default is None else default, h if help is None else help, **limits)


@dataclass(frozen=True)
class BackpropParams:
    """Network, optimiser, stopping and hierarchy parameters of the per-image backprop methods.

    The last four say how the hierarchy of the final snapshot is built
    (``methods/_hierarchy.py``) and whether its cut replaces the method's own labels.
    """

    n_features: int = shared("n_features")
    n_clusters: int = shared("n_clusters")
    n_conv: int = shared("n_conv")
    max_iter: int = param(1000, "T: maximum number of iterations", low=1, high=100000)
    min_labels: int = param(3, "stop once the argmax gives this many labels or fewer", low=1,
                            high=1024)
    lr: float = shared("lr")
    momentum: float = shared("momentum")
    max_side: int = param(0, "working resolution: longest side in pixels (0: full resolution)",
                          low=0, high=100_000)
    patience: int = param(0, "stop when labels change in < change_tol of the pixels for this "
                             "many iterations in a row (0: off)", low=0, high=100000)
    change_tol: float = param(0.001, "fraction of pixels below which the labels count as "
                                     "unchanged", low=0.0, high=1.0)
    init: str = shared("init")
    regions: str = param("result", "finest regions of the hierarchy: the result's connected "
                                   "components, those split by a Felzenszwalb "
                                   "over-segmentation (intersect), or that over-segmentation "
                                   "alone (felzenszwalb; the network enters by its features)",
                         choices=("result", "intersect", "felzenszwalb"))
    region_scale: float = param(200.0, "Felzenszwalb scale of the finest regions "
                                       "(regions 'intersect' or 'felzenszwalb')", low=1e-3,
                                high=1e6)
    region_min_size: int = param(20, "Felzenszwalb min_size of the finest regions, in pixels",
                                 low=1, high=1_000_000)
    feature_weight: float = param(1.0, "weight of the network's response (softmax) against "
                                       "colour (CIELAB / 100) when regions merge", low=0.0,
                                  high=1000.0)
    edge_power: float = param(0.0, "weight of the colour boundary when regions merge: Ward's "
                                   "cost times (mean colour gradient on their common boundary "
                                   "/ the image's mean + 0.1) ** edge_power (0: none; 2-D "
                                   "only, a volume's regions merge by intensity alone)",
                              low=0.0, high=16.0)
    absorb_fraction: float = param(0.0, "finest regions under this fraction of the image "
                                        "(and under 64 pixels) join their most similar "
                                        "neighbour first, by Ward's cost alone (no slivers "
                                        "kept apart along strong edges by edge_power; 2-D "
                                        "only; 0: off)",
                                   low=0.0, high=0.1)
    cut: float = param(0.0, "result = the hierarchy cut at this level in (0, 1], never "
                            "fewer than min_labels segments (0: the method's own labels)",
                       low=0.0, high=1.0)

    def check(self) -> None:
        """Cross-parameter checks."""
        if self.min_labels > self.n_clusters:
            raise ValueError(
                f"min_labels ({self.min_labels}) cannot exceed n_clusters ({self.n_clusters})"
            )


def backprop_memory(shape: tuple[int, int], n_channels: int, p: BackpropParams, *,
                    networks: int = 1) -> int:
    """Estimated peak bytes of one backprop run (``networks`` trained side by side).

    Activations at the working resolution (M conv components of p filters, each
    kept as conv output, ReLU and batch norm; the q-channel response, its batch norm
    and softmax), doubled for the gradients, plus full-resolution superpixels and
    the input.
    """
    h, w = shape
    n = h * w
    if p.max_side and max(h, w) > p.max_side:
        n = int(n * (p.max_side / max(h, w)) ** 2)
    per_pixel = 3 * p.n_conv * p.n_features + 5 * p.n_clusters + n_channels
    activations = 4 * n * per_pixel * 2 * networks
    return int(activations + h * w * (8 * 3 + 4 * n_channels))
