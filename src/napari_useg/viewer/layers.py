"""Running a method on napari layers and writing the result into a Labels layer (Qt-free).

This module is what the segmentation widget does, without the widget: it works with
napari layer and viewer objects (``napari.Viewer`` or the Qt-free
``napari.components.ViewerModel``) but imports no Qt, so it runs headless, in tests and
from the napari console::

    from napari_useg import run_on_layer
    run_on_layer(viewer, "nuclei", method="kmeans", n_clusters=2)

The pieces, in the order the widget uses them:

* :func:`make_job` resolves the source layer(s) (RGB, multichannel with a channel axis,
  or several single-channel layers combined as channels; 2-D images or 3-D/time stacks),
  the method parameters, seed, device and extra inputs into a :class:`SegmentationJob`,
  validating everything before any compute starts;
* :meth:`SegmentationJob.iter` runs the method slice by slice and yields
  :class:`JobProgress` snapshots (this is what the widget's thread worker iterates);
* :func:`find_result_layer`, :func:`is_edited` and :class:`LabelsWriter` pick the output
  Labels layer (``"<image> <method>"``), refuse to overwrite a layer the user has edited
  unless told to, and write labels plus metadata into it.

Stacks are segmented slice by slice (every axis before the last two spatial ones),
and each slice's label ids are renamed to agree with the previous slice by Hungarian
matching on their overlap (:func:`napari_useg.align_labels`). We align rather than warm
start the network from the previous slice because alignment works for every method in
the registry (classical ones have no network), keeps each slice's result identical to
segmenting that slice alone with the same seed (reproducible, no drift or error carried
from slice to slice), and costs one contingency table per slice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_useg.api import iter_segment
from napari_useg.core.align import align_labels
from napari_useg.core.params import params_to_dict
from napari_useg.core.progress import Progress
from napari_useg.core.registry import get_method

__all__ = [
    "META_KEY",
    "LayerSource",
    "SegmentationJob",
    "JobProgress",
    "LabelsWriter",
    "source_from_layers",
    "make_job",
    "find_result_layer",
    "is_edited",
    "checksum",
    "run_on_layer",
    "score_layers",
]

#: Key of ``layer.metadata`` under which napari-useg stores how a Labels layer was made.
META_KEY = "napari_useg"

_ON_EDITED = ("new", "overwrite", "error")


def _is_layer(obj: Any, kind: str) -> bool:
    """True when ``obj`` is a napari layer of type ``kind`` (``"image"``, ``"labels"``)."""
    import napari.layers

    cls = {"image": napari.layers.Image, "labels": napari.layers.Labels}[kind]
    return isinstance(obj, cls)


def _layer_name(layer: Any) -> str:
    return str(getattr(layer, "name", "image"))


@dataclass(frozen=True)
class LayerSource:
    """The array to segment, resolved from one or more napari Image layers.

    Attributes
    ----------
    data : array_like
        ``(stack..., Y, X)`` without channels, or ``(stack..., Y, X, C)`` with the
        channels last (numpy or dask; slices are read one at a time).
    has_channels : bool
        Whether the last axis of ``data`` holds channels.
    rgb : bool
        Whether the channels are an RGB(A) layer's (then an alpha channel is dropped).
    name : str
        Name used for the output layer (the layer's name, or ``"a+b"`` for combined layers).
    layer_names : tuple of str
        Names of the source layers.
    scale, translate : tuple of float
        Of the output Labels layer (``(stack..., Y, X)``), taken from the first source layer.
    channel_axis : int or None
        Channel axis of the source layer's data as chosen by the user (``-1`` for RGB or
        combined layers, ``None`` for no channels).
    """

    data: Any
    has_channels: bool
    rgb: bool
    name: str
    layer_names: tuple[str, ...]
    scale: tuple[float, ...]
    translate: tuple[float, ...]
    channel_axis: int | None

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the label map: ``(stack..., Y, X)``."""
        shape = tuple(int(s) for s in self.data.shape)
        return shape[:-1] if self.has_channels else shape

    @property
    def stack_shape(self) -> tuple[int, ...]:
        """Shape of the stack axes (empty for a single 2-D image)."""
        return self.out_shape[:-2]

    @property
    def n_slices(self) -> int:
        """Number of 2-D slices segmented one after the other."""
        return int(np.prod(self.stack_shape, dtype=np.int64))

    @property
    def slice_channel_axis(self) -> int | None:
        """``channel_axis`` to pass to :func:`napari_useg.iter_segment` for one slice."""
        if not self.has_channels or self.rgb:
            return None  # RGB(A): the last axis is read as colour (alpha dropped)
        return -1

    def slice(self, index: tuple[int, ...]) -> np.ndarray:
        """The 2-D image (with channels, if any) at stack position ``index``."""
        return np.asarray(self.data[index])


def source_from_layers(layers: Any, channel_axis: int | None = None) -> LayerSource:
    """Resolve the image to segment from one Image layer or several single-channel ones.

    Parameters
    ----------
    layers : napari.layers.Image or sequence of them
        One layer (RGB, grayscale, a stack, or multichannel with ``channel_axis``), or
        several single-channel layers of the same shape, combined as channels in order.
    channel_axis : int, optional
        Axis of the (single, non-RGB) layer's data holding the channels.

    Returns
    -------
    LayerSource

    Raises
    ------
    TypeError
        If something other than an Image layer is given.
    ValueError
        For multiscale layers, a bad ``channel_axis``, layers of different shapes, or
        data with fewer than two spatial dimensions.
    """
    if isinstance(layers, (list, tuple)):
        layers = list(layers)
    else:
        layers = [layers]
    if not layers:
        raise ValueError("no image layer given")
    for lay in layers:
        if not _is_layer(lay, "image"):
            raise TypeError(
                f"{_layer_name(lay)!r} is a {type(lay).__name__}, not an Image layer; "
                "napari-useg segments Image layers"
            )
        if getattr(lay, "multiscale", False):
            raise ValueError(
                f"layer {lay.name!r} is multiscale; segment one resolution level "
                "(add it as its own layer, e.g. viewer.add_image(layer.data[1]))"
            )
    first = layers[0]
    scale = tuple(float(s) for s in first.scale)
    translate = tuple(float(t) for t in first.translate)
    if len(layers) > 1:
        if channel_axis is not None:
            raise ValueError(
                "channel_axis applies to a single multichannel layer; to combine layers, "
                "give single-channel layers and no channel_axis"
            )
        shapes = {tuple(lay.data.shape) for lay in layers}
        rgbs = [lay.name for lay in layers if lay.rgb]
        if rgbs:
            raise ValueError(f"only single-channel layers can be combined; {rgbs} are RGB")
        if len(shapes) != 1:
            raise ValueError(
                "layers combined as channels must have the same shape; got "
                + ", ".join(f"{lay.name!r}: {tuple(lay.data.shape)}" for lay in layers)
            )
        names = tuple(lay.name for lay in layers)
        if len(set(names)) != len(names):
            raise ValueError(f"a layer was given twice: {list(names)}")
        data = np.stack([np.asarray(lay.data) for lay in layers], axis=-1)
        src = LayerSource(data, True, False, "+".join(names), names, scale, translate, -1)
    elif first.rgb:
        if channel_axis not in (None, -1, first.data.ndim - 1):
            raise ValueError(
                f"layer {first.name!r} is RGB: its channels are the last axis; "
                f"channel_axis={channel_axis} is not allowed"
            )
        src = LayerSource(first.data, True, True, first.name, (first.name,), scale,
                          translate, -1)
    elif channel_axis is not None:
        data = first.data
        if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
            raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
        if not -data.ndim <= channel_axis < data.ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for layer {first.name!r} "
                f"of shape {tuple(data.shape)}"
            )
        ax = int(channel_axis) % data.ndim
        if data.ndim < 3:
            raise ValueError(
                f"channel_axis needs a layer with at least 3 dimensions; {first.name!r} "
                f"has shape {tuple(data.shape)}"
            )
        moved = np.moveaxis(data, ax, -1)
        keep = [i for i in range(data.ndim) if i != ax]
        src = LayerSource(moved, True, False, first.name, (first.name,),
                          tuple(scale[i] for i in keep), tuple(translate[i] for i in keep), ax)
    else:
        src = LayerSource(first.data, False, False, first.name, (first.name,), scale,
                          translate, None)
    if len(src.out_shape) < 2:
        raise ValueError(
            f"layer {src.name!r} has {len(src.out_shape)} spatial dimension(s) "
            f"(shape {tuple(src.data.shape)}); need at least 2"
        )
    return src


def checksum(labels: Any) -> str:
    """Content hash of a label array (shape, dtype and values), to detect user edits.

    Examples
    --------
    >>> a = np.zeros((2, 2), np.int32)
    >>> checksum(a) == checksum(a.copy()), checksum(a) == checksum(a + 1)
    (True, False)
    """
    arr = np.ascontiguousarray(np.asarray(labels))
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((arr.shape, arr.dtype.str)).encode())
    h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def is_edited(layer: Any) -> bool:
    """Whether a Labels layer holds anything other than what napari-useg last wrote into it.

    A layer napari-useg never wrote (no checksum in its metadata) counts as edited, so
    it is never overwritten silently.
    """
    meta = getattr(layer, "metadata", {}).get(META_KEY)
    if not isinstance(meta, Mapping) or "checksum" not in meta:
        return True
    return checksum(layer.data) != meta["checksum"]


def find_result_layer(viewer: Any, name: str) -> Any | None:
    """The Labels layer of ``viewer`` called ``name``, or ``None``."""
    for lay in viewer.layers:
        if lay.name == name and _is_layer(lay, "labels"):
            return lay
    return None


@dataclass
class JobProgress:
    """One snapshot of a (possibly multi-slice) run.

    Attributes
    ----------
    slice_index : int
        0-based index of the slice being segmented.
    n_slices : int
        Number of slices.
    index : tuple of int
        Position of the slice in the output's stack axes (empty for 2-D).
    snap : Progress
        The method's snapshot for this slice.
    labels : numpy.ndarray or None
        The slice's current labels with ids aligned to the previous slice (or to the
        previous result), when the snapshot carries labels.
    done : bool
        True for the last snapshot of the last slice.
    """

    slice_index: int
    n_slices: int
    index: tuple[int, ...]
    snap: Progress
    labels: np.ndarray | None
    done: bool

    @property
    def fraction(self) -> float:
        """Overall fraction done, in ``[0, 1]``."""
        total = max(int(self.snap.total), 1)
        step = total if self.snap.done else min(int(self.snap.step), total)
        return (self.slice_index + step / total) / self.n_slices

    def describe(self) -> str:
        """One line for a status bar: slice, step, loss, number of labels."""
        parts = []
        if self.n_slices > 1:
            parts.append(f"slice {self.slice_index + 1}/{self.n_slices}")
        parts.append(f"step {self.snap.step}/{self.snap.total}")
        if self.snap.loss is not None:
            parts.append(f"loss {self.snap.loss:.4g}")
        if self.snap.n_labels is not None:
            parts.append(f"{self.snap.n_labels} labels")
        return ", ".join(parts)


def _align(reference: np.ndarray | None, labels: np.ndarray) -> np.ndarray:
    """Rename ``labels`` ids to agree with ``reference``; never produces id 0."""
    labels = np.asarray(labels)
    if reference is None:
        return labels.astype(np.int32, copy=True)
    ref = np.asarray(reference)
    if ref.shape != labels.shape or not np.issubdtype(ref.dtype, np.integer):
        return labels.astype(np.int32, copy=True)
    if ref.size and ref.min() <= 0:
        # 0 is "no label" in napari: give unlabelled reference pixels an id of their own
        ref = np.where(ref > 0, ref, ref.max(initial=0) + 1)
    out = align_labels(ref, labels)
    return out.astype(np.int32, copy=False)


@dataclass
class SegmentationJob:
    """A fully validated run of one method on one source (made by :func:`make_job`).

    Attributes
    ----------
    source : LayerSource
        What to segment.
    method : str
        Registry name of the method.
    preset : str or None
        Preset the values started from.
    params : dict
        Every parameter value (after preset and overrides).
    seed : int
        Seed (the same for every slice).
    device : str
        Device requested (``"auto"``...).
    device_used : str
        Device the method runs on.
    inputs : dict
        Extra array inputs (e.g. ``scribbles``), of the output's shape.
    preview_every : int
        Attach labels to every this many steps (0: only at the end of each slice).
    reference : numpy.ndarray or None
        Previous result; the first slice's ids are aligned to it to keep colours.
    preset_label : str or None
        Preset as recorded in the metadata (``"fast (modified)"`` when values were changed).
    """

    source: LayerSource
    method: str
    preset: str | None
    params: dict[str, Any]
    seed: int
    device: str
    device_used: str
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    preview_every: int = 10
    reference: np.ndarray | None = None
    preset_label: str | None = None

    @property
    def output_name(self) -> str:
        """Name of the output Labels layer: ``"<image> <method>"``."""
        return f"{self.source.name} {self.method}"

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of the label map."""
        return self.source.out_shape

    def _iter_slice(self, index: tuple[int, ...], preview_every: int) -> Iterator[Progress]:
        extra = {k: np.asarray(v[index]) for k, v in self.inputs.items()}
        return iter_segment(
            self.source.slice(index), self.method, preset=self.preset,
            channel_axis=self.source.slice_channel_axis, seed=self.seed, device=self.device,
            preview_every=preview_every, **self.params, **extra,
        )

    def validate(self) -> None:
        """Run every check of :func:`napari_useg.iter_segment` on the first slice."""
        first = (0,) * len(self.source.stack_shape)
        it = self._iter_slice(first, self.preview_every)
        it.close()

    def iter(self) -> Iterator[JobProgress]:
        """Segment slice by slice, yielding a :class:`JobProgress` per method step.

        Labels of each slice are aligned to the previous slice (the first one to
        :attr:`reference`, when given), so a cluster keeps its id and colour through the
        stack and across re-runs.
        """
        stack = self.source.stack_shape
        n = self.source.n_slices
        prev: np.ndarray | None = None
        for i, index in enumerate(np.ndindex(*stack) if stack else [()]):
            ref = prev
            if ref is None and self.reference is not None:
                ref = self.reference[index] if index else self.reference
            final = None
            for snap in self._iter_slice(index, self.preview_every):
                labels = _align(ref, snap.labels) if snap.labels is not None else None
                if snap.done:
                    final = labels
                yield JobProgress(i, n, index, snap, labels, bool(snap.done and i == n - 1))
            prev = final

    def metadata(self, *, runtime: float, status: str, message: str = "",
                 slices_done: int = 0, labels: np.ndarray | None = None) -> dict[str, Any]:
        """What goes into ``layer.metadata["napari_useg"]``."""
        from napari_useg import __version__

        meta: dict[str, Any] = {
            "method": self.method,
            "preset": self.preset_label if self.preset_label is not None else self.preset,
            "params": dict(self.params),
            "seed": self.seed,
            "device": self.device_used,
            "device_requested": self.device,
            "version": __version__,
            "runtime": float(runtime),
            "status": status,
            "message": message,
            "source": self.source.name,
            "source_layers": list(self.source.layer_names),
            "channel_axis": self.source.channel_axis,
            "inputs": sorted(self.inputs),
            "n_slices": self.source.n_slices,
            "slices_done": int(slices_done),
        }
        if labels is not None:
            meta["n_labels"] = int(np.unique(labels[labels > 0]).size)
        return meta


def _resolve_layer(viewer: Any, layer: Any) -> Any:
    if isinstance(layer, str):
        if viewer is None:
            raise ValueError(f"a layer name ({layer!r}) needs a viewer")
        try:
            return viewer.layers[layer]
        except KeyError:
            raise ValueError(
                f"no layer named {layer!r}; layers: {[lay.name for lay in viewer.layers]}"
            ) from None
    return layer


def make_job(
    layers: Any,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    preview_every: int = 10,
    inputs: Mapping[str, Any] | None = None,
    viewer: Any = None,
    reference: np.ndarray | None = None,
    **params: Any,
) -> SegmentationJob:
    """Resolve and validate a run of ``method`` on napari layer(s), before any compute.

    Parameters
    ----------
    layers : napari.layers.Image, str or sequence of them
        The image layer (or several single-channel layers combined as channels). Names
        need ``viewer``.
    method : str
        Registry name.
    preset : str, optional
        Parameter preset (the method's default preset when omitted).
    channel_axis : int, optional
        Channel axis of a multichannel (non-RGB) layer.
    seed : int
        Seed of every random choice.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    preview_every : int
        Attach the current labels to every this many steps (0: only each slice's result).
    inputs : mapping, optional
        Extra inputs declared by the method (e.g. ``{"scribbles": labels_layer}``), as
        layers, layer names or arrays of the output's shape. They may also be passed as
        keywords.
    viewer : napari.Viewer, optional
        Needed only to resolve layer names.
    reference : numpy.ndarray, optional
        A previous result to align label ids to (keeps colours on re-runs).
    **params
        Method parameters overriding the preset.

    Returns
    -------
    SegmentationJob

    Raises
    ------
    ValueError, TypeError
        Naming the problem (bad layer, parameter, device, input...).
    """
    m = get_method(method)
    if isinstance(layers, (list, tuple)):
        layers = [_resolve_layer(viewer, lay) for lay in layers]
    else:
        layers = _resolve_layer(viewer, layers)
    source = source_from_layers(layers, channel_axis)
    input_names = {i.name for i in m.inputs}
    given = dict(inputs or {})
    for k in list(params):
        if k in input_names:
            given[k] = params.pop(k)
    unknown = sorted(set(given) - input_names)
    if unknown:
        raise TypeError(
            f"method {m.name!r} takes no input(s) {unknown}; its inputs: {sorted(input_names)}"
        )
    arrays: dict[str, np.ndarray] = {}
    for name, value in given.items():
        if value is None:
            continue
        value = _resolve_layer(viewer, value)
        if not isinstance(value, np.ndarray) and hasattr(value, "data"):
            value = value.data  # a napari layer
        arr = np.asarray(value)
        if arr.shape != source.out_shape:
            raise ValueError(
                f"input {name!r} must have the shape of the segmentation {source.out_shape}, "
                f"got {arr.shape}"
            )
        arrays[name] = arr
    for info in m.inputs:
        if info.required and info.name not in arrays:
            raise ValueError(f"method {m.name!r} needs the input {info.name!r}")
    p = m.build(preset, params)
    values = params_to_dict(p)
    if m.uses_torch:
        from napari_useg.core.device import resolve_device

        device_used = str(resolve_device(device))
    else:
        device_used = "cpu"
    preset_name = preset if preset is not None else m.default_preset
    if preset_name is not None and values != m.defaults(preset_name):
        preset_name = f"{preset_name} (modified)"
    job = SegmentationJob(
        source=source, method=m.name, preset=preset, params=values, seed=seed, device=device,
        device_used=device_used, inputs=arrays, preview_every=preview_every,
        reference=reference, preset_label=preset_name,
    )
    job.validate()
    return job


class LabelsWriter:
    """Writes the labels of one job into one Labels layer, chosen when the run starts.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        Where the layer lives (a new one is added to it).
    job : SegmentationJob
        The run.
    layer : napari.layers.Labels, optional
        Existing layer to overwrite; ``None`` adds a new layer named
        ``job.output_name`` (napari appends ``[1]``... if the name is taken).
    """

    def __init__(self, viewer: Any, job: SegmentationJob, layer: Any = None) -> None:
        self.viewer = viewer
        self.job = job
        self.volume = np.zeros(job.out_shape, dtype=np.int32)
        self.t0 = time.perf_counter()
        self.slices_done = 0
        self.last: JobProgress | None = None
        meta = job.metadata(runtime=0.0, status="running")
        if layer is None:
            layer = viewer.add_labels(
                self.volume, name=job.output_name, scale=job.source.scale,
                translate=job.source.translate, metadata={META_KEY: meta},
            )
        else:
            if tuple(layer.data.shape) != job.out_shape:
                layer.data = self.volume  # new shape (and maybe ndim) before the new scale
            layer.scale = job.source.scale
            layer.translate = job.source.translate
        self.layer = layer
        self._set_meta(meta)

    def _set_meta(self, meta: dict[str, Any]) -> None:
        meta["checksum"] = checksum(self.layer.data)
        md = dict(self.layer.metadata)
        md[META_KEY] = meta
        self.layer.metadata = md

    def track(self, jp: JobProgress) -> None:
        """Note a snapshot (for the final metadata) without writing its labels."""
        self.last = jp
        if jp.snap.done:
            self.slices_done = jp.slice_index + 1

    def update(self, jp: JobProgress) -> None:
        """Write a snapshot's labels (if any) into the layer and refresh its metadata."""
        self.track(jp)
        if jp.labels is None:
            return
        if jp.index:
            self.volume[jp.index] = jp.labels
        else:
            self.volume[...] = jp.labels
        self.layer.data = self.volume
        self.layer.refresh()
        self._set_meta(self.job.metadata(
            runtime=time.perf_counter() - self.t0, status="running", message=jp.describe(),
            slices_done=self.slices_done, labels=self.volume,
        ))

    def finish(self, status: str = "done", message: str | None = None) -> Any:
        """Record the final metadata (``status``: done, cancelled or error); return the layer."""
        if message is None:
            message = self.last.snap.message if self.last is not None else ""
            if self.last is not None and not message:
                message = self.last.describe()
        if self.layer not in self.viewer.layers:
            self.viewer.layers.append(self.layer)
        self._set_meta(self.job.metadata(
            runtime=time.perf_counter() - self.t0, status=status, message=message,
            slices_done=self.slices_done, labels=self.volume,
        ))
        return self.layer


def choose_target(viewer: Any, name: str, *, keep_both: bool = False,
                  on_edited: str = "new") -> tuple[Any | None, bool]:
    """Which existing Labels layer a run named ``name`` writes into.

    Parameters
    ----------
    viewer : napari viewer
    name : str
        Output name (``"<image> <method>"``).
    keep_both : bool
        Never overwrite: always add a new layer.
    on_edited : {"new", "overwrite", "error"}
        What to do when the existing layer was edited by the user (or not made by
        napari-useg): add a new layer, overwrite it, or raise.

    Returns
    -------
    (layer or None, edited)
        ``None`` means "add a new layer"; ``edited`` tells whether the existing layer
        had been edited.
    """
    if on_edited not in _ON_EDITED:
        raise ValueError(f"on_edited must be one of {list(_ON_EDITED)}, got {on_edited!r}")
    existing = find_result_layer(viewer, name)
    if existing is None or keep_both:
        return None, False
    if not is_edited(existing):
        return existing, False
    if on_edited == "error":
        raise ValueError(
            f"layer {name!r} was edited since napari-useg wrote it (or was not made by "
            "napari-useg); pass on_edited='overwrite' to replace it or 'new' (or "
            "keep_both=True) to add a new layer"
        )
    return (existing if on_edited == "overwrite" else None), True


def run_on_layer(
    viewer: Any,
    layer: Any,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    inputs: Mapping[str, Any] | None = None,
    keep_both: bool = False,
    on_edited: str = "new",
    progress: bool = False,
    **params: Any,
) -> Any:
    """Segment an Image layer and write the result into a Labels layer, like the widget.

    The output layer is named ``"<image> <method>"``, has the source's scale and
    translate, and ``layer.metadata["napari_useg"]`` records method, preset, every
    parameter value, seed, device, version, runtime and a checksum of the labels.
    Re-running updates that layer (label ids aligned to the previous result, so colours
    stay) unless ``keep_both``; a layer the user has edited is never overwritten unless
    ``on_edited="overwrite"``. Stacks are segmented slice by slice with ids aligned
    from slice to slice.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        The viewer (in the napari console: ``viewer``).
    layer : napari.layers.Image, str, or sequence of them
        Image layer or its name; several single-channel layers are combined as channels.
    method : str
        Registry name (see :func:`napari_useg.list_methods`).
    preset : str, optional
        ``"paper"`` or ``"fast"`` for learning methods.
    channel_axis : int, optional
        Channel axis of a multichannel (non-RGB) layer.
    seed : int
        Seed; the same seed, input and device give the same labels.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    inputs : mapping, optional
        Extra inputs of the method (e.g. ``{"scribbles": "scribbles"}``); also accepted
        as keywords.
    keep_both : bool
        Add a new layer even when a previous result exists.
    on_edited : {"new", "overwrite", "error"}
        When the existing result layer was edited: add a new layer (default), overwrite
        it, or raise ``ValueError``.
    progress : bool
        Print one line per slice to stderr.
    **params
        Method parameters overriding the preset.

    Returns
    -------
    napari.layers.Labels
        The layer written.

    Examples
    --------
    >>> from napari.components import ViewerModel
    >>> from napari_useg.io.samples import sample_image
    >>> viewer = ViewerModel()
    >>> _ = viewer.add_image(sample_image("nuclei"), name="nuclei")
    >>> out = run_on_layer(viewer, "nuclei", method="kmeans", n_clusters=2, window=1)
    >>> out.name, out.data.shape, out.metadata["napari_useg"]["method"]
    ('nuclei kmeans', (256, 256), 'kmeans')
    """
    if viewer is None:
        raise ValueError("run_on_layer needs a viewer to add the Labels layer to")
    probe = make_job(layer, method, preset=preset, channel_axis=channel_axis, seed=seed,
                     device=device, preview_every=0, inputs=inputs, viewer=viewer, **params)
    target, _ = choose_target(viewer, probe.output_name, keep_both=keep_both,
                              on_edited=on_edited)
    if target is not None and tuple(target.data.shape) == probe.out_shape:
        probe.reference = np.asarray(target.data)
    writer = LabelsWriter(viewer, probe, target)
    for jp in probe.iter():
        if jp.snap.done:
            writer.update(jp)
            if progress:
                import sys

                print(f"[{method}] {jp.describe()} {jp.snap.message}", file=sys.stderr)
    return writer.finish("done")


def _put_derived(viewer: Any, data: np.ndarray, name: str, like: Any, kind: str,
                 **kwargs: Any) -> Any:
    """Add (or refresh, if napari-useg made it and nobody edited it) a derived Labels layer."""
    meta = {META_KEY: {"derived": kind, "checksum": checksum(data)}}
    existing = find_result_layer(viewer, name)
    if existing is not None and not is_edited(existing) and \
            existing.metadata[META_KEY].get("derived") == kind:
        existing.data = data
        existing.metadata = {**existing.metadata, **meta}
        existing.scale, existing.translate = like.scale, like.translate
        return existing
    return viewer.add_labels(data, name=name, scale=like.scale, translate=like.translate,
                             metadata=meta, **kwargs)


def score_layers(
    viewer: Any,
    prediction: Any,
    ground_truth: Any,
    *,
    zero_unannotated: bool = False,
    add_matched: bool = False,
    add_errors: bool = False,
) -> dict[str, Any]:
    """Score a prediction Labels layer against a ground-truth one (the accuracy widget's job).

    Parameters
    ----------
    viewer : napari viewer
        Where the optional layers go (and where layer names are looked up).
    prediction, ground_truth : napari.layers.Labels or str
        The layers (or their names); same shape.
    zero_unannotated : bool
        Treat ground-truth label 0 as unannotated: those pixels are not scored.
    add_matched : bool
        Add a Labels layer ``"<prediction> matched"``: the prediction recoloured into
        ground-truth ids by the Hungarian matching (unmatched clusters become 0).
    add_errors : bool
        Add a Labels layer ``"<prediction> errors"``: 1 where the matched prediction
        differs from the ground truth (scored pixels only).

    Returns
    -------
    dict
        :func:`napari_useg.metrics.score_all` of the two label maps. A 2-D prediction
        against a ``(K, H, W)`` ground truth is scored against K annotators (mean; the
        optional layers use the first); a stack or volume is scored over all its pixels.

    Raises
    ------
    ValueError, TypeError
        If the layers are not Labels layers or their shapes differ.
    """
    from napari_useg.metrics import hungarian_match, score_all

    pred_layer = _resolve_layer(viewer, prediction)
    gt_layer = _resolve_layer(viewer, ground_truth)
    for role, lay in (("prediction", pred_layer), ("ground truth", gt_layer)):
        if not _is_layer(lay, "labels"):
            raise TypeError(f"{role} must be a Labels layer, got {type(lay).__name__}")
    if getattr(pred_layer, "multiscale", False) or getattr(gt_layer, "multiscale", False):
        raise ValueError("multiscale Labels layers cannot be scored; use one level")
    pred = np.asarray(pred_layer.data)
    gt = np.asarray(gt_layer.data)
    ignore = 0 if zero_unannotated else None
    if pred.ndim == 2 and gt.ndim == 3 and gt.shape[1:] == pred.shape:
        # a (K, H, W) stack of annotators (e.g. a BSDS .mat read as one layer): mean over K
        scores = score_all(pred, gt, ignore=ignore)
        gt_first = gt[0]
    elif pred.shape != gt.shape:
        raise ValueError(
            f"prediction {pred_layer.name!r} has shape {pred.shape} but ground truth "
            f"{gt_layer.name!r} has shape {gt.shape}"
        )
    else:
        # 2-D maps as they are; a stack or volume is scored as a whole (all its pixels)
        flat = (lambda a: a) if pred.ndim == 2 else (lambda a: a.reshape(1, -1))
        scores = score_all(flat(pred), flat(gt), ignore=ignore)
        gt_first = gt
    if add_matched or add_errors:
        gt = gt_first
        matched = hungarian_match(pred, gt, ignore).recolour(pred)
        if add_matched:
            _put_derived(viewer, matched.astype(np.int32), f"{pred_layer.name} matched",
                         pred_layer, "matched")
        if add_errors:
            wrong = matched != gt
            if zero_unannotated:
                wrong &= gt != 0
            from napari.utils.colormaps import DirectLabelColormap

            cmap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent",
                                                   1: "red"})
            _put_derived(viewer, wrong.astype(np.uint8), f"{pred_layer.name} errors",
                         pred_layer, "errors", colormap=cmap)
    return scores
