"""The training loop of the backprop methods on a volume (Kanezaki 2018, DFC and MMT in 3-D).

They train 3-D networks (:class:`~napari_useg.nn.feature_net.FeatureNet` with ``dims=3``)
on one patch of the volume per iteration and predict the whole volume tile by tile
(:mod:`napari_useg.nn.volume_loop`); they differ only in the training step on a patch,
which the method passes in as a :data:`TrainStep` (:func:`sgd_step` makes one from a
:data:`PatchLoss` for a single network):

* Kanezaki: cross-entropy towards the argmax voted over the SLIC supervoxels in the patch;
* DFC: cross-entropy towards the argmax itself plus ``mu`` x the spatial continuity of the
  response, each axis weighted by the voxel spacing;
* MMT: both networks in turn, each towards the other's mean model's aligned labels, plus
  ``beta`` x the total variation weighted the same way.

Patches are drawn uniformly, or (``patch_focus``) centred on a region of a ``focus``
partition (supervoxels, or a regular grid of blocks) drawn by how much its intensity
stands out from the volume's median, so that rare objects are trained on as often as
the background around them (:class:`PatchSampler`). The ``min_labels`` stop counts the
labels seen over the last :data:`LABEL_WINDOW` patches (one patch of background alone
would show one or two labels long before the volume does). Previews (the whole volume
labelled while training goes on) are kept within a share of the run's time
(:class:`PreviewBudget`): on a large volume one costs more than the whole training.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from skimage.measure import block_reduce
from torch import nn

from napari_useg.core.hierarchy import (
    Hierarchy,
    fine_regions,
    merge_regions,
    region_statistics,
)
from napari_useg.core.image import PreparedImage
from napari_useg.core.progress import Progress
from napari_useg.core.registry import RunContext
from napari_useg.core.resources import patch_memory
from napari_useg.methods._hierarchy import cut_note, floored_cut
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.image_loop import sgd, stop_reason
from napari_useg.nn.volume_loop import (
    focus_probability,
    focused_patch,
    patch_shape,
    predict_volume_labels,
    random_patch,
    volume_tensor,
)

__all__ = ["LABEL_WINDOW", "PatchLoss", "PatchSampler", "PreviewBudget", "TrainStep",
           "axis_weights", "block_focus", "focus_blocks", "iterate_volume", "sgd_step",
           "tile_with_halo", "volume_hierarchy", "volume_memory", "volume_network",
           "volume_patch", "volume_spacing"]

#: Patches whose labels count towards the ``min_labels`` stop rule on a volume.
LABEL_WINDOW = 10

#: ``loss(out, crop) -> (loss, target)``: the loss of the network's response ``out``
#: ``(1, q, z, y, x)`` on the patch at ``crop`` (slices of the volume), and the argmax
#: labels ``(z*y*x,)`` of that response (for the stop rule).
PatchLoss = Callable[[torch.Tensor, tuple[slice, ...]], tuple[torch.Tensor, torch.Tensor]]

#: ``step(x, crop) -> (loss, target)``: one training step on the patch tensor ``x``
#: ``(1, C, z, y, x)`` taken at ``crop``; the loss value and the argmax labels
#: ``(z*y*x,)`` the stop rule counts.
TrainStep = Callable[[torch.Tensor, tuple[slice, ...]], tuple[float, torch.Tensor]]


def volume_spacing(ctx: RunContext) -> tuple[float, float, float]:
    """The run's voxel spacing ``(dz, dy, dx)`` (unit spacing when none was given)."""
    return tuple(ctx.spacing) if len(ctx.spacing) == 3 else (1.0, 1.0, 1.0)


def axis_weights(ctx: RunContext) -> tuple[float, float, float]:
    """Weights of a regulariser's terms along z, y and x: ``min(spacing) / spacing``, so
    each term is a difference per unit length (neighbours further apart may differ more)."""
    spacing = volume_spacing(ctx)
    return tuple(min(spacing) / s for s in spacing)


def focus_blocks(image: PreparedImage, p: Any, ctx: RunContext
                 ) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`block_focus` with blocks a quarter patch across (``None`` without
    ``p.patch_focus``): the focus of the methods without supervoxels."""
    if p.patch_focus <= 0:
        return None
    block = patch_shape(image.shape, max(4, p.patch_size // 4), volume_spacing(ctx))
    return block_focus(image.data, block)


def block_focus(data: Any, block: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Centres of a regular grid of blocks and the probability of centring a patch on each.

    The focus partition of a method without supervoxels: blocks of ``block`` voxels
    (edge voxels beyond the last whole block are left out), their mean intensity (mean over
    channels) by :func:`skimage.measure.block_reduce`, weighted as
    :func:`~napari_useg.nn.volume_loop.focus_probability` does. ``data`` is read one slab
    of ``block[0]`` z-slices at a time (a :class:`~napari_useg.core.lazy_volume.LazyVolume`
    is never read whole).

    Returns
    -------
    centres : numpy.ndarray
        ``(n, 3)`` voxel coordinates of the blocks' centres.
    prob : numpy.ndarray
        ``(n,)`` probabilities, summing to 1.
    """
    shape = tuple(int(n) for n in data.shape[:3])
    block = tuple(max(1, min(b, n)) for b, n in zip(block, shape, strict=True))
    grid = tuple(n // b for n, b in zip(shape, block, strict=True))
    bz, by, bx = block
    slabs = []
    for z in range(grid[0]):  # one slab of blocks at a time: memory of a slab
        slab = data[z * bz:(z + 1) * bz, :grid[1] * by, :grid[2] * bx]
        slabs.append(block_reduce(slab.mean(axis=-1, dtype=np.float32), block, np.mean))
    means = np.concatenate(slabs, axis=0).ravel()
    cells = np.indices(grid)
    centres = np.stack([(g.ravel() + 0.5) * b for g, b in zip(cells, block, strict=True)], 1)
    return centres, focus_probability(np.full(len(means), float(np.prod(block))), means)


class PatchSampler:
    """Draws training patches: uniform, or with probability ``p.patch_focus`` centred on a
    region of ``focus`` (``(centres, prob)``; ``None``: every patch uniform)."""

    def __init__(self, shape: tuple[int, ...], patch: tuple[int, ...],
                 focus: tuple[np.ndarray, np.ndarray] | None, patch_focus: float,
                 rng: np.random.Generator) -> None:
        self.shape, self.patch, self.focus = shape, patch, focus
        self.patch_focus, self.rng = patch_focus, rng

    def __call__(self) -> tuple[slice, ...]:
        rng = self.rng
        if self.focus is not None and self.patch_focus > 0 and rng.random() < self.patch_focus:
            centres, prob = self.focus
            return focused_patch(self.shape, self.patch, centres[rng.choice(len(prob), p=prob)],
                                 rng)
        return random_patch(self.shape, self.patch, rng)


def volume_network(image: PreparedImage, p: Any, seed: int) -> FeatureNet:
    """A 3-D :class:`~napari_useg.nn.feature_net.FeatureNet` of the run's size, seeded."""
    with seeded(seed):
        return FeatureNet(image.n_channels, p.n_features, p.n_clusters, p.n_conv, init=p.init,
                          dims=3)


def sgd_step(net: FeatureNet, p: Any, patch_loss: PatchLoss) -> TrainStep:
    """The training step of a one-network method: ``patch_loss``, backward, one SGD step."""
    opt = sgd(net, p.lr, p.momentum)

    def step(x: torch.Tensor, crop: tuple[slice, ...]) -> tuple[float, torch.Tensor]:
        opt.zero_grad(set_to_none=True)
        loss, target = patch_loss(net(x), crop)
        loss.backward()
        opt.step()
        return float(loss.item()), target

    return step


#: Largest share of a volume run's time (as estimated without previews) that previews may
#: add. One preview predicts every tile of the volume: on a 256x512x512 volume about 50 s
#: on two CPU threads against 0.03 s per training step, so ten previews made the run 13
#: times as long (docs/volumes.md).
PREVIEW_SHARE = 0.5


class PreviewBudget:
    """Whether a preview asked for at a step fits in the previews' share of the run.

    A preview of the whole volume runs the network on ``n_tiles`` tiles; until one has
    been timed, it is estimated at a third of a training step per tile (a step is a
    forward and a backward pass on a patch of the tile's size), then at the last preview's
    time. A preview is made when the previews so far plus this one stay within ``share``
    x the estimated run without previews (every iteration plus the final prediction), pro
    rata of the iterations done: previews are spread over the run, and a volume whose
    prediction costs more than that share of the run gets none before the result. Which
    previews are made depends on timings; the result does not.

    Examples
    --------
    >>> budget = PreviewBudget(n_tiles=3, max_iter=100)
    >>> budget.step_done(0.1)
    >>> budget.allows(1), budget.allows(50)     # one preview ~ 0.1 s; run ~ 10.1 s
    (False, True)
    >>> big = PreviewBudget(n_tiles=5000, max_iter=100)
    >>> big.step_done(0.1)
    >>> big.allows(99)                           # one preview ~ 167 s; run ~ 177 s
    False
    """

    def __init__(self, n_tiles: int, max_iter: int, share: float | None = None) -> None:
        self.n_tiles = int(n_tiles)
        self.max_iter = int(max_iter)
        self.share = float(PREVIEW_SHARE if share is None else share)
        self.steps = 0
        self.step_seconds = 0.0
        self.spent = 0.0
        self.last_preview: float | None = None

    def step_done(self, seconds: float) -> None:
        """Record one training step's time."""
        self.steps += 1
        self.step_seconds += float(seconds)

    def preview_done(self, seconds: float) -> None:
        """Record one preview's time."""
        self.spent += float(seconds)
        self.last_preview = float(seconds)

    def allows(self, step: int) -> bool:
        """Whether a preview after iteration ``step`` stays within the budget."""
        per_step = self.step_seconds / max(self.steps, 1)
        preview = (self.last_preview if self.last_preview is not None
                   else self.n_tiles * per_step / 3.0)
        run = self.max_iter * per_step + preview
        return self.spent + preview <= self.share * run * min(1.0, step / self.max_iter)


def iterate_volume(image: PreparedImage, p: Any, ctx: RunContext, train_step: TrainStep, *,
                   predictor: Callable[[], nn.Module], patch: tuple[int, ...],
                   focus: tuple[np.ndarray, np.ndarray] | None,
                   finish: Callable[[np.ndarray], np.ndarray] | None = None
                   ) -> Iterator[Progress]:
    """Train on one patch per iteration, then predict the whole volume tile by tile.

    Parameters
    ----------
    image : PreparedImage
        The volume (``spatial_dims == 3``).
    p : parameters
        A backprop method's parameters (``n_clusters``, ``n_conv``, ``max_iter``,
        ``min_labels``, ``patch_focus``).
    ctx : RunContext
    train_step : TrainStep
        The method's training step on one patch (:func:`sgd_step` for one network).
    predictor : callable
        Returns the network whose argmax labels the volume (called before every
        whole-volume prediction: previews and the result).
    patch : tuple of int
        Voxels per axis of a training patch (and of a prediction tile).
    focus : (centres, prob) or None
        Where focused patches are centred (``None``: every patch uniform).
    finish : callable, optional
        Applied to the predicted labels of the whole volume (previews and result).

    Yields
    ------
    Progress
        One per iteration; the last one (``done``) carries the labels of the volume.
    """
    dev = ctx.device
    q = p.n_clusters
    draw = PatchSampler(image.shape, patch, focus, p.patch_focus,
                        np.random.default_rng(ctx.seed))

    def whole_volume() -> np.ndarray:
        labels = predict_volume_labels(predictor(), image.data, patch, p.n_conv, dev)
        return labels if finish is None else finish(labels)

    budget = PreviewBudget(math.prod(math.ceil(n / t) for n, t in zip(image.shape, patch,
                                                                        strict=True)),
                           p.max_iter)
    why = f"reached {p.max_iter} iterations"
    step, loss_value, n_labels = 0, float("nan"), q
    seen = torch.zeros((LABEL_WINDOW, q), dtype=torch.bool, device=dev)
    for step in range(1, p.max_iter + 1):
        started = time.perf_counter()
        crop = draw()
        loss_value, target = train_step(volume_tensor(image.data[crop], dev), crop)
        with torch.no_grad():
            seen[step % LABEL_WINDOW] = torch.bincount(target, minlength=q) > 0
            n_labels = int(seen.any(dim=0).sum())
        budget.step_done(time.perf_counter() - started)
        stop = None
        if step >= LABEL_WINDOW:
            stop = stop_reason(n_labels, p.min_labels, False, 0)
        if stop:
            why = stop + f" (over the last {LABEL_WINDOW} patches)"
            break
        if step == p.max_iter:
            break
        labels = None
        if ctx.wants_preview(step, p.max_iter) and budget.allows(step):
            started = time.perf_counter()
            labels = whole_volume()
            budget.preview_done(time.perf_counter() - started)
        yield Progress(step=step, total=p.max_iter, loss=loss_value, n_labels=n_labels,
                       labels=labels)
    final = whole_volume()
    info: dict[str, Any] = {}
    message = f"stopped: {why}; patches of {'x'.join(map(str, patch))} voxels"
    if p.cut > 0:
        final, info["hierarchy"] = volume_hierarchy(image, final, p)
        message += "; " + cut_note(info["hierarchy"], p)
    yield Progress(step=step, total=p.max_iter, loss=loss_value,
                   n_labels=int(np.unique(final).size), labels=final, done=True,
                   message=message, info=info)


#: Voxels a volume hierarchy's merge costs are divided by (``pixel_scale`` of
#: :func:`~napari_useg.core.hierarchy.build_hierarchy`): a fixed number, so that a cut means
#: the same merges in a volume of any size (the costs of one image's own size would make
#: a cut merge more in a larger volume).
VOLUME_PIXEL_SCALE = 1e6

#: Regions of fewer voxels (specks at class boundaries, most of the regions of a noisy
#: class map) join their cheapest larger neighbour before the greedy merging
#: (``absorb_below`` of :func:`~napari_useg.core.hierarchy.merge_regions`): such a merge
#: costs under 8 (squared intensity difference at most 1) per million voxels, height
#: (8e-6) ** (1/6) = 0.141, below the presets' cut, so the cut would make it anyway.
SPECK_VOXELS = 8

def volume_hierarchy(image: PreparedImage, labels: np.ndarray, p: Any
                     ) -> tuple[np.ndarray, Hierarchy]:
    """The volume's labels cut from a merge tree of their 3-D regions (``p.cut`` > 0).

    The regions are the face-connected components of ``labels``; neighbouring regions
    merge by Ward's criterion on their mean intensities (each channel as prepared, in
    ``[0, 1]``), with merge costs per :data:`VOLUME_PIXEL_SCALE` voxels. The result is the
    cut at ``p.cut`` (at least ``p.min_labels`` regions): specks and rims whose intensity
    is close to a neighbour's join it, while regions that differ stay apart. Each region
    of the cut has its own label.

    Returns
    -------
    labels : numpy.ndarray
        ``int32`` regions ``1..k`` of the cut.
    hierarchy : Hierarchy
        The merge tree, its default cut at that level.
    """
    base = fine_regions(labels)
    counts, means = region_statistics(base, image.data)  # a lazy volume: read once
    hier = merge_regions(base, counts, means, default_threshold=p.cut,
                         pixel_scale=VOLUME_PIXEL_SCALE, absorb_below=SPECK_VOXELS)
    return floored_cut(hier, p.min_labels)


def tile_with_halo(shape: tuple[int, ...], p: Any) -> tuple[int, ...]:
    """Voxels per axis of a patch (or prediction tile) with its halo of ``n_conv`` voxels,
    an upper bound that needs no spacing (for memory estimates)."""
    side = p.patch_size or max(shape)
    return tuple(min(n, side + 2 * p.n_conv) for n in shape)


def volume_memory(shape: tuple[int, ...], n_channels: int, p: Any, *, networks: int = 1,
                  lazy: bool = False) -> int:
    """Peak bytes of a volume run without supervoxels (DFC, MMT).

    ``networks`` networks on one patch with its halo (activations and gradients, the
    regulariser's differences), plus per voxel of the volume: read into memory, the
    prepared data, the focus blocks' channel mean and the labels (20 bytes, measured 22
    with objects included: docs/volumes.md, plus 4 per channel); ``lazy`` (read a window
    at a time), only the labels and their relabelling to ``int32`` (8 bytes). A result
    cut from the hierarchy of its regions (``p.cut`` > 0) adds the regions, their
    connected-component labelling and the cut (24 bytes in all instead of 20, and 24
    instead of 8 when lazy; measured 22 and 23 on a 256x512x512 volume).
    """
    patch = tile_with_halo(shape, p)
    per_voxel = 4 * networks * (3 * p.n_conv * p.n_features + 8 * p.n_clusters + n_channels) * 2
    cut = p.cut > 0
    if lazy:
        n_patch = int(np.prod(patch, dtype=np.int64))
        per_volume_voxel = 24 if cut else 8
        return int(n_patch * per_voxel + per_volume_voxel * int(np.prod(shape, dtype=np.int64)))
    return patch_memory(shape, n_channels, patch, per_voxel, volume_copies=24 if cut else 20)


def volume_patch(image: PreparedImage, p: Any, ctx: RunContext) -> tuple[int, ...]:
    """The training patch of a run: ``p.patch_size`` voxels across along the finest axis."""
    return patch_shape(image.shape, p.patch_size, volume_spacing(ctx))
