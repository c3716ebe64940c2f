"""Differentiable feature clustering: Kim, Kanezaki, Tanaka, "Unsupervised learning of image
segmentation based on differentiable feature clustering", IEEE TIP 29, 2020.

Per iteration (the authors' ``demo.py``):

1. forward the image through the feature network of Kanezaki 2018
   (:class:`~napari_useg.nn.feature_net.FeatureNet`: M x [3x3 conv, ReLU, BN], then a
   1x1 conv to ``q`` channels and BN) to the normalised response ``r``;
2. targets ``c = argmax_q r`` from that same forward pass (no gradient through it);
3. loss = cross-entropy(r, c) + mu x spatial continuity, where the continuity term
   is the mean absolute difference of ``r`` between vertically adjacent pixels plus
   the same between horizontally adjacent pixels
   (:func:`~napari_useg.nn.losses.spatial_continuity_loss`);
4. SGD step (lr 0.1, momentum 0.9).

No superpixels. The run stops after ``max_iter`` iterations or once the argmax gives
``min_labels`` labels or fewer; the result is the argmax the stop rule saw.

Scribbles (semi-supervised)
---------------------------
Pass a label map ``scribbles`` of the image's shape (a napari Labels layer): painted
pixels carry class ids, 0 means unpainted. The k distinct ids are mapped, in
increasing order, to the network channels ``0..k-1``; the similarity loss covers the
unpainted pixels only, plus ``scribble_weight`` (0.5) x cross-entropy of the painted
pixels towards their channel; ``min_labels`` becomes k. In the result the regions of
those channels carry the user's ids (so painting with 1, 2, 3 gives labels 1, 2, 3,
and new clusters get the following ids).

Reference-image mode
--------------------
The paper's second mode, one network trained on a collection and then applied to any
image, is the dataset-level method ``dfc_ref`` (:mod:`napari_useg.methods.dfc_reference`);
it shares the network, the loss (:func:`pixel_responses`, :func:`dfc_loss`) and the
parameter declarations with this module.

Presets
-------
``paper``
    p = q = 100, M = 2, mu = 1, up to 1000 iterations at full resolution.
``fast`` (default)
    Fewer channels, training at a working resolution, and the labels-stable stop rule
    of the Kanezaki fast preset; the last response is brought back to full resolution
    (bilinear) before the argmax. Chosen by measurement (docs/dfc_mmt.md). Without
    scribbles the result is then, as for Kanezaki's ``fast``, a cut (at 0.7) of the
    run's hierarchy (Felzenszwalb regions at scale 250 merged by colour and response,
    weighted by the colour boundary, ``edge_power`` 4, regions under 0.1 % of the image
    merged first, ``absorb_fraction``); with scribbles it keeps the scribbled classes.
``volume`` (default for volumes)
    3x3x3 convolutions trained on one patch of about ``patch_size`` voxels across per
    iteration (fewer along a coarser z), the patches centred on blocks of the volume
    whose intensity stands out (``patch_focus``); the continuity term covers z, y and x,
    each weighted by ``min(spacing) / spacing`` (a difference per unit length); the
    labels of the whole volume are predicted tile by tile with a halo of ``n_conv``
    voxels (:mod:`napari_useg.methods._volume`, shared with Kanezaki's volume mode).
    Scribbles are 2-D only. Measured on the nuclei volumes in docs/volumes.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from napari_useg.core.image import PreparedImage, to_working_resolution
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import InputInfo, Method, RunContext, register
from napari_useg.methods._backprop import (
    FAST_TRAINING,
    BackpropParams,
    backprop_memory,
    shared,
)
from napari_useg.methods._hierarchy import cut_note, method_hierarchy
from napari_useg.methods._volume import (
    axis_weights,
    focus_blocks,
    iterate_volume,
    sgd_step,
    volume_memory,
    volume_network,
    volume_patch,
)
from napari_useg.nn.allocator import reuse_large_blocks
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.image_loop import (
    ChangeMonitor,
    image_tensor,
    preview_labels,
    sgd,
    stop_reason,
    upsample_response,
)
from napari_useg.nn.losses import spatial_continuity_loss

__all__ = ["DfcParams", "METHOD", "dfc_loss", "pixel_responses"]


@dataclass(frozen=True)
class DfcParams(BackpropParams):
    """Parameters of differentiable feature clustering (Kim et al. 2020), one image."""

    min_labels: int = param(3, "stop once the argmax gives this many labels or fewer "
                               "(with scribbles: the number of scribble classes)", low=1,
                            high=1024)
    mu: float = shared("mu")
    scribble_weight: float = param(0.5, "weight of the cross-entropy on painted scribble pixels",
                                   low=0.0, high=1000.0)
    patch_size: int = shared("patch_size")
    patch_focus: float = shared("patch_focus", help="volumes: fraction of training patches "
                                "centred on a block of the volume that stands out from its "
                                "intensity (for rare objects in a large volume)")


PRESETS = {
    "paper": {},
    # result: as Kanezaki's fast, the hierarchy over Felzenszwalb regions (scale 250) merged
    # by colour and the network's response, weighted by the colour boundary (edge_power
    # 4; regions under 0.1 % of the image merged first), cut at 0.7, in the plateau of
    # Hungarian accuracy, covering and segment AP for DFC on 50 BSDS500 val images (its
    # sharper response makes larger merge costs than Kanezaki's; without scribbles: with
    # them the result keeps the scribbled classes)
    "fast": {**FAST_TRAINING, "regions": "felzenszwalb", "region_scale": 250.0,
             "feature_weight": 1.0, "edge_power": 4.0, "absorb_fraction": 0.001,
             "cut": 0.7},
    # volumes: patches of 32 voxels focused on blocks that stand out, the continuity loss
    # along z, y and x weighted by the spacing; q = 32 channels merging down to (at least)
    # 2 labels: with q = 2 the run collapses to one label on both nuclei volumes; the
    # result is the cut at 0.15 of the hierarchy of its 3-D regions merged by intensity,
    # chosen on the two nuclei volumes (0.12-0.18 score alike; docs/volumes.md)
    "volume": {"n_features": 16, "n_clusters": 32, "max_iter": 150, "min_labels": 2,
               "lr": 0.01, "mu": 1.0, "patch_size": 32, "patch_focus": 1.0,
               "cut": 0.15},
}


# --- the loss (shared with the reference mode) ------------------------------------------------


def pixel_responses(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-pixel responses of a batch, their argmax (the targets) and the number of labels.

    Parameters
    ----------
    out : torch.Tensor
        Network response ``(N, q, H, W)``.

    Returns
    -------
    resp : torch.Tensor
        ``(N * H * W, q)`` responses, pixels in row-major order image by image.
    target : torch.Tensor
        ``argmax_q`` of every pixel (no gradient).
    n_labels : int
        Distinct values of ``target``.
    """
    q = out.shape[1]
    resp = out.permute(0, 2, 3, 1).reshape(-1, q)
    with torch.no_grad():
        target = resp.argmax(dim=1)
        n_labels = int(torch.bincount(target, minlength=q).count_nonzero().item())
    return resp, target, n_labels


def dfc_loss(similarity: torch.Tensor, out: torch.Tensor, mu: float,
             weights: tuple[float, ...] | None = None) -> torch.Tensor:
    """The DFC loss: the similarity term plus ``mu`` x the spatial continuity of ``out``
    (``weights``: per spatial axis, see
    :func:`~napari_useg.nn.losses.spatial_continuity_loss`)."""
    if mu:
        return similarity + mu * spatial_continuity_loss(out, weights)
    return similarity


# --- scribbles -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scribbles:
    """User scribbles mapped to network channels.

    Attributes
    ----------
    ids : numpy.ndarray
        The user's class ids, increasing; ``ids[j]`` is trained on channel ``j``.
    channels : numpy.ndarray
        ``int64`` ``(H, W)`` map: the channel of each painted pixel, -1 where unpainted.
    """

    ids: np.ndarray
    channels: np.ndarray

    @property
    def n_classes(self) -> int:
        """Number of scribble classes ``k``."""
        return len(self.ids)


def prepare_scribbles(scribbles: Any, shape: tuple[int, int], n_clusters: int) -> Scribbles:
    """Validate a scribble label map and map its class ids to network channels ``0..k-1``.

    Parameters
    ----------
    scribbles : array_like
        Integer (or boolean) label map of the image's spatial ``shape``; 0 = unpainted.
    shape : tuple of int
        The image's ``(H, W)``.
    n_clusters : int
        ``q``: the number of network channels.

    Returns
    -------
    Scribbles

    Raises
    ------
    TypeError
        If the scribbles are not integer labels.
    ValueError
        For a wrong shape, negative ids, no painted pixel, or more classes than ``q``.
    """
    arr = np.asarray(scribbles)
    if arr.shape != tuple(shape):
        raise ValueError(
            f"scribbles must have the image's spatial shape {tuple(shape)}, got {arr.shape}"
        )
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise TypeError(f"scribbles must hold integer labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise ValueError("scribbles must not hold negative labels (0 means unpainted)")
    painted = arr > 0
    if not painted.any():
        raise ValueError("scribbles hold no painted pixel (0 means unpainted); paint at least "
                         "one stroke, or pass no scribbles")
    ids = np.unique(arr[painted])
    if len(ids) > n_clusters:
        raise ValueError(
            f"scribbles hold {len(ids)} classes but the network has only n_clusters (q) = "
            f"{n_clusters} channels; raise n_clusters or use fewer classes"
        )
    channels = np.full(arr.shape, -1, dtype=np.int64)
    channels[painted] = np.searchsorted(ids, arr[painted])
    return Scribbles(ids, channels)


def scribbles_to_working(channels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Shrink a scribble channel map (``-1`` = unpainted) to ``shape`` without losing strokes.

    Every working pixel that contains at least one painted full-resolution pixel is
    painted with the channel most of them carry (ties: the lowest channel), so
    one-pixel-wide strokes survive any reduction (nearest-neighbour resizing would
    drop most of them). Vectorised with one ``unique`` over (pixel, channel) pairs.
    """
    full_h, full_w = channels.shape
    h, w = shape
    if (h, w) == (full_h, full_w):
        return channels
    rr, cc = np.nonzero(channels >= 0)
    ch = channels[rr, cc]
    wr = np.minimum((rr * h) // full_h, h - 1)
    wc = np.minimum((cc * w) // full_w, w - 1)
    n_ch = int(ch.max()) + 1
    keys, counts = np.unique((wr * w + wc) * n_ch + ch, return_counts=True)
    pix, cls = keys // n_ch, keys % n_ch
    order = np.lexsort((-counts, pix))  # by pixel, then most frequent first (stable: low channel)
    pix, cls = pix[order], cls[order]
    first = np.r_[True, pix[1:] != pix[:-1]]
    out = np.full(h * w, -1, dtype=np.int64)
    out[pix[first]] = cls[first]
    return out.reshape(h, w)


def _output_ids(q: int, scribbles: Scribbles | None) -> np.ndarray:
    """Label id of each channel in the result: the user's ids for scribble channels."""
    if scribbles is None:
        return np.arange(q, dtype=np.int64)
    k = scribbles.n_classes
    out = np.arange(q, dtype=np.int64) + int(scribbles.ids.max()) + 1 - k
    out[:k] = scribbles.ids
    return out


# --- one image -------------------------------------------------------------------------------


def run(image: PreparedImage, p: DfcParams, ctx: RunContext) -> Iterator[Progress]:
    """Validate the scribbles (before any computation), then return the training iterator."""
    raw = ctx.inputs.get("scribbles")
    if image.spatial_dims == 3:
        if raw is not None:
            raise ValueError("dfc takes scribbles on 2-D images only; segment the volume "
                             "without scribbles, or slice by slice (spatial_dims=2)")
        return _run_volume(image, p, ctx)
    scribbles = None if raw is None else prepare_scribbles(raw, image.shape, p.n_clusters)
    return _run(image, p, ctx, scribbles)


def _run_volume(image: PreparedImage, p: DfcParams, ctx: RunContext) -> Iterator[Progress]:
    """DFC on patches of a volume: the loss of :func:`dfc_loss` on each patch, the
    continuity term weighted per axis by ``min(spacing) / spacing``."""
    weights = axis_weights(ctx)
    patch = volume_patch(image, p, ctx)
    focus = focus_blocks(image, p, ctx)

    def patch_loss(out: torch.Tensor, crop: tuple[slice, ...]
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        q = out.shape[1]
        resp = out[0].reshape(q, -1).t()
        target = resp.detach().argmax(dim=1)
        return dfc_loss(F.cross_entropy(resp, target), out, p.mu, weights), target

    with reuse_large_blocks():
        net = volume_network(image, p, ctx.seed).to(ctx.device).train()
        yield from iterate_volume(image, p, ctx, sgd_step(net, p, patch_loss),
                                  predictor=lambda: net, patch=patch, focus=focus)


def _run(image: PreparedImage, p: DfcParams, ctx: RunContext,
         scribbles: Scribbles | None) -> Iterator[Progress]:
    with reuse_large_blocks():  # keep large activation buffers in the heap (glibc)
        yield from _iterate(image, p, ctx, scribbles)


def _iterate(image: PreparedImage, p: DfcParams, ctx: RunContext,
             scribbles: Scribbles | None) -> Iterator[Progress]:
    dev = ctx.device
    full_h, full_w = image.shape
    work, _ = to_working_resolution(image.data, p.max_side)
    h, w = work.shape[:2]
    q = p.n_clusters
    with seeded(ctx.seed):
        net = FeatureNet(image.n_channels, p.n_features, q, p.n_conv, init=p.init)
    net = net.to(dev).train()
    opt = sgd(net, p.lr, p.momentum)
    x = image_tensor(work, dev)

    min_labels = p.min_labels
    if scribbles is not None:
        chan = torch.from_numpy(scribbles_to_working(scribbles.channels, (h, w)).ravel()).to(dev)
        painted = torch.nonzero(chan >= 0).squeeze(1)
        free = torch.nonzero(chan < 0).squeeze(1)
        scr_target = chan[painted]
        min_labels = scribbles.n_classes
    ids = torch.from_numpy(_output_ids(q, scribbles)).to(dev)

    monitor = ChangeMonitor(p.patience, p.change_tol)
    why = f"reached {p.max_iter} iterations"
    for step in range(1, p.max_iter + 1):
        opt.zero_grad(set_to_none=True)
        out = net(x)  # (1, q, h, w)
        resp, target, n_labels = pixel_responses(out)
        if scribbles is None:
            sim = F.cross_entropy(resp, target)
        else:
            sim = p.scribble_weight * F.cross_entropy(resp[painted], scr_target)
            if free.numel():
                sim = sim + F.cross_entropy(resp[free], target[free])
        loss = dfc_loss(sim, out, p.mu)
        loss.backward()
        opt.step()

        stop = stop_reason(n_labels, min_labels, monitor.update(target), p.patience)
        if stop:
            why = stop
        if stop or step == p.max_iter:
            break
        labels = None
        if ctx.wants_preview(step, p.max_iter):
            labels = preview_labels(ids[target], (h, w), (full_h, full_w))
        yield Progress(step=step, total=p.max_iter, loss=float(loss.item()), n_labels=n_labels,
                       labels=labels)

    up = upsample_response(out[0].detach(), (full_h, full_w))
    final = target.view(h, w) if (h, w) == (full_h, full_w) else up.argmax(dim=0)
    own = ids[final].cpu().numpy()
    # with scribbles the labels carry the user's ids: the hierarchy does not replace them
    labels, hierarchy = method_hierarchy(image, own, up, p)
    cut = p.cut > 0 and scribbles is None
    info: dict[str, Any] = {"hierarchy": hierarchy}
    if scribbles is not None:
        info["scribble_ids"] = scribbles.ids.tolist()
    message = f"stopped: {why}"
    if cut:
        message += "; " + cut_note(hierarchy, p)
    elif p.cut > 0:
        message += "; result: the scribbled classes (no hierarchy cut with scribbles)"
    yield Progress(step=step, total=p.max_iter, loss=float(loss.item()),
                   n_labels=None if cut else n_labels, labels=labels if cut else own,
                   done=True, message=message, info=info)


def memory(shape: tuple[int, ...], n_channels: int, p: DfcParams, *, lazy: bool = False) -> int:
    """Peak bytes: :func:`backprop_memory` for an image; for a volume (read whole, or a
    window at a time with ``lazy``), :func:`~napari_useg.methods._volume.volume_memory`."""
    if len(shape) == 2:
        return backprop_memory(shape, n_channels, p)
    return volume_memory(shape, n_channels, p, lazy=lazy)


METHOD = register(
    Method(
        name="dfc",
        title="Differentiable feature clustering (Kim 2020)",
        summary="A small CNN clusters the pixels of one image by training on the argmax of its "
                "own response with a spatial continuity loss; optional scribbles steer it.",
        reference="W. Kim, A. Kanezaki, M. Tanaka, Unsupervised learning of image segmentation "
                  "based on differentiable feature clustering, IEEE TIP 29, 2020",
        params=DfcParams,
        run=run,
        presets=PRESETS,
        default_preset="fast",
        uses_torch=True,
        memory=memory,
        volumes=True,
        volume_preset="volume",
        lazy_volumes=True,
        inputs=(InputInfo("scribbles", "optional strokes: painted pixels carry class ids, "
                                       "0 = unpainted", layer_type="labels"),),
    )
)
