"""Dataset-level models on napari layers: train on Image layers, apply to a layer (Qt-free).

What the model widget does, without the widget. It works with ``napari.Viewer`` or the
Qt-free ``napari.components.ViewerModel`` and imports no Qt::

    from napari_useg import train_on_layers, predict_on_layer
    model = train_on_layers(viewer, ["tile_a", "tile_b"], method="iic", n_clusters=3)
    predict_on_layer(viewer, "tile_c", model)          # -> Labels layer "tile_c iic labels"

The pieces, in the order the widget uses them:

* :func:`napari_useg.viewer.sources.images_from_layers` turns Image layers into a
  training collection (every 2-D slice of a stack layer is one image);
* :func:`make_training` validates method, parameters and run options
  (:class:`~napari_useg.core.options.FitOptions`) into a :class:`TrainingJob`;
  :meth:`TrainingJob.iter` trains (the widget's worker iterates it), its last
  :class:`~napari_useg.viewer.jobs.JobProgress` carrying the fitted
  :class:`~napari_useg.core.model.Model`;
* :func:`make_prediction` checks a layer against a model (channel count) into a
  :class:`PredictionJob`; :meth:`PredictionJob.iter` predicts slice by slice, tile by
  tile, its last item carrying the labels, and :func:`write_prediction` writes the
  Labels layer, never over a layer the user edited (see
  :func:`napari_useg.viewer.output.choose_output`).

**Stopping keeps the model trained so far.** Training runs with a checkpoint (in a
temporary folder unless ``checkpoint`` is given), saved every ``checkpoint_every``
steps (here 1 by default: every step). After :meth:`~napari_useg.viewer.jobs.Job.stop`,
training ends between two steps and the model is rebuilt from the last checkpoint by
resuming :func:`napari_useg.iter_fit` with ``steps`` set to the steps done, so the kept
model is exactly what an uninterrupted ``fit(..., steps=<steps done>)`` gives. Stopping
before the first checkpoint gives no model. A stopped prediction writes nothing.

Labels of a model mean the same on every image (label ``j`` is cluster ``j - 1``), so
slices of a stack need no alignment. Re-running into an existing result layer renames
the new ids to agree with the labels it holds (:func:`napari_useg.align_labels`), so
colours stay when a model is retrained; the raw cluster ids are the labels of a fresh
layer.
"""

from __future__ import annotations

import queue
import shutil
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_useg.api import iter_fit_with
from napari_useg.core.model import Model
from napari_useg.core.options import FitOptions, RunOptions
from napari_useg.core.progress import Progress
from napari_useg.core.registry import Method, all_methods, get_method
from napari_useg.core.version import __version__
from napari_useg.viewer.jobs import Job, JobProgress, align_to, run_options
from napari_useg.viewer.output import META_KEY, checksum, choose_output
from napari_useg.viewer.sources import (
    LayerImages,
    LayerSource,
    images_from_layers,
    layer_source,
    resolve_layer,
)

__all__ = [
    "TrainingJob",
    "PredictionJob",
    "dataset_methods",
    "describe_fit",
    "make_training",
    "train_on_layers",
    "make_prediction",
    "write_prediction",
    "predict_on_layer",
]

#: Steps between checkpoints when training on layers: every step, so Stop keeps exactly
#: the steps done (the command line's ``fit`` saves less often).
CHECKPOINT_EVERY = 1


def dataset_methods() -> dict[str, Method]:
    """The registered methods of kind ``"dataset"`` (trained on a collection), by name."""
    return {n: m for n, m in all_methods().items() if m.kind == "dataset" and m.fit is not None}


def describe_fit(snap: Progress) -> str:
    """One status line for a training snapshot: step, loss and the method's message."""
    parts = [f"step {snap.step}/{snap.total}"]
    if snap.loss is not None:
        parts.append(f"loss {snap.loss:.4g}")
    if snap.message:
        parts.append(snap.message)
    return ", ".join(parts)


@dataclass
class TrainingJob(Job):
    """A validated training run of a dataset-level method on layers (see :func:`make_training`).

    Attributes
    ----------
    images : LayerImages
        The collection.
    method : str
        Registry name (``"iic"``, ``"inmars"``).
    options : FitOptions
        Seed, device, preset, normalisation, checkpoint (``None``: a temporary file) and
        ``checkpoint_every`` (the steps between the checkpoints that Stop falls back to).
    params : dict
        Parameter values overriding the preset.
    last : Progress or None
        The latest snapshot.
    stopped_at : int or None
        Steps kept when the run was stopped early.
    """

    images: LayerImages
    method: str
    options: FitOptions
    params: dict[str, Any]
    last: Progress | None = None
    stopped_at: int | None = None

    @property
    def normalisation(self) -> str:
        """The normalisation asked for (see :func:`napari_useg.iter_fit`)."""
        return self.options.normalisation

    def iter(self) -> Iterator[JobProgress]:
        """Train, yielding a :class:`JobProgress` per step (``snap``: the method's snapshot).

        The last item carries the fitted :class:`~napari_useg.core.model.Model` in
        ``result``; after :meth:`stop`, the model of the last checkpoint (``None`` when
        stopped before the first one). ``model.training`` records ``"layers"`` and, after
        a stop, ``"stopped_at"`` and ``"planned_steps"``.
        """
        t0 = time.perf_counter()
        tmp = None
        ckpt = self.options.checkpoint
        if ckpt is None:
            tmp = Path(tempfile.mkdtemp(prefix="napari-useg-fit-"))
            ckpt = tmp / "checkpoint.pt"
        # the collection's arrays are channels-last whatever the layers' channel axis
        opts = self.options.replace(channel_axis=-1, checkpoint=ckpt)
        try:
            p = JobProgress(0.0)
            snaps = iter_fit_with(self.images.arrays, self.method, opts, **self.params)
            try:
                for snap in snaps:
                    self.last = snap
                    total = max(int(snap.total), 1)
                    p = JobProgress(min(int(snap.step), total) / total, snap=snap)
                    if snap.done:
                        yield p.finished(self._finish(snap.info["model"], t0))
                        return
                    yield p
                    if self.stopping:
                        break
            finally:
                snaps.close()
            yield p.finished(self._recover(opts, t0), stopped=True)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def _recover(self, opts: FitOptions, t0: float) -> Model | None:
        """The model of the last checkpoint: resume with ``steps`` = the steps it holds."""
        ckpt = opts.checkpoint
        if ckpt is None or not ckpt.exists():
            return None
        done = int(torch.load(ckpt, map_location="cpu", weights_only=True)["step"])
        (last,) = deque(iter_fit_with(self.images.arrays, self.method, opts,
                                      **{**self.params, "steps": done}), maxlen=1)
        model = last.info["model"]
        self.stopped_at = done
        planned = self.last.total if self.last is not None else None
        model.training.update({"stopped_at": done, "planned_steps": planned})
        return self._finish(model, t0)

    def _finish(self, model: Model, t0: float) -> Model:
        model.training.update({"layers": list(self.images.layer_names),
                               "seconds": round(time.perf_counter() - t0, 1)})
        return model


def make_training(
    layers: Any,
    method: str = "iic",
    *,
    options: FitOptions | None = None,
    viewer: Any = None,
    **kwargs: Any,
) -> TrainingJob:
    """Resolve and validate a training run on Image layers, before any compute.

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        Training layers (a stack layer counts as one image per 2-D slice).
    method : str
        A dataset-level method (see :func:`dataset_methods`).
    options : FitOptions, optional
        How training goes: ``preset``, ``channel_axis`` (of multichannel, non-RGB
        layers), ``seed``, ``device``, ``normalisation`` (``"auto"``, ``"dataset"``,
        ``"per_image"`` or ``"per_image_dark"``, stored in the model), ``checkpoint`` and
        ``checkpoint_every``
        (Stop keeps the model of the last checkpoint; here every step unless given).
        Each may also be given as a keyword, which overrides ``options``.
    viewer : napari viewer, optional
        To resolve layer names.
    **kwargs
        Run options (see ``options``) and method parameters overriding the preset.

    Returns
    -------
    TrainingJob

    Raises
    ------
    ValueError, TypeError
        Naming the problem (method not dataset-level, bad parameter, layer, device...).
    """
    if options is None:
        kwargs.setdefault("checkpoint_every", CHECKPOINT_EVERY)
    opts = run_options(FitOptions, options, kwargs)
    m = get_method(method)
    if m.kind != "dataset" or m.fit is None:
        raise ValueError(f"method {m.name!r} is fitted per image, not trained on a collection; "
                         f"dataset-level methods: {sorted(dataset_methods())}")
    m.build(opts.preset, kwargs)  # raises on a bad value
    opts.torch_device()  # raises on a device this machine does not have
    images = images_from_layers(layers, opts.channel_axis, viewer)
    return TrainingJob(images=images, method=m.name, options=opts, params=dict(kwargs))


def train_on_layers(viewer: Any, layers: Any, method: str = "iic", *,
                    progress: bool = False, **kwargs: Any) -> Model | None:
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
    job = make_training(layers, method, viewer=viewer, **kwargs)
    for p in job.iter():
        if progress and p.snap is not None:
            print(f"[{method}] {describe_fit(p.snap)}", file=sys.stderr)
    return p.result


class _Stopped(Exception):
    """Raised in the prediction thread to end it between two tiles."""


def _predict_tiles(predict: Callable[..., np.ndarray], image: Any, stop: threading.Event,
                   **kwargs: Any) -> Iterator[tuple[int, int, np.ndarray | None]]:
    """``predict(image, on_tile=..., **kwargs)`` as steps: one item per tile.

    The prediction runs in a helper thread that reports every tile; items are
    ``(tiles done, tiles, None)`` and finally ``(tiles, tiles, labels)``. When ``stop``
    is set (or this generator is closed) the prediction ends after its current tile and
    no labels come.
    """
    events: queue.Queue = queue.Queue()
    abandon = threading.Event()

    def on_tile(done: int, total: int) -> None:
        events.put(("tile", (done, total)))
        if stop.is_set() or abandon.is_set():
            raise _Stopped

    def work() -> None:
        try:
            events.put(("labels", predict(image, on_tile=on_tile, **kwargs)))
        except BaseException as exc:  # re-raised in the iterating thread
            events.put(("error", exc))

    thread = threading.Thread(target=work, name="napari-useg-predict", daemon=True)
    thread.start()
    try:
        tiles = (0, 1)
        while True:
            kind, value = events.get()
            if kind == "tile":
                tiles = value
                yield tiles[0], tiles[1], None
            elif kind == "labels":
                yield tiles[1], tiles[1], value
                return
            elif isinstance(value, _Stopped):
                return
            else:
                raise value
    finally:
        abandon.set()
        thread.join()


@dataclass
class PredictionJob(Job):
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
    runtime : float
        Seconds the last run took.
    """

    source: LayerSource
    model: Model
    output: str
    tile_size: int = 512
    reference: np.ndarray | None = None
    model_path: str | None = None
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

    def iter(self) -> Iterator[JobProgress]:
        """Predict slice by slice, yielding a :class:`JobProgress` per tile (``tiles``).

        The last item carries the labels (``int32``, ids aligned to :attr:`reference`)
        in ``result``; after :meth:`stop`, ``None``.
        """
        t0 = time.perf_counter()
        n = self.source.n_slices
        out = np.zeros(self.out_shape, dtype=np.int32)
        p = JobProgress(0.0, n_slices=n)
        for i, index in enumerate(self.source.indices()):
            labels = None
            steps = _predict_tiles(self.model.predict, self.source.lazy_slice(index),
                                   self._stop, channel_axis=self.source.slice_channel_axis,
                                   output=self.output, tile_size=self.tile_size)
            try:
                for done, total, labels in steps:
                    p = JobProgress((i + done / max(total, 1)) / n, i, n, index,
                                    tiles=(done, total))
                    if labels is None:
                        yield p
            finally:
                steps.close()
            if labels is None:
                yield p.finished(None, stopped=True)
                return
            out[index] = labels
        out = align_to(self.reference, out)  # keeps colours when overwriting a previous result
        self.runtime = time.perf_counter() - t0
        yield p.finished(out)

    def metadata(self, labels: np.ndarray | None, status: str = "done",
                 message: str = "") -> dict[str, Any]:
        """What goes into ``layer.metadata["napari_useg"]``."""
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
        Channel axis of a multichannel (non-RGB) layer (a
        :class:`~napari_useg.core.options.RunOptions` field, checked there).
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
    opts = RunOptions(channel_axis=channel_axis)
    if model is None:
        raise ValueError("no model: train one or load a saved model first")
    if not isinstance(model, Model):
        raise TypeError(f"model must be a napari_useg Model, got {type(model).__name__}")
    if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) \
            or tile_size < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size!r}")
    src = layer_source(resolve_layer(viewer, layer), opts.channel_axis)
    output = model.check_output(output)
    try:
        model.check_image(src.lazy_slice(next(src.indices())), src.slice_channel_axis)
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
    _, target = choose_output(viewer, job, keep_both=keep_both, on_edited=on_edited)
    return write_prediction(viewer, job, job.run(), target)
