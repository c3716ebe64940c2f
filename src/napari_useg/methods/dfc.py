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
:func:`segment_collection` (and :func:`fit_reference` / :class:`ReferenceModel`):
train one network on several images resized to a square working size (mu = 5 as in
the authors' ``demo_ref.py``), then label each image at full size with it, so that a
label means the same thing in every image.

Presets
-------
``paper``
    p = q = 100, M = 2, mu = 1, up to 1000 iterations at full resolution.
``fast`` (default)
    Fewer channels, training at a working resolution, and the labels-stable stop rule
    of the Kanezaki fast preset; the last response is brought back to full resolution
    (bilinear) before the argmax. Chosen by measurement (docs/dfc_mmt.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import resize

from napari_useg.core.image import (
    PreparedImage,
    apply_ranges,
    channel_ranges,
    channels_last,
    to_working_resolution,
)
from napari_useg.core.labels import sequential
from napari_useg.core.params import build_params, param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import InputInfo, Method, RunContext, register
from napari_useg.methods._backprop import BackpropParams
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

__all__ = [
    "DfcParams",
    "DfcReferenceParams",
    "METHOD",
    "REFERENCE_PRESETS",
    "ReferenceModel",
    "fit_reference",
    "iter_fit_reference",
    "segment_collection",
]


@dataclass(frozen=True)
class DfcParams(BackpropParams):
    """Parameters of differentiable feature clustering (Kim et al. 2020), one image."""

    min_labels: int = param(3, "stop once the argmax gives this many labels or fewer "
                               "(with scribbles: the number of scribble classes)", low=1,
                            high=1024)
    mu: float = param(1.0, "weight of the spatial continuity loss", low=0.0, high=1000.0)
    scribble_weight: float = param(0.5, "weight of the cross-entropy on painted scribble pixels",
                                   low=0.0, high=1000.0)


PRESETS = {
    "paper": {},
    "fast": {
        "n_features": 32,
        "n_clusters": 32,
        "max_iter": 150,
        "max_side": 240,
        "patience": 10,
        "change_tol": 0.002,
    },
}


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
    scribbles = None if raw is None else prepare_scribbles(raw, image.shape, p.n_clusters)
    return _run(image, p, ctx, scribbles)


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
        resp = out[0].permute(1, 2, 0).reshape(-1, q)
        with torch.no_grad():
            target = resp.argmax(dim=1)
            n_labels = int(torch.bincount(target, minlength=q).count_nonzero().item())
        if scribbles is None:
            loss = F.cross_entropy(resp, target)
        else:
            loss = p.scribble_weight * F.cross_entropy(resp[painted], scr_target)
            if free.numel():
                loss = loss + F.cross_entropy(resp[free], target[free])
        if p.mu:
            loss = loss + p.mu * spatial_continuity_loss(out)
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

    if (h, w) == (full_h, full_w):
        final = target.view(h, w)
    else:
        final = upsample_response(out[0].detach(), (full_h, full_w)).argmax(dim=0)
    info = {} if scribbles is None else {"scribble_ids": scribbles.ids.tolist()}
    yield Progress(step=step, total=p.max_iter, loss=float(loss.item()), n_labels=n_labels,
                   labels=ids[final].cpu().numpy(), done=True, message=f"stopped: {why}",
                   info=info)


# --- reference-image mode --------------------------------------------------------------------


@dataclass(frozen=True)
class DfcReferenceParams:
    """Parameters of DFC's reference-image mode (one network for a collection of images)."""

    n_features: int = param(100, "p: filters of each conv component", low=1, high=1024)
    n_clusters: int = param(100, "q: response channels, the most labels possible", low=2,
                            high=1024)
    n_conv: int = param(2, "M: number of conv components (3x3 conv, ReLU, BN)", low=1, high=10)
    max_iter: int = param(1000, "SGD steps (each on one batch of images)", low=1, high=1_000_000)
    mu: float = param(5.0, "weight of the spatial continuity loss (5 in reference mode)",
                      low=0.0, high=1000.0)
    lr: float = param(0.1, "SGD learning rate", low=1e-6, high=10.0)
    momentum: float = param(0.9, "SGD momentum", low=0.0, high=0.999)
    work_size: int = param(224, "training images are resized to work_size x work_size", low=8,
                           high=4096)
    batch_size: int = param(8, "images per SGD step (at most the number of images)", low=1,
                            high=4096)
    init: str = param("xavier", "weight initialisation", choices=("xavier", "torch"))


#: Presets of the reference-image mode: ``paper`` is the authors' ``demo_ref.py``.
REFERENCE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "fast": {"n_features": 32, "n_clusters": 32, "max_iter": 200, "work_size": 128,
             "batch_size": 4},
}


@dataclass
class ReferenceModel:
    """A DFC network trained on a collection of images (reference-image mode).

    The network is in evaluation mode: its batch norms use the statistics gathered
    during training, so the same colour and texture give the same channel in every
    image (with per-image statistics, as the authors' script does, every image
    would be spread over many labels whatever it contains). Inputs are scaled to
    ``[0, 1]`` with the per-channel ranges of the training collection (``lo``,
    ``hi``), not per image.

    Attributes
    ----------
    net : FeatureNet
        The trained network.
    params : DfcReferenceParams
        How it was trained.
    lo, hi : numpy.ndarray
        Per-channel raw-value ranges mapped to ``[0, 1]``.
    n_channels : int
        Image channels the network expects.
    device : torch.device
        Where the network lives.
    """

    net: FeatureNet
    params: DfcReferenceParams
    lo: np.ndarray
    hi: np.ndarray
    n_channels: int
    device: torch.device

    def predict(self, image: Any, *, channel_axis: int | None = None,
                tile: int = 1024) -> np.ndarray:
        """Label one image at full size: the network's channel + 1 at every pixel.

        Label ``k`` means channel ``k - 1`` in every image (no per-image
        renumbering). Large images are processed in tiles of ``tile`` pixels with a
        margin of ``n_conv`` pixels: the network sees at most that far, so the result
        equals a whole-image prediction.

        Parameters
        ----------
        image : array_like
            Same layout rules as :func:`napari_useg.segment`; same channels as training.
        channel_axis : int, optional
            Axis holding the channels.
        tile : int
            Side of the tiles.

        Returns
        -------
        numpy.ndarray
            ``int32`` ``(H, W)`` labels in ``1..q``.
        """
        arr, _ = channels_last(image, channel_axis)
        if arr.shape[-1] != self.n_channels:
            raise ValueError(f"the model was trained on {self.n_channels}-channel images, got "
                             f"{arr.shape[-1]} channel(s)")
        if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 8:
            raise ValueError(f"tile must be an integer >= 8, got {tile!r}")
        data = apply_ranges(np.asarray(arr), self.lo, self.hi)
        return _predict_channels(self.net, data, self.device, int(tile),
                                 self.params.n_conv) + 1


def _predict_channels(net: FeatureNet, data: np.ndarray, device: torch.device, tile: int,
                      margin: int) -> np.ndarray:
    """Argmax channel of an eval-mode network, tile by tile (cores of ``tile`` px, ``margin``)."""
    full_h, full_w = data.shape[:2]
    out = np.empty((full_h, full_w), dtype=np.int32)
    net.eval()
    with torch.no_grad():
        for y0 in range(0, full_h, tile):  # loop over tiles, not pixels
            for x0 in range(0, full_w, tile):
                y1, x1 = min(y0 + tile, full_h), min(x0 + tile, full_w)
                wy0, wx0 = max(0, y0 - margin), max(0, x0 - margin)
                wy1, wx1 = min(full_h, y1 + margin), min(full_w, x1 + margin)
                resp = net(image_tensor(data[wy0:wy1, wx0:wx1], device))[0]
                lab = resp.argmax(dim=0)[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0]
                out[y0:y1, x0:x1] = lab.cpu().numpy()
    return out


def _as_image_list(images: Any) -> list[Any]:
    if isinstance(images, np.ndarray) or (hasattr(images, "shape") and hasattr(images, "ndim")):
        if images.ndim < 3:
            raise ValueError(
                f"images must be a sequence of images or a stack with a leading image axis, got "
                f"a {images.ndim}-D array"
            )
        return [images[i] for i in range(images.shape[0])]
    if isinstance(images, (str, bytes)) or not isinstance(images, Sequence):
        raise TypeError(f"images must be a sequence of arrays or a stack, got "
                        f"{type(images).__name__}")
    return list(images)


def _prepare_collection(images: Any, channel_axis: int | None
                        ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Validate a collection; return ``(H, W, C)`` float images in [0, 1] and the ranges used."""
    items = _as_image_list(images)
    if not items:
        raise ValueError("no images given")
    raws = []
    for k, im in enumerate(items):
        try:
            raws.append(np.asarray(channels_last(im, channel_axis)[0]))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"image {k}: {exc}") from None
    lo, hi = channel_ranges(raws)
    return [apply_ranges(r, lo, hi) for r in raws], lo, hi


def iter_fit_reference(data: list[np.ndarray], p: DfcReferenceParams,
                       ctx: RunContext) -> Iterator[Progress]:
    """Train one network on a collection (images already scaled to [0, 1], ``(H, W, C)``).

    Every image is resized (anti-aliased, aspect not kept) to
    ``work_size x work_size``; each SGD step takes the next ``batch_size`` images
    of a seeded shuffle of the collection (all of them when they fit in one batch,
    as in the authors' script), with the DFC loss of the single-image mode (the
    continuity term averaged over the whole batch). The last snapshot carries the
    trained network in ``info["net"]`` (switched to evaluation mode).
    """
    dev = ctx.device
    s = p.work_size
    q = p.n_clusters
    stack = np.stack([resize(d, (s, s) + d.shape[2:], order=1, anti_aliasing=True,
                             preserve_range=True).astype(np.float32) for d in data])
    xs = torch.from_numpy(np.ascontiguousarray(stack.transpose(0, 3, 1, 2))).to(dev)
    n = len(data)
    b = min(p.batch_size, n)
    rng = np.random.default_rng(ctx.seed)
    with seeded(ctx.seed):
        net = FeatureNet(stack.shape[-1], p.n_features, q, p.n_conv, init=p.init)
    net = net.to(dev).train()
    opt = sgd(net, p.lr, p.momentum)
    order = np.arange(n)
    pos = n
    with reuse_large_blocks():  # keep large activation buffers in the heap (glibc)
        for step in range(1, p.max_iter + 1):
            if b == n:
                xb = xs
            else:
                if pos + b > n:
                    order, pos = rng.permutation(n), 0
                xb = xs[torch.from_numpy(order[pos:pos + b]).to(dev)]
                pos += b
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            resp = out.permute(0, 2, 3, 1).reshape(-1, q)
            with torch.no_grad():
                target = resp.argmax(dim=1)
                n_labels = int(torch.bincount(target, minlength=q).count_nonzero().item())
            loss = F.cross_entropy(resp, target)
            if p.mu:
                loss = loss + p.mu * spatial_continuity_loss(out)
            loss.backward()
            opt.step()
            done = step == p.max_iter
            yield Progress(step=step, total=p.max_iter, loss=float(loss.item()), n_labels=n_labels,
                           done=done, message="trained" if done else "",
                           info={"net": net.eval()} if done else {})


def _setup(images: Any, preset: str | None, channel_axis: int | None, seed: int, device: str,
           params: dict[str, Any]
           ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, DfcReferenceParams, RunContext]:
    """Validate everything of the reference mode before any computation."""
    from napari_useg.core.device import resolve_device
    from napari_useg.core.options import check_seed as _check_seed

    preset = "fast" if preset is None else preset
    if preset not in REFERENCE_PRESETS:
        raise ValueError(f"reference mode has no preset {preset!r}; presets: "
                         f"{sorted(REFERENCE_PRESETS)}")
    p = build_params(DfcReferenceParams, {**REFERENCE_PRESETS[preset], **params},
                     method="dfc (reference mode)")
    data, lo, hi = _prepare_collection(images, channel_axis)
    ctx = RunContext(seed=_check_seed(seed), device=resolve_device(device))
    return data, lo, hi, p, ctx


def _train(data: list[np.ndarray], lo: np.ndarray, hi: np.ndarray, p: DfcReferenceParams,
           ctx: RunContext, progress: bool) -> ReferenceModel:
    snap = None
    for snap in iter_fit_reference(data, p, ctx):
        if progress and (snap.step % 10 == 0 or snap.done):
            import sys

            print(f"[dfc reference] {snap}", file=sys.stderr)
    assert snap is not None and snap.done
    return ReferenceModel(snap.info["net"], p, lo, hi, data[0].shape[-1], ctx.device)


def fit_reference(images: Any, *, preset: str | None = None, channel_axis: int | None = None,
                  seed: int = 0, device: str = "auto", progress: bool = False,
                  **params: Any) -> ReferenceModel:
    """Train a DFC network on a collection of images (reference-image mode).

    Parameters
    ----------
    images : sequence of array_like, or array
        The images (same number of channels and data type), or a stack with the
        image index first (e.g. a ``(N, H, W)`` or ``(N, H, W, 3)`` napari layer).
        Sizes may differ.
    preset : {"fast", "paper"}, optional
        Named parameter set of :data:`REFERENCE_PRESETS` (default ``"fast"``).
    channel_axis : int, optional
        Channel axis of each image (as in :func:`napari_useg.segment`).
    seed : int
        Seed of the initialisation and of the batch order.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    progress : bool
        Print one line per 10 steps to stderr.
    **params
        Fields of :class:`DfcReferenceParams` (override the preset).

    Returns
    -------
    ReferenceModel
        Call :meth:`ReferenceModel.predict` on any image with the same channels.

    Raises
    ------
    TypeError, ValueError
        For bad images, presets or parameters, before any training.
    """
    data, lo, hi, p, ctx = _setup(images, preset, channel_axis, seed, device, params)
    return _train(data, lo, hi, p, ctx, progress)


def segment_collection(images: Any, *, preset: str | None = None,
                       channel_axis: int | None = None, seed: int = 0, device: str = "auto",
                       progress: bool = False, **params: Any) -> list[np.ndarray]:
    """Segment several images with one DFC network: labels mean the same in every image.

    DFC's reference-image mode (the authors' ``demo_ref.py``): one network is
    trained on all the images resized to ``work_size x work_size`` (continuity
    weight ``mu`` = 5) and then applied to each image at full size.

    Parameters
    ----------
    images : sequence of array_like, or array
        The images, or a stack with the image index first.
    preset, channel_axis, seed, device, progress, **params
        As in :func:`fit_reference`.

    Returns
    -------
    list of numpy.ndarray
        ``int32`` label maps, one per image, numbered ``1..n`` over the whole
        collection: the same label is the same network channel in every image.

    Raises
    ------
    TypeError, ValueError
        For bad images, presets or parameters, before any training.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> imgs = [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(2)]
    >>> out = segment_collection(imgs, max_iter=2, n_features=4, n_clusters=4, work_size=16,
    ...                          device="cpu")
    >>> [o.shape for o in out]
    [(24, 24), (24, 24)]
    """
    data, lo, hi, p, ctx = _setup(images, preset, channel_axis, seed, device, params)
    model = _train(data, lo, hi, p, ctx, progress)
    raw = [_predict_channels(model.net, d, model.device, 1024, p.n_conv) for d in data]
    joint = sequential(np.concatenate([r.ravel() for r in raw]))
    out, start = [], 0
    for r in raw:
        out.append(joint[start:start + r.size].reshape(r.shape))
        start += r.size
    return out


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
        inputs=(InputInfo("scribbles", "optional strokes: painted pixels carry class ids, "
                                       "0 = unpainted", layer_type="labels"),),
    )
)
