"""Where a job's labels go: the output Labels layer, its metadata, user edits (Qt-free).

* :func:`choose_output` picks the layer a run writes into (``"<image> <method>"``, or
  ``"<image> <method> labels"`` for a model), never over a layer the user edited unless
  told to (:func:`choose_target`, :func:`is_edited`), and makes its labels the job's
  reference so ids (colours) stay;
* :class:`LabelsWriter` writes a segmentation's live and final labels plus metadata;
* :func:`put_derived_layer` adds or refreshes a layer computed from another one
  (the accuracy widget's "matched" and "errors" layers).

Every layer napari-useg writes has ``layer.metadata[META_KEY]`` with a :func:`checksum`
of its labels, which is how an edit is noticed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from napari_useg.viewer.jobs import JobProgress
from napari_useg.viewer.sources import is_layer

__all__ = [
    "META_KEY",
    "ON_EDITED",
    "checksum",
    "is_edited",
    "find_result_layer",
    "choose_target",
    "choose_output",
    "LabelsWriter",
    "put_derived_layer",
]

#: Key of ``layer.metadata`` under which napari-useg stores how a Labels layer was made.
META_KEY = "napari_useg"

#: What to do when the result layer was edited: add a new layer, overwrite it, or raise.
ON_EDITED = ("new", "overwrite", "error")


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
        if lay.name == name and is_layer(lay, "labels"):
            return lay
    return None


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
    if on_edited not in ON_EDITED:
        raise ValueError(f"on_edited must be one of {list(ON_EDITED)}, got {on_edited!r}")
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


def choose_output(viewer: Any, job: Any, *, keep_both: bool = False, on_edited: str = "new",
                  ask: Callable[[Any], str] | None = None) -> tuple[bool, Any | None]:
    """Where a job's result goes: ``(go on, layer to write into or None for a new one)``.

    :func:`choose_target` finds the layer called ``job.output_name``. When the user
    edited it, ``ask(layer)`` decides (``"overwrite"``, ``"new"`` or ``"cancel"``: the
    widgets' dialog), or else ``on_edited``. When the layer is reused with the job's
    shape, its labels become ``job.reference`` so ids (colours) stay.
    """
    target, edited = choose_target(viewer, job.output_name, keep_both=keep_both,
                                   on_edited="overwrite" if ask is not None else on_edited)
    if edited and ask is not None:
        answer = ask(target)
        if answer == "cancel":
            return False, None
        if answer not in ("overwrite", "new"):
            raise ValueError(f"ask_overwrite returned {answer!r}")
        if answer == "new":
            target = None
    if target is not None and tuple(target.data.shape) == job.out_shape:
        job.reference = np.array(target.data, copy=True)
    return True, target


class LabelsWriter:
    """Writes the labels of one segmentation job into one Labels layer, chosen at the start.

    Parameters
    ----------
    viewer : napari.Viewer or napari.components.ViewerModel
        Where the layer lives (a new one is added to it).
    job : napari_useg.viewer.segment_job.SegmentationJob
        The run.
    layer : napari.layers.Labels, optional
        Existing layer to overwrite; ``None`` adds a new layer named
        ``job.output_name`` (napari appends ``[1]``... if the name is taken).
    """

    def __init__(self, viewer: Any, job: Any, layer: Any = None) -> None:
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

    def track(self, p: JobProgress) -> None:
        """Note a snapshot (for the final metadata) without writing its labels."""
        self.last = p
        if p.snap is not None and p.snap.done:
            self.slices_done = p.slice_index + 1

    def update(self, p: JobProgress) -> None:
        """Write a snapshot's labels (if any) into the layer and refresh its metadata."""
        self.track(p)
        if p.labels is None:
            return
        if p.index:
            self.volume[p.index] = p.labels
        else:
            self.volume[...] = p.labels
        self.layer.data = self.volume
        self.layer.refresh()
        self._set_meta(self.job.metadata(
            runtime=time.perf_counter() - self.t0, status="running", message=p.describe(),
            slices_done=self.slices_done, labels=self.volume,
        ))

    def finish(self, status: str = "done", message: str | None = None,
               labels: np.ndarray | None = None) -> Any:
        """Record the final metadata (``status``: done, cancelled or error); return the layer.

        ``labels`` (the job's result) replaces what the layer shows, when given.
        """
        if labels is not None:
            self.volume[...] = labels
            self.layer.data = self.volume
            self.layer.refresh()
        if message is None:
            snap = self.last.snap if self.last is not None else None
            message = snap.message if snap is not None else ""
            if self.last is not None and not message:
                message = self.last.describe()
        if self.layer not in self.viewer.layers:
            self.viewer.layers.append(self.layer)
        self._set_meta(self.job.metadata(
            runtime=time.perf_counter() - self.t0, status=status, message=message,
            slices_done=self.slices_done, labels=self.volume,
        ))
        return self.layer


def put_derived_layer(viewer: Any, data: np.ndarray, name: str, like: Any, kind: str,
                      **kwargs: Any) -> Any:
    """Add (or refresh, if napari-useg made it and nobody edited it) a derived Labels layer.

    Parameters
    ----------
    viewer : napari viewer
    data : numpy.ndarray
        The labels.
    name : str
        Layer name.
    like : napari layer
        Gives the scale and translate.
    kind : str
        What the layer is (``"matched"``, ``"errors"``), recorded in its metadata; only a
        layer of the same kind is refreshed.
    **kwargs
        Passed to ``viewer.add_labels`` (e.g. ``colormap``).
    """
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


def put_agreement_layer(viewer: Any, job: Any, labels_layer: Any) -> Any | None:
    """Show a consensus run's agreement map as an Image layer under its Labels layer.

    Adds (or refreshes, when napari-useg made it) the layer
    ``"<labels layer name> agreement"``: values in ``[0, 1]`` (1: every run drew the
    consensus segment there), the Labels layer's scale and translate, placed directly
    beneath that layer so the labels stay on top.

    Parameters
    ----------
    viewer : napari viewer
    job : napari_useg.viewer.segment_job.SegmentationJob
        A finished job; nothing is added when it has no ``agreement`` (``runs`` was 1).
    labels_layer : napari.layers.Labels
        The layer holding the job's result.

    Returns
    -------
    napari.layers.Image or None
    """
    agreement = getattr(job, "agreement", None)
    if agreement is None:
        return None
    name = f"{labels_layer.name} agreement"
    meta = {META_KEY: {"derived": "agreement", "runs": job.options.runs,
                       "source": job.source.name, "labels": labels_layer.name}}
    existing = next((lay for lay in viewer.layers if lay.name == name
                     and lay.metadata.get(META_KEY, {}).get("derived") == "agreement"), None)
    if existing is not None:
        existing.data = agreement
        existing.metadata = {**existing.metadata, **meta}
        existing.scale, existing.translate = labels_layer.scale, labels_layer.translate
        return existing
    layer = viewer.add_image(agreement, name=name, colormap="magma", contrast_limits=(0.0, 1.0),
                             scale=labels_layer.scale, translate=labels_layer.translate,
                             metadata=meta)
    viewer.layers.move(viewer.layers.index(layer), viewer.layers.index(labels_layer))
    return layer
