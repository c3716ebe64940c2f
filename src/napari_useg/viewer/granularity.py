"""Re-cutting a finished segmentation at another granularity, without rerunning (Qt-free).

The per-image methods that build a merge tree of their result
(:class:`~napari_useg.core.hierarchy.Hierarchy`, in the final snapshot's
``info["hierarchy"]``: kanezaki, dfc, mmt, felzenszwalb) let the result be coarsened or
refined instantly: :class:`~napari_useg.viewer.segment_job.SegmentationJob` keeps the
hierarchy of every 2-D slice it segmented, or of the volume in volume mode (dfc and mmt
build one over 3-D regions) (``job.hierarchies``, never in layer metadata,
which napari may serialise), and :func:`recut` writes the cut with ``n_segments`` regions
of every slice into the result Labels layer::

    job = make_job(viewer.layers["img"], "felzenszwalb")
    ...  # run it into `layer` (run_on_layer or the widget)
    recut(job, layer, 5)   # every slice now has (at most) 5 segments

Ids are aligned like a run's: the first slice to the run's own result (colours stay), each
next slice to the previous one. The chosen cut is recorded in
``layer.metadata["napari_useg"]["granularity"] = {"n_segments": k}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_useg.viewer.jobs import align_to
from napari_useg.viewer.output import META_KEY, checksum, is_edited

__all__ = ["granularity_range", "recut"]


def granularity_range(job: Any) -> tuple[int, int, int] | None:
    """``(lowest, highest, current)`` segment counts a slider over ``job``'s result offers.

    ``None`` when the job kept no hierarchy (a method without one, a volume segmented by
    a method that builds none in 3-D, a run that did not finish). ``highest`` is the
    largest region count of the slices' hierarchies; ``current`` the number of segments of
    the first such slice's result.
    """
    hierarchies = getattr(job, "hierarchies", None)
    if not hierarchies or getattr(job, "result", None) is None:
        return None
    highest = max(h.n_regions for h in hierarchies.values())
    first = next(iter(hierarchies))
    labels = np.asarray(job.result[first])
    current = int(np.unique(labels[labels > 0]).size)
    return 1, max(highest, 1), int(np.clip(current, 1, max(highest, 1)))


def recut(job: Any, layer: Any, n_segments: int) -> Any:
    """Write the cut of every slice's hierarchy at ``n_segments`` regions into ``layer``.

    Parameters
    ----------
    job : napari_useg.viewer.segment_job.SegmentationJob
        A finished job (its ``hierarchies`` and ``result``).
    layer : napari.layers.Labels
        The Labels layer holding that job's result.
    n_segments : int
        Regions per slice (clipped to each hierarchy: at most its region count, at least
        its disconnected parts). Slices without a hierarchy keep their labels.

    Returns
    -------
    napari.layers.Labels
        ``layer``, with new data and ``metadata["napari_useg"]`` updated (``granularity``,
        ``n_labels``, ``checksum``).

    Raises
    ------
    ValueError
        When the job kept no hierarchy, ``n_segments < 1``, the layer's shape is not the
        job's, or the layer was edited by hand (its edits are never overwritten).
    """
    if granularity_range(job) is None:
        raise ValueError("this result has no hierarchy to cut (run a method that builds one: "
                         "kanezaki, dfc, mmt, felzenszwalb)")
    k = int(n_segments)
    if k < 1:
        raise ValueError(f"n_segments must be >= 1, got {n_segments}")
    if tuple(layer.data.shape) != tuple(job.result.shape):
        raise ValueError(f"layer {layer.name!r} has shape {tuple(layer.data.shape)}, "
                         f"the result {tuple(job.result.shape)}")
    if is_edited(layer):
        raise ValueError(f"layer {layer.name!r} was edited by hand; not re-cut")
    data = np.array(layer.data, dtype=np.int32, copy=True)
    prev: np.ndarray | None = None
    for index in job.source.indices():
        h = job.hierarchies.get(index)
        if h is None:
            prev = data[index]
            continue
        ref = prev if prev is not None else job.result[index]
        labels = align_to(ref, h.cut(n_segments=min(k, h.n_regions)))
        data[index] = labels
        prev = labels
    layer.data = data
    layer.refresh()
    md = dict(layer.metadata)
    meta = dict(md.get(META_KEY, {}))
    meta["granularity"] = {"n_segments": k}
    meta["n_labels"] = int(np.unique(data[data > 0]).size)
    meta["checksum"] = checksum(data)
    md[META_KEY] = meta
    layer.metadata = md
    return layer
