"""DFC with reference images: one network trained on a collection, then applied to any image.

The second mode of Kim, Kanezaki, Tanaka, "Unsupervised learning of image
segmentation based on differentiable feature clustering", IEEE TIP 29, 2020
(section "segmentation with reference images"; the authors' ``demo_ref.py``), as
a dataset-level method (``dfc_ref``): :func:`napari_useg.fit` trains a
:class:`DfcRefModel` that is saved, loaded and applied like IIC or InMARS models.

Training: every image (scaled to [0, 1] by :func:`napari_useg.fit`, one set of
ranges for the collection by default) is resized, anti-aliased and without
keeping its aspect, to ``work_size x work_size``. Each SGD step takes a batch of
them through the network of the per-image mode
(:class:`~napari_useg.nn.feature_net.FeatureNet`) and minimises the same loss
(:func:`~napari_useg.methods.dfc.dfc_loss`: cross-entropy towards the argmax of
the response plus ``mu`` x spatial continuity, averaged over the whole batch),
``mu = 5`` as in ``demo_ref.py``. There is no ``min_labels`` stop. The batches:

``schedule="shuffle"`` (default)
    ``max_iter`` steps in all, each on the next ``batch_size`` images of a
    seeded shuffle of the collection (all of them when they fit in one batch).
``schedule="sorted"`` (``demo_ref.py``)
    The collection is cut into batches of ``batch_size`` consecutive images in
    collection order (a folder: sorted by file name; the last batch may be
    smaller) and each batch is trained ``max_iter`` steps in turn, so the run
    has ``max_iter`` x (number of batches) steps.

Labelling (:class:`DfcRefModel`): label ``j`` is network channel ``j - 1`` in
every image (``1..q``), computed at full resolution. The batch norms use:

``predict_bn="running"`` (default)
    the statistics gathered during training, so the same colour and texture give
    the same channel in every image (with each image's own statistics an image that
    is all sky is still spread over many labels). Batch norm is then pointwise, and
    large images are labelled in tiles with an ``n_conv``-pixel margin that give
    exactly the whole-image result. As for every saved model, the context beyond the
    image border is read by mirror reflection (:mod:`napari_useg.core.tiling`), not
    zero-padded by the convolutions.
``predict_bn="image"`` (``demo_ref.py``, which labels in train mode)
    each image's own statistics; :meth:`DfcRefModel.predict` labels the image
    whole (tiles would change the statistics; the huge-image path of
    :mod:`napari_useg.batch` does tile it) and leaves the running statistics
    untouched.

Presets
-------
``fast`` (default)
    32 channels, 200 shuffled steps of 4 images at 128 px.
``full``
    The declared defaults: p = q = 100, M = 2, 1000 shuffled steps of 8 images at
    224 px, running statistics when labelling.
``paper``
    The schedule of ``demo_ref.py``: p = q = 100, M = 2, mu = 5, 224 px, batch 1,
    1000 steps on each image in collection order, labels with each image's own
    batch-norm statistics. Two differences remain: images are resized with
    anti-aliasing (``demo_ref.py``: OpenCV bilinear without), and scaled with the
    collection's ranges (``uint8``: / 255 as the authors; pass
    ``normalisation="per_image"`` to :func:`napari_useg.fit` for per-image ranges).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.transform import resize
from torch import nn

from napari_useg.core.fitting import fit_and_label
from napari_useg.core.image import PreparedImage
from napari_useg.core.model import Model, model_class
from napari_useg.core.params import param
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, RunContext, register
from napari_useg.methods._backprop import shared
from napari_useg.methods.dfc import dfc_loss, pixel_responses
from napari_useg.nn.allocator import reuse_large_blocks
from napari_useg.nn.feature_net import FeatureNet, seeded
from napari_useg.nn.image_loop import image_tensor, sgd
from napari_useg.nn.training import Checkpoint, fingerprint, resume, save_state
from napari_useg.nn.training import run_params as _run_params
from napari_useg.nn.vat import bn_frozen

__all__ = ["DfcRefParams", "DfcRefModel", "METHOD", "PRESETS"]

SCHEDULES = ("shuffle", "sorted")
PREDICT_BN = ("running", "image")


@dataclass(frozen=True)
class DfcRefParams:
    """Parameters of DFC's reference-image mode (one network for a collection of images)."""

    n_features: int = shared("n_features")
    n_clusters: int = shared("n_clusters")
    n_conv: int = shared("n_conv")
    max_iter: int = param(1000, "SGD steps in all (schedule 'sorted': steps on each batch)",
                          low=1, high=1_000_000)
    mu: float = shared("mu", 5.0, "weight of the spatial continuity loss (5 in demo_ref.py)")
    lr: float = shared("lr")
    momentum: float = shared("momentum")
    work_size: int = param(224, "training images are resized to work_size x work_size", low=8,
                           high=4096)
    batch_size: int = param(8, "images per SGD step (at most the number of images)", low=1,
                            high=4096)
    schedule: str = param("shuffle", "batches: 'shuffle' (max_iter steps, each on the next "
                                     "batch of a seeded shuffle) or 'sorted' (consecutive "
                                     "images in collection order, max_iter steps on each "
                                     "batch, as demo_ref.py)", choices=SCHEDULES)
    predict_bn: str = param("running", "batch norm when labelling: 'running' (training "
                                       "statistics: a label means the same in every image) or "
                                       "'image' (each image's own, as demo_ref.py)",
                            choices=PREDICT_BN)
    init: str = shared("init")


#: Named parameter sets (module docstring); ``fast`` is the default.
PRESETS = {
    "fast": {"n_features": 32, "n_clusters": 32, "max_iter": 200, "work_size": 128,
             "batch_size": 4},
    "full": {},
    "paper": {"batch_size": 1, "schedule": "sorted", "predict_bn": "image"},
}


@model_class("dfc_ref")
class DfcRefModel(Model):
    """A DFC network trained on a collection; one output, ``"argmax"`` (label = channel + 1)."""

    outputs = ("argmax",)

    @classmethod
    def build_net(cls, params: DfcRefParams, n_channels: int, is_rgb: bool) -> nn.Module:
        return FeatureNet(n_channels, params.n_features, params.n_clusters, params.n_conv,
                          init=params.init)

    @property
    def multiple(self) -> int:
        return 1

    def n_labels(self, output: str | None = None) -> int:
        self.check_output(output)
        return self.params.n_clusters

    def receptive_radius(self, limit: int = 512) -> int:
        """``n_conv``: each 3x3 convolution sees one pixel further (batch norm is pointwise)."""
        return min(self.params.n_conv, limit)

    def pixel_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def label_window(self, window: np.ndarray, output: str) -> np.ndarray:
        return self.net(image_tensor(window, self.device))[0].argmax(dim=0).cpu().numpy()

    def _predict_raw(self, arr, normalise, output, tile_size, margin, on_tile) -> np.ndarray:
        if self.params.predict_bn == "running":
            return super()._predict_raw(arr, normalise, output, tile_size, margin, on_tile)
        # each image's own batch-norm statistics: the whole image at once, running ones kept
        data = normalise(np.asarray(arr))
        self.net.train()
        try:
            with torch.no_grad(), bn_frozen(self.net):
                labels = self.label_window(data, output).astype(np.int32)
        finally:
            self.net.eval()
        if on_tile is not None:
            on_tile(1, 1)
        return labels + 1


def _batches(n: int, b: int, p: DfcRefParams, rng: np.random.Generator, order: np.ndarray,
             pos: int, step: int) -> tuple[np.ndarray | None, np.ndarray, int]:
    """Indices of the images of 1-based ``step`` (None: all of them) and the shuffle state."""
    if p.schedule == "sorted":
        k = (step - 1) // p.max_iter
        return np.arange(k * b, min(n, (k + 1) * b)), order, pos
    if b == n:
        return None, order, pos
    if pos + b > n:
        order, pos = rng.permutation(n), 0
    return order[pos:pos + b], order, pos + b


def fit(images: list[PreparedImage], p: DfcRefParams, ctx: RunContext) -> Iterator[Progress]:
    """Train one DFC network on a collection (module docstring); the last snapshot holds it."""
    dev = ctx.device
    s = p.work_size
    rgb = bool(getattr(ctx, "rgb", images[0].is_rgb))
    n_ch = images[0].n_channels
    stack = np.stack([resize(im.data, (s, s) + im.data.shape[2:], order=1, anti_aliasing=True,
                             preserve_range=True).astype(np.float32) for im in images])
    xs = torch.from_numpy(np.ascontiguousarray(stack.transpose(0, 3, 1, 2))).to(dev)
    n = len(images)
    b = min(p.batch_size, n)
    total = p.max_iter * (-(-n // b) if p.schedule == "sorted" else 1)
    rng = np.random.default_rng(ctx.seed)
    with seeded(ctx.seed):
        net = DfcRefModel.build_net(p, n_ch, rgb)
    net = net.to(dev).train()
    opt = sgd(net, p.lr, p.momentum)
    run_params = _run_params(p)
    run_params.pop("max_iter")
    key = fingerprint({"method": "dfc_ref", "params": run_params, "seed": ctx.seed,
                       "shapes": [im.data.shape for im in images],
                       "sums": [float(im.data[::7, ::7].sum()) for im in images]})
    ckpt = Checkpoint(getattr(ctx, "checkpoint", None), getattr(ctx, "checkpoint_every", 50), key)
    start, extra = resume(ckpt, net, opt, rng, torch.Generator())
    order = np.asarray(extra.get("order", range(n)), dtype=np.int64)
    pos = int(extra.get("pos", n))
    step, loss, n_labels = start, None, None
    with reuse_large_blocks():  # keep large activation buffers in the heap (glibc)
        for step in range(start + 1, total + 1):
            idx, order, pos = _batches(n, b, p, rng, order, pos, step)
            xb = xs if idx is None else xs[torch.from_numpy(idx).to(dev)]
            opt.zero_grad(set_to_none=True)
            out = net(xb)
            resp, target, n_labels = pixel_responses(out)
            loss = dfc_loss(F.cross_entropy(resp, target), out, p.mu)
            loss.backward()
            opt.step()
            if ckpt.due(step, total):
                save_state(ckpt, step, net, opt, rng, torch.Generator(),
                           extra={"order": order.tolist(), "pos": pos})
            if step < total:
                yield Progress(step=step, total=total, loss=float(loss.item()),
                               n_labels=n_labels)
    net.eval()
    final = None if loss is None else float(loss.item())
    model = DfcRefModel(p, net, n_channels=n_ch, is_rgb=rgb, device=dev,
                        training={"steps": total, "seed": ctx.seed, "final_loss": final})
    yield Progress(step=step, total=total, loss=final, n_labels=n_labels, done=True,
                   message=f"trained {total} steps", info={"model": model})


def run(image: PreparedImage, p: DfcRefParams, ctx: RunContext) -> Iterator[Progress]:
    """Fit on the one image given, then label it."""
    yield from fit_and_label(fit, image, p, ctx)


METHOD = register(
    Method(
        name="dfc_ref",
        title="DFC with reference images (Kim 2020)",
        summary="Differentiable feature clustering trained on a collection of images: one "
                "small CNN whose channels are labels that mean the same in every image; then "
                "applied to any image.",
        reference="W. Kim, A. Kanezaki, M. Tanaka, Unsupervised learning of image segmentation "
                  "based on differentiable feature clustering, IEEE TIP 29, 2020",
        params=DfcRefParams,
        run=run,
        fit=fit,
        presets=PRESETS,
        default_preset="fast",
        kind="dataset",
        uses_torch=True,
    )
)
