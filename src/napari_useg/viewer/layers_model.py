"""Dataset-level models on napari layers: train on Image layers, apply to a layer (Qt-free).

What the model widget does, without the widget. Like :mod:`napari_useg.viewer.layers` it works
with ``napari.Viewer`` or the Qt-free ``napari.components.ViewerModel`` and imports no Qt::

    from napari_useg.viewer.layers_model import train_on_layers, predict_on_layer
    model = train_on_layers(viewer, ["tile_a", "tile_b"], method="iic", n_clusters=3)
    predict_on_layer(viewer, "tile_c", model)          # -> Labels layer "tile_c iic labels"

The pieces, in the order the widget uses them:

* :func:`images_from_layers` turns Image layers into a training collection: every
  2-D slice of a stack layer is one image; RGB, grayscale, or multichannel with a
  channel axis, as :func:`napari_useg.viewer.layers.source_from_layers` reads a layer;
* :func:`make_training` validates method, parameters, seed and device into a
  :class:`TrainingJob`; :meth:`TrainingJob.iter` trains (the widget's worker
  iterates it) and returns the fitted :class:`~napari_useg.core.model.Model`;
* :func:`make_prediction` checks a layer against a model (channel count) into a
  :class:`PredictionJob`; :meth:`PredictionJob.iter` predicts slice by slice (tiled)
  and :func:`write_prediction` writes the Labels layer, never over a layer the user
  edited (see :func:`napari_useg.viewer.layers.choose_target`).

**Stopping keeps the model trained so far.** Training runs with a checkpoint in a
temporary folder, saved every ``checkpoint_every`` steps (default 1: every step).
When ``should_stop()`` becomes true between two steps, training stops and the model
is rebuilt from the last checkpoint by resuming :func:`napari_useg.iter_fit` with
``steps`` set to the steps done, so the kept model is exactly what an uninterrupted
``fit(..., steps=<steps done>)`` gives. Stopping before the first checkpoint gives no
model.

Labels of a model mean the same on every image (label ``j`` is cluster ``j - 1``), so
slices of a stack need no alignment. Re-running into an existing result layer renames
the new ids to agree with the labels it holds (:func:`napari_useg.align_labels`), so
colours stay when a model is retrained; the raw cluster ids are the labels of a fresh
layer.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.image import channels_last
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, all_methods, get_method
from napari_useg.viewer.layers import (
    META_KEY,
    LayerSource,
    _align,
    _resolve_layer,
    checksum,
    choose_target,
    source_from_layers,
)

__all__ = [
    "LayerImages",
    "TrainingJob",
    "PredictionJob",
    "dataset_methods",
    "images_from_layers",
    "layer_channels",
    "make_training",
    "train_on_layers",
    "make_prediction",
    "prepare_target",
    "write_prediction",
    "predict_on_layer",
    "describe_fit",
]


def dataset_methods() -> dict[str, Method]:
    """The registered methods of kind ``"dataset"`` (trained on a collection), by name."""
    return {n: m for n, m in all_methods().items() if m.kind == "dataset" and m.fit is not None}


@dataclass(frozen=True)
class LayerImages:
    """A training collection read from Image layers.

    Attributes
    ----------
    arrays : list
        Raw ``(H, W, C)`` views, one per 2-D image (dask data stays lazy).
    names : list of str
        ``"<layer>"`` or ``"<layer>[i, ...]"`` for the slices of a stack.
    n_channels : int
        Channels of every image.
    rgb : bool
        Whether the images are RGB.
    layer_names : tuple of str
        The source layers.
    """

    arrays: list[Any]
    names: list[str]
    n_channels: int
    rgb: bool
    layer_names: tuple[str, ...]


def _slices(src: LayerSource) -> list[tuple[tuple[int, ...], Any]]:
    stack = src.stack_shape
    return [(idx, src.data[idx] if idx else src.data)
            for idx in (np.ndindex(*stack) if stack else [()])]


def _source(layer: Any, channel_axis: int | None) -> LayerSource:
    # the channel axis applies to multichannel layers: an RGB layer's channels are its last
    # axis, and a 2-D layer has none (so one setting serves a mixed selection of layers)
    data = getattr(layer, "data", None)
    if getattr(layer, "rgb", False) or (data is not None and getattr(data, "ndim", 3) < 3):
        channel_axis = None
    return source_from_layers(layer, channel_axis)


def layer_channels(layer: Any, channel_axis: int | None = None, viewer: Any = None) -> int:
    """Number of channels a model sees in ``layer`` (RGBA counts 3), without reading pixels."""
    src = _source(_resolve_layer(viewer, layer), channel_axis)
    _, first = _slices(src)[0]
    arr, _ = channels_last(first, src.slice_channel_axis)
    return int(arr.shape[-1])


def images_from_layers(layers: Any, channel_axis: int | None = None,
                       viewer: Any = None) -> LayerImages:
    """Read Image layers as a training collection (every 2-D slice of a stack is one image).

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        The layers (names need ``viewer``).
    channel_axis : int, optional
        Channel axis of the (non-RGB) multichannel layers; RGB and 2-D layers ignore it.
    viewer : napari viewer, optional
        To resolve layer names.

    Returns
    -------
    LayerImages

    Raises
    ------
    ValueError, TypeError
        For no layers, non-Image layers, a bad channel axis, images too small, or
        images with different numbers of channels.
    """
    if not isinstance(layers, (list, tuple)):
        layers = [layers]
    layers = [_resolve_layer(viewer, lay) for lay in layers]
    if not layers:
        raise ValueError("no Image layer selected: choose one or more layers to train on")
    names_seen = [getattr(lay, "name", "") for lay in layers]
    if len(set(map(id, layers))) != len(layers):
        raise ValueError(f"a layer was given twice: {names_seen}")
    arrays: list[Any] = []
    names: list[str] = []
    rgbs: list[bool] = []
    counts: dict[str, int] = {}
    for lay in layers:
        src = _source(lay, channel_axis)
        for idx, raw in _slices(src):
            name = f"{lay.name}[{', '.join(map(str, idx))}]" if idx else str(lay.name)
            try:
                arr, is_rgb = channels_last(raw, src.slice_channel_axis)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"layer {lay.name!r}: {exc}") from exc
            arrays.append(arr)
            names.append(name)
            rgbs.append(is_rgb)
            counts.setdefault(str(lay.name), int(arr.shape[-1]))
    if len(set(counts.values())) > 1:
        raise ValueError(
            "the layers have different numbers of channels ("
            + ", ".join(f"{k!r}: {v}" for k, v in counts.items())
            + "); a model needs one channel layout (set the channel axis, or train on "
            "layers of one kind)"
        )
    return LayerImages(arrays, names, int(arrays[0].shape[-1]), all(rgbs),
                       tuple(str(lay.name) for lay in layers))


def describe_fit(snap: Progress) -> str:
    """One status line for a training snapshot: step, loss and the method's message."""
    parts = [f"step {snap.step}/{snap.total}"]
    if snap.loss is not None:
        parts.append(f"loss {snap.loss:.4g}")
    if snap.message:
        parts.append(snap.message)
    return ", ".join(parts)


@dataclass
class TrainingJob:
    """A validated training run of a dataset-level method on layers (see :func:`make_training`).

    Attributes
    ----------
    images : LayerImages
        The collection.
    method : str
        Registry name (``"iic"``, ``"inmars"``).
    preset : str or None
        Preset the parameters start from.
    params : dict
        Parameter values overriding the preset.
    seed : int
        Seed.
    device : str
        Device requested.
    normalisation : str
        ``"dataset"`` or ``"per_image"`` (see :func:`napari_useg.iter_fit`).
    checkpoint_every : int
        Steps between the checkpoints that Stop falls back to.
    last : Progress or None
        The latest snapshot.
    stopped_at : int or None
        Steps kept when the run was stopped early.
    """

    images: LayerImages
    method: str
    preset: str | None
    params: dict[str, Any]
    seed: int
    device: str
    normalisation: str = "dataset"
    checkpoint_every: int = 1
    last: Progress | None = None
    stopped_at: int | None = None
    _t0: float = field(default=0.0, repr=False)

    def _fit_kwargs(self) -> dict[str, Any]:
        return dict(preset=self.preset, channel_axis=-1, seed=self.seed, device=self.device,
                    normalisation=self.normalisation, **self.params)

    def iter(self, should_stop: Callable[[], bool] | None = None
             ) -> Generator[Progress, None, Any]:
        """Train, yielding a :class:`~napari_useg.core.progress.Progress` per step.

        Parameters
        ----------
        should_stop : callable, optional
            Polled after every step; when it returns true training stops and the
            model of the last checkpoint is returned.

        Returns
        -------
        napari_useg.core.model.Model or None
            The fitted model (``None`` when stopped before the first checkpoint).
            ``model.training`` records ``"layers"`` and, after a stop,
            ``"stopped_at"`` and ``"planned_steps"``.
        """
        from napari_useg.api import iter_fit

        self._t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="napari-useg-fit-"))
        ckpt = tmp / "checkpoint.pt"
        try:
            snaps = iter_fit(self.images.arrays, self.method, checkpoint=ckpt,
                             checkpoint_every=self.checkpoint_every, **self._fit_kwargs())
            try:
                for snap in snaps:
                    self.last = snap
                    yield snap
                    if snap.done:
                        return self._finish(snap.info["model"])
                    if should_stop is not None and should_stop():
                        break
            finally:
                snaps.close()
            return self._recover(ckpt)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _recover(self, ckpt: Path) -> Any:
        """The model of the last checkpoint: resume with ``steps`` = the steps it holds."""
        import torch

        from napari_useg.api import fit

        if not ckpt.exists():
            return None
        done = int(torch.load(ckpt, map_location="cpu", weights_only=True)["step"])
        kwargs = self._fit_kwargs()
        kwargs["steps"] = done
        model = fit(self.images.arrays, self.method, checkpoint=ckpt,
                    checkpoint_every=self.checkpoint_every, **kwargs)
        self.stopped_at = done
        planned = self.last.total if self.last is not None else None
        model.training.update({"stopped_at": done, "planned_steps": planned})
        return self._finish(model)

    def _finish(self, model: Any) -> Any:
        model.training.update({"layers": list(self.images.layer_names),
                               "seconds": round(time.perf_counter() - self._t0, 1)})
        return model


def make_training(
    layers: Any,
    method: str = "iic",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    normalisation: str = "dataset",
    checkpoint_every: int = 1,
    viewer: Any = None,
    **params: Any,
) -> TrainingJob:
    """Resolve and validate a training run on Image layers, before any compute.

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        Training layers (a stack layer counts as one image per 2-D slice).
    method : str
        A dataset-level method (see :func:`dataset_methods`).
    preset : str, optional
        Parameter preset (the method's default when omitted).
    channel_axis : int, optional
        Channel axis of multichannel (non-RGB) layers.
    seed : int
        Seed of every random choice.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    normalisation : {"dataset", "per_image"}
        How raw values are scaled (stored in the model).
    checkpoint_every : int
        Steps between checkpoints; Stop keeps the model of the last one.
    viewer : napari viewer, optional
        To resolve layer names.
    **params
        Method parameters overriding the preset.

    Returns
    -------
    TrainingJob

    Raises
    ------
    ValueError, TypeError
        Naming the problem (method not dataset-level, bad parameter, layer, device...).
    """
    from napari_useg.core.device import resolve_device
    from napari_useg.core.options import NORMALISATIONS
    from napari_useg.core.options import check_seed as _check_seed

    m = get_method(method)
    if m.kind != "dataset" or m.fit is None:
        raise ValueError(f"method {m.name!r} is fitted per image, not trained on a collection; "
                         f"dataset-level methods: {sorted(dataset_methods())}")
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) \
            or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every!r}")
    m.build(preset, params)  # raises on a bad value
    seed = _check_seed(seed)
    resolve_device(device)
    images = images_from_layers(layers, channel_axis, viewer)
    return TrainingJob(images=images, method=m.name, preset=preset, params=dict(params),
                       seed=seed, device=device, normalisation=normalisation,
                       checkpoint_every=int(checkpoint_every))


def train_on_layers(viewer: Any, layers: Any, method: str = "iic", *,
                    progress: bool = False, **kwargs: Any) -> Any:
    """Train a dataset-level method on Image layers (what the widget's Train button does).

    Parameters
    ----------
    viewer : napari viewer
        To resolve layer names (may be ``None`` when layers are given as objects).
    layers : napari.layers.Image, str or sequence of them
        Training layers.
    method : str
        ``"iic"`` or ``"inmars"``.
    progress : bool
        Print one line per step to stderr.
    **kwargs
        :func:`make_training` options and method parameters.

    Returns
    -------
    napari_useg.core.model.Model
    """
    import sys

    job = make_training(layers, method, viewer=viewer, **kwargs)
    it = job.iter()
    while True:
        try:
            snap = next(it)
        except StopIteration as stop:
            return stop.value
        if progress:
            print(f"[{method}] {describe_fit(snap)}", file=sys.stderr)


@dataclass
class PredictionJob:
    """A validated prediction of a model on one layer (see :func:`make_prediction`).

    Attributes
    ----------
    source : LayerSource
        The layer's data (a stack is predicted slice by slice).
    model : napari_useg.core.model.Model
        The model.
    output : str
        The model output used (e.g. IIC's ``"main"`` or ``"over"``).
    tile_size : int
        Tile side of the tiled prediction.
    reference : numpy.ndarray or None
        Labels of the layer being overwritten; new ids are renamed to agree with them.
    model_path : str or None
        Where the model was saved or loaded (recorded in the metadata).
    tiles_done, tiles_total : int
        Progress within the current slice (updated from the worker thread).
    """

    source: LayerSource
    model: Any
    output: str
    tile_size: int = 512
    reference: np.ndarray | None = None
    model_path: str | None = None
    tiles_done: int = 0
    tiles_total: int = 0
    slices_done: int = 0
    runtime: float = 0.0

    @property
    def output_name(self) -> str:
        """``"<image> <method> labels"`` (``"<image> <method> <output> labels"`` for a
        non-default output)."""
        extra = "" if self.output == self.model.default_output else f" {self.output}"
        return f"{self.source.name} {self.model.method}{extra} labels"

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the label map."""
        return self.source.out_shape

    def _on_tile(self, done: int, total: int) -> None:
        self.tiles_done, self.tiles_total = done, total

    @property
    def fraction(self) -> float:
        """Overall fraction done, in ``[0, 1]``."""
        n = max(self.source.n_slices, 1)
        within = self.tiles_done / self.tiles_total if self.tiles_total else 0.0
        return min(1.0, (self.slices_done + within) / n)

    def iter(self) -> Generator[tuple[int, int], None, np.ndarray]:
        """Predict slice by slice, yielding ``(slices done, slices)``; returns the labels."""
        t0 = time.perf_counter()
        out = np.zeros(self.out_shape, dtype=np.int32)
        slices = _slices(self.source)
        for i, (idx, raw) in enumerate(slices):
            self.tiles_done = self.tiles_total = 0
            labels = self.model.predict(raw, channel_axis=self.source.slice_channel_axis,
                                        output=self.output, tile_size=self.tile_size,
                                        on_tile=self._on_tile)
            if idx:
                out[idx] = labels
            else:
                out[...] = labels
            self.slices_done = i + 1
            yield i + 1, len(slices)
        out = _align(self.reference, out)  # keeps colours when overwriting a previous result
        self.runtime = time.perf_counter() - t0
        return out

    def run(self) -> np.ndarray:
        """:meth:`iter` to the end; the labels."""
        it = self.iter()
        while True:
            try:
                next(it)
            except StopIteration as stop:
                return stop.value

    def metadata(self, labels: np.ndarray | None, status: str = "done",
                 message: str = "") -> dict[str, Any]:
        """What goes into ``layer.metadata["napari_useg"]``."""
        from napari_useg import __version__

        cfg = self.model.config()
        meta: dict[str, Any] = {
            "kind": "model",
            "method": self.model.method,
            "output": self.output,
            "params": cfg["params"],
            "channels": cfg["channels"],
            "normalisation": cfg["normalisation"],
            "training": cfg["training"],
            "model_path": self.model_path,
            "tile_size": self.tile_size,
            "device": str(self.model.device),
            "version": __version__,
            "runtime": float(self.runtime),
            "status": status,
            "message": message,
            "source": self.source.name,
            "source_layers": list(self.source.layer_names),
            "channel_axis": self.source.channel_axis,
            "n_slices": self.source.n_slices,
        }
        if labels is not None:
            meta["n_labels"] = int(np.unique(labels[labels > 0]).size)
        return meta


def make_prediction(layer: Any, model: Any, *, output: str | None = None,
                    channel_axis: int | None = None, tile_size: int = 512,
                    viewer: Any = None, model_path: str | None = None) -> PredictionJob:
    """Check a layer against a model, before any compute.

    Parameters
    ----------
    layer : napari.layers.Image or str
        The layer to label (a stack is predicted slice by slice; dask data is read
        one tile at a time).
    model : napari_useg.core.model.Model
        A fitted or loaded model.
    output : str, optional
        Model output (default: the model's default, e.g. IIC ``"main"``).
    channel_axis : int, optional
        Channel axis of a multichannel (non-RGB) layer.
    tile_size : int
        Tile side.
    viewer : napari viewer, optional
        To resolve a layer name.
    model_path : str, optional
        Recorded in the output's metadata.

    Returns
    -------
    PredictionJob

    Raises
    ------
    ValueError, TypeError
        No model, a wrong number of channels, an unknown output or a bad tile size.
    """
    from napari_useg.core.model import Model

    if model is None:
        raise ValueError("no model: train one or load a saved model first")
    if not isinstance(model, Model):
        raise TypeError(f"model must be a napari_useg Model, got {type(model).__name__}")
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) \
            or tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size!r}")
    lay = _resolve_layer(viewer, layer)
    src = _source(lay, channel_axis)
    output = model._check_output(output)
    _, first = _slices(src)[0]
    try:
        model.check_image(first, src.slice_channel_axis)
    except ValueError as exc:
        raise ValueError(f"layer {src.name!r}: {exc}") from exc
    return PredictionJob(source=src, model=model, output=output, tile_size=int(tile_size),
                         model_path=model_path)


def write_prediction(viewer: Any, job: PredictionJob, labels: np.ndarray, target: Any = None,
                     status: str = "done", message: str = "") -> Any:
    """Write predicted labels into ``target`` (or a new Labels layer) with metadata."""
    labels = np.asarray(labels, dtype=np.int32)
    meta = job.metadata(labels, status, message)
    meta["checksum"] = checksum(labels)
    if target is None:
        return viewer.add_labels(labels, name=job.output_name, scale=job.source.scale,
                                 translate=job.source.translate, metadata={META_KEY: meta})
    target.data = labels
    target.scale = job.source.scale
    target.translate = job.source.translate
    target.metadata = {**target.metadata, META_KEY: meta}
    if target not in viewer.layers:
        viewer.layers.append(target)
    return target


def prepare_target(viewer: Any, job: PredictionJob, *, keep_both: bool = False,
                   on_edited: str = "new") -> Any:
    """The layer a prediction overwrites (``None``: add one); sets ``job.reference``."""
    target, _ = choose_target(viewer, job.output_name, keep_both=keep_both, on_edited=on_edited)
    if target is not None and tuple(target.data.shape) == job.out_shape:
        job.reference = np.array(target.data, copy=True)
    return target


def predict_on_layer(viewer: Any, layer: Any, model: Any, *, output: str | None = None,
                     channel_axis: int | None = None, tile_size: int = 512,
                     keep_both: bool = False, on_edited: str = "new",
                     model_path: str | None = None) -> Any:
    """Apply a model to an Image layer and write a Labels layer (the widget's Apply button).

    The output is named ``"<image> <method> labels"`` (with the output's name for a
    non-default output, e.g. ``"<image> iic over labels"``), has the source's scale
    and translate, and ``metadata["napari_useg"]`` records the model's method,
    parameters, channel layout, normalisation and training summary. Re-running
    updates that layer with ids aligned to its labels; a layer the user edited is
    never overwritten unless ``on_edited="overwrite"``.

    Parameters
    ----------
    viewer : napari viewer
        Where the Labels layer goes.
    layer : napari.layers.Image or str
        The layer to label.
    model : napari_useg.core.model.Model
        A fitted or loaded model.
    output, channel_axis, tile_size, model_path
        As :func:`make_prediction`.
    keep_both : bool
        Always add a new layer.
    on_edited : {"new", "overwrite", "error"}
        When the existing result layer was edited: add a new layer, overwrite, or raise.

    Returns
    -------
    napari.layers.Labels
    """
    job = make_prediction(layer, model, output=output, channel_axis=channel_axis,
                          tile_size=tile_size, viewer=viewer, model_path=model_path)
    target = prepare_target(viewer, job, keep_both=keep_both, on_edited=on_edited)
    return write_prediction(viewer, job, job.run(), target)
