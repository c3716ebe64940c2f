"""The Python front doors.

* :func:`segment` and its iterator form :func:`iter_segment`: one image, any per-image
  method; :func:`segment_hierarchy`: the same run with every granularity of its result
  (a :class:`~napari_useg.core.hierarchy.Hierarchy` to cut at any level);
* :func:`fit` and :func:`iter_fit`: train a dataset-level method on a collection and
  get a :class:`~napari_useg.core.model.Model` (:func:`load_model` reads a saved one);
* :func:`segment_collection`: DFC's reference-image mode in one call (fit ``dfc_ref``
  on the images, then label each of them);
* :func:`segment_stack` and :func:`iter_segment_stack`: a z-stack or time-lapse slice by
  slice (or a stack of volumes volume by volume), label ids aligned along the stack.

Each builds its :class:`~napari_useg.core.options.RunOptions` (or
:class:`~napari_useg.core.options.FitOptions`) from its keyword arguments, so every
run option is checked in one place, before any computation starts.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from napari_useg.core.consensus import agreement_map, consensus
from napari_useg.core.fitting import FitContext, normalise_collection, value_range
from napari_useg.core.hierarchy import Hierarchy, build_hierarchy, colour_features
from napari_useg.core.image import PreparedImage, layout_shape, prepare_image
from napari_useg.core.instances import instances
from napari_useg.core.labels import sequential
from napari_useg.core.lazy_volume import is_lazy_array, prepare_lazy_volume
from napari_useg.core.model import load_model
from napari_useg.core.options import FitOptions, RunOptions, options_from_keywords
from napari_useg.core.progress import Progress
from napari_useg.core.registry import RunContext, all_methods, get_method
from napari_useg.core.resources import check_fits
from napari_useg.core.selection import candidates, choose_run, foreground_contrast
from napari_useg.core.stacks import StackStep, iter_stack, keep_agreement
from napari_useg.core.version import __version__
from napari_useg.io.collections import collect_images

__all__ = ["segment", "iter_segment", "segment_hierarchy", "segment_hierarchy_with",
           "result_hierarchy", "SegmentationResult", "fit", "iter_fit", "load_model",
           "segment_collection", "segment_stack", "iter_segment_stack",
           "iter_segment_stack_with"]


def iter_segment(
    image,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    preview_every: int = 10,
    spatial_dims: int = 2,
    spacing: tuple[float, ...] | None = None,
    result: str = "classes",
    foreground: int | None = None,
    split_objects: bool = False,
    min_object_size: int = 64,
    runs: int = 1,
    combine: str = "consensus",
    **params: Any,
) -> Iterator[Progress]:
    """Run a method step by step, yielding :class:`Progress` snapshots.

    Everything is validated before this function returns, so bad input raises
    here, not at the first ``next()``. Stop early by simply not asking for the
    next snapshot (or calling ``.close()`` on the iterator).

    Parameters
    ----------
    image : array_like
        2-D grayscale, RGB(A), or multichannel with ``channel_axis``.
    method : str
        A name from :func:`napari_useg.list_methods`.
    preset : str, optional
        A named set of parameter values (e.g. ``"paper"`` or ``"fast"``);
        the method's default preset when omitted.
    channel_axis : int, optional
        Axis of ``image`` holding channels.
    seed : int
        Seed of every random choice; same seed, input and device give the same labels.
    device : str
        ``"auto"`` (CUDA, then MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    preview_every : int
        Attach the current label map to every ``preview_every``-th snapshot (0: final only).
    spatial_dims, spacing, result, foreground, split_objects, min_object_size
        Volumes and objects: see :func:`segment`.
    runs, combine : int, str
        Several runs made one: see :func:`segment`.
    **params
        Method parameters (override the preset), and extra inputs such as ``scribbles``.

    Returns
    -------
    iterator of Progress
        The last snapshot has ``done=True`` and ``labels`` set (``int32``, ``1..n``; with
        ``result="instances"`` objects ``1..n`` and 0 for the background). With ``runs > 1``
        its ``info["agreement"]`` is the per-pixel agreement map (``float32`` in
        ``[0, 1]``) and ``info["runs"]`` the runs' own label maps; with
        ``combine="contrast"`` also ``info["contrast"]`` (each run's score) and
        ``info["chosen"]`` (the index of the run returned), besides that run's own
        ``info`` (its ``hierarchy``, where the method builds one).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32), np.uint8); img[:, 16:] = 255
    >>> for snap in iter_segment(img, "kmeans", n_clusters=2, window=1):
    ...     pass
    >>> snap.done, int(snap.labels.max())
    (True, 2)
    """
    opts = RunOptions(seed=seed, device=device, preset=preset, channel_axis=channel_axis,
                      preview_every=preview_every, spatial_dims=spatial_dims, spacing=spacing,
                      result=result, foreground=foreground, split_objects=split_objects,
                      min_object_size=min_object_size, runs=runs, combine=combine)
    return iter_segment_with(image, method, opts, **params)


def iter_segment_with(image, method: str, options: RunOptions, **params: Any
                      ) -> Iterator[Progress]:
    """:func:`iter_segment` with the run options given as one :class:`RunOptions`.

    This is what the napari jobs, batch and evaluate call, so they share the API's checks.
    """
    m = get_method(method)
    dims = options.spatial_dims
    if dims == 3 and not m.volumes:
        volume_methods = sorted(n for n, mm in all_methods().items() if mm.volumes)
        raise ValueError(f"method {m.name!r} segments 2-D images only; segment the volume "
                         f"slice by slice (spatial_dims=2 on each slice) or use a volume "
                         f"method: {', '.join(volume_methods)}")
    input_names = {i.name for i in m.inputs}
    inputs = {k: params.pop(k) for k in list(params) if k in input_names}
    p = m.build(m.preset_for(options.preset, dims), params)
    dev = options.torch_device(m.uses_torch)
    # a lazy volume (dask, zarr, memmap) stays on disk for a method that reads windows
    lazy = dims == 3 and m.lazy_volumes and is_lazy_array(image)
    layout = layout_shape(image, options.channel_axis, dims)
    if layout is not None:  # a bad layout is reported by prepare_image
        spatial, c = tuple(layout[:-1]), int(layout[-1])
        n = int(np.prod(spatial, dtype=np.int64))
        # float64 scaling, float32 result, percentiles (none for a lazy volume)
        prepared_copies = 0 if lazy else n * (c * 12 + 8)
        what = "volume" if dims == 3 else "image"
        check_fits(m.memory_needed(spatial, c, p, lazy=lazy) + prepared_copies,
                   f"{m.name} on a {'x'.join(map(str, spatial))} {what} with {c} channel(s)",
                   dev)
    prepared = (prepare_lazy_volume(image, options.channel_axis) if lazy
                else prepare_image(image, options.channel_axis, dims))
    inputs = m.check_inputs(inputs, prepared.shape)
    spacing = options.spacing or (1.0,) * dims
    ctx = RunContext(seed=options.seed, device=dev, preview_every=options.preview_every,
                     inputs=inputs, spacing=spacing)
    objects = None
    if options.result == "instances":
        objects = {"foreground": options.foreground, "spacing": spacing,
                   "split": options.split_objects, "min_size": options.min_object_size}
    snaps = (m.run(prepared, p, ctx) if options.runs == 1
             else _combine_runs(m.run, prepared, p, ctx, options.runs, options.combine))
    return _finalise(snaps, prepared.shape, objects)


def _combine_runs(run, prepared: PreparedImage, p: Any, ctx: RunContext, k: int,
                  combine: str = "consensus") -> Iterator[Progress]:
    """``k`` runs with seeds ``ctx.seed + r``, made one, and the agreement map.

    Snapshots of run ``r`` count steps ``r * total + step`` of ``k * total``; the last
    snapshot holds the consensus (:func:`napari_useg.core.consensus.consensus`) or, with
    ``combine="contrast"``, the run :func:`napari_useg.core.selection.choose_run` keeps,
    with its own ``info`` (runs are scored as they end, and only the ``info``, e.g. the
    merge tree, of runs that can still be chosen is kept).
    """
    finals: list[np.ndarray] = []
    scores: list[float] = []  # combine="contrast": each run's score as it ends, and the
    kept: dict[int, dict[str, Any]] = {}  # info (merge tree) of the runs still candidates
    total = 1
    for r in range(k):
        last: Progress | None = None
        snaps = run(prepared, p, dataclasses.replace(ctx, seed=ctx.seed + r))
        try:
            for snap in snaps:
                last = snap
                total = max(int(snap.total), 1)
                if snap.done:
                    break
                yield Progress(step=r * total + min(int(snap.step), total), total=k * total,
                               loss=snap.loss, n_labels=snap.n_labels, labels=snap.labels,
                               message=f"run {r + 1}/{k}: {snap.message}".rstrip(": "))
        finally:
            snaps.close()
        if last is None or last.labels is None:  # pragma: no cover - method bug
            raise RuntimeError("method finished without producing labels")
        finals.append(last.labels)
        if combine == "contrast":
            scores.append(foreground_contrast(last.labels, prepared.data))
            kept[r] = dict(last.info)
            # a candidate now was one at every earlier run, so its info is still kept
            kept = {int(i): kept[int(i)] for i in candidates(scores)}
    seeds = f"seeds {ctx.seed}..{ctx.seed + k - 1}"
    if combine == "contrast":
        chosen = choose_run(finals, scores)
        labels = finals[chosen]
        agreement = agreement_map(labels, finals)
        info = {**kept[chosen], "agreement": agreement, "runs": finals,
                "contrast": np.array(scores), "chosen": chosen}
        message = (f"run {chosen + 1} of {k} (seed {ctx.seed + chosen}; {seeds}), chosen by "
                   f"the contrast of its foreground, mean agreement "
                   f"{float(agreement.mean()):.2f}")
    else:
        labels, agreement = consensus(finals)
        info = {"agreement": agreement, "runs": finals}
        message = f"consensus of {k} runs ({seeds}), mean agreement {float(agreement.mean()):.2f}"
    yield Progress(step=k * total, total=k * total, n_labels=int(labels.max()), labels=labels,
                   done=True, info=info, message=message)


def _finalise(snaps: Iterator[Progress], shape: tuple[int, ...],
              objects: dict[str, Any] | None = None) -> Iterator[Progress]:
    t0 = time.perf_counter()
    last: Progress | None = None
    try:
        for snap in snaps:
            snap.elapsed = time.perf_counter() - t0
            if snap.labels is not None:
                if snap.labels.shape != tuple(shape):  # pragma: no cover - method bug
                    raise RuntimeError(
                        f"method returned labels of shape {snap.labels.shape}, expected {shape}"
                    )
                snap.labels = sequential(snap.labels)
                if snap.n_labels is None:
                    snap.n_labels = int(snap.labels.max())
                if snap.done and objects is not None:
                    snap.info["classes"] = snap.labels
                    snap.labels = instances(snap.labels, **objects)
                    snap.info["n_objects"] = int(snap.labels.max())
            last = snap
            if snap.done:
                yield snap
                return
            yield snap
    finally:
        close = getattr(snaps, "close", None)
        if close is not None:
            close()
    if last is None or last.labels is None:  # pragma: no cover - method bug
        raise RuntimeError("method finished without producing labels")
    last.done = True
    if objects is not None:
        last.info["classes"] = last.labels
        last.labels = instances(last.labels, **objects)
        last.info["n_objects"] = int(last.labels.max())
    yield last


def segment(
    image,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    spatial_dims: int = 2,
    spacing: tuple[float, ...] | None = None,
    result: str = "classes",
    foreground: int | None = None,
    split_objects: bool = False,
    min_object_size: int = 64,
    runs: int = 1,
    combine: str = "consensus",
    **params: Any,
) -> np.ndarray:
    """Segment one image (or one volume) without supervision.

    Parameters
    ----------
    image : array_like
        2-D grayscale, 2-D RGB/RGBA (last axis 3 or 4), or 2-D multichannel with
        ``channel_axis`` (e.g. RGB + infrared); ``uint8``, ``uint16`` or float.
    method : str
        A name from :func:`napari_useg.list_methods` (``"kanezaki"``, ``"kmeans"``,
        ``"felzenszwalb"``, ``"slic"``, ...).
    preset : str, optional
        Named parameter set (``"paper"`` or ``"fast"`` for learning methods).
    channel_axis : int, optional
        Axis holding the channels.
    seed : int
        Random seed; the same seed, input and device give identical labels.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    progress : bool
        Print one line per snapshot to stderr.
    spatial_dims : {2, 3}
        3: ``image`` is one volume, ``(Z, Y, X)`` or 4-D with ``channel_axis``, segmented
        as a whole by a method that supports volumes (``kmeans``, ``otsu``, and
        ``kanezaki``, ``dfc`` and ``mmt`` with their ``volume`` presets by default).
        2 (default): a 2-D image.
    spacing : tuple of float, optional
        Pixel/voxel size per spatial axis, ``(dz, dy, dx)`` for a volume (supervoxels,
        distance transforms and watershed use it); default isotropic.
    result : {"classes", "instances"}
        The method's classes, or countable objects of the foreground class
        (:func:`napari_useg.core.instances.instances`: 0 = background, objects ``1..n``;
        the classes stay in the last snapshot's ``info["classes"]``).
    foreground : int, optional
        Instances: the class label holding the objects (default: every class but the one
        owning the largest connected region).
    split_objects : bool
        Instances: split touching objects with a distance-transform watershed (spacing
        honoured).
    min_object_size : int
        Instances: drop objects smaller than this many pixels/voxels.
    runs : int
        1 (default): one run. ``K > 1``: run the method with seeds ``seed .. seed + K - 1``
        and return the consensus of the runs (each pixel gets the segment most runs agree
        on; :func:`napari_useg.core.consensus.consensus`); :func:`iter_segment`'s last
        snapshot also carries the per-pixel agreement map (an uncertainty output).
    combine : {"consensus", "contrast"}
        How ``runs`` > 1 become one result: ``"consensus"`` (default, above) or
        ``"contrast"``: one of the runs. Of those whose foreground (every label but the one
        owning the largest connected region) stands out most from its background in
        intensity (Otsu's between-class variance, within 90 % of the best), the one that
        agrees best with the others (:mod:`napari_useg.core.selection`). For objects on a
        background, e.g. nuclei, where seeds differ in what they make foreground.
    **params
        Method parameters (see ``napari-useg methods``), overriding the preset.

    Returns
    -------
    numpy.ndarray
        ``int32`` labels ``1..n`` with the image's spatial shape (instances: 0..n).

    Raises
    ------
    ValueError, TypeError
        For bad images, unknown methods/presets/parameters or out-of-range values,
        before any computation starts.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_useg import segment
    >>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = (200, 30, 30)
    >>> labels = segment(img, method="kmeans", n_clusters=2, window=1)
    >>> labels.shape, int(labels.max())
    ((32, 32), 2)
    """
    snap = None
    for snap in iter_segment(
        image, method, preset=preset, channel_axis=channel_axis, seed=seed, device=device,
        preview_every=0, spatial_dims=spatial_dims, spacing=spacing, result=result,
        foreground=foreground, split_objects=split_objects, min_object_size=min_object_size,
        runs=runs, combine=combine, **params,
    ):
        if progress:
            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.labels is not None
    return snap.labels


@dataclass(frozen=True)
class SegmentationResult:
    """One run of a per-image method with every granularity of its result.

    Attributes
    ----------
    labels : numpy.ndarray
        What :func:`segment` returns for the same call (``int32``, ``1..n``).
    hierarchy : Hierarchy
        Merge tree over the result's regions: ``hierarchy.cut(n_segments=k)`` or
        ``hierarchy.cut(threshold=t)`` (``t`` in ``[0, 1]``) gives any coarser (or, for
        methods whose ``cut`` parameter is set, finer) segmentation without rerunning;
        ``hierarchy.ucm2()`` the BSDS ultrametric contour map. Methods that build none
        (k-means, SLIC...) get one here: their connected regions merged by mean
        colour (``core.hierarchy.build_hierarchy``), default cut at 0 (those regions).
    snapshot : Progress
        The run's final snapshot (``message``, ``step``, ``info``...).
    """

    labels: np.ndarray
    hierarchy: Hierarchy
    snapshot: Progress


def segment_hierarchy_with(image, method: str, options: RunOptions, **params: Any
                           ) -> SegmentationResult:
    """:func:`segment_hierarchy` with the run options given as one :class:`RunOptions`."""
    *_, last = iter_segment_with(image, method, options.replace(preview_every=0), **params)
    assert last.labels is not None
    hier = result_hierarchy(image, last, options)
    return SegmentationResult(labels=last.labels, hierarchy=hier, snapshot=last)


def result_hierarchy(image, snapshot: Progress, options: RunOptions) -> Hierarchy:
    """The hierarchy of a final snapshot: the method's own, else its regions merged by colour.

    Parameters
    ----------
    image : array_like
        The image the run segmented.
    snapshot : Progress
        The run's final snapshot.
    options : RunOptions
        The run's options (their ``channel_axis``).
    """
    hier = snapshot.info.get("hierarchy")
    if isinstance(hier, Hierarchy):
        return hier
    if snapshot.labels is None:
        raise ValueError("the snapshot has no labels")
    prepared = prepare_image(image, options.channel_axis, options.spatial_dims)
    return build_hierarchy(snapshot.labels, colour_features(prepared.data, prepared.is_rgb),
                           default_threshold=0.0)


def segment_hierarchy(
    image,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    spatial_dims: int = 2,
    spacing: tuple[float, ...] | None = None,
    **params: Any,
) -> SegmentationResult:
    """Segment one image and keep the whole hierarchy of its result.

    The same run as :func:`segment` (same arguments, same ``labels``), plus a
    :class:`~napari_useg.core.hierarchy.Hierarchy` from which every granularity is
    cut without rerunning the method: this is what a granularity slider needs.
    With ``spatial_dims=3`` the image is one volume and the hierarchy merges the
    result's face-connected 3-D regions by their mean intensity (no ``ucm2``).

    Parameters
    ----------
    image, method, preset, channel_axis, seed, device, spatial_dims, spacing, **params
        As for :func:`segment`.

    Returns
    -------
    SegmentationResult
        ``labels`` (as :func:`segment`), ``hierarchy`` and the final ``snapshot``.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = (200, 30, 30)
    >>> img[16:, :16] = (30, 30, 200)
    >>> res = segment_hierarchy(img, "kmeans", n_clusters=3, window=1)
    >>> int(res.labels.max()), int(res.hierarchy.cut(n_segments=2).max())
    (3, 2)
    >>> res.hierarchy.ucm2().shape
    (65, 65)
    """
    opts = RunOptions(seed=seed, device=device, preset=preset, channel_axis=channel_axis,
                      preview_every=0, spatial_dims=spatial_dims, spacing=spacing)
    return segment_hierarchy_with(image, method, opts, **params)


def iter_fit(
    images,
    method: str = "iic",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    normalisation: str = "auto",
    rgb: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 50,
    **params: Any,
) -> Iterator[Progress]:
    """Train a dataset-level method step by step, yielding :class:`Progress` snapshots.

    Everything (images, method, parameters, device) is validated before this
    function returns. The final snapshot has ``done=True`` and the fitted
    :class:`~napari_useg.core.model.Model` in ``info["model"]``.

    Parameters
    ----------
    images : folder, file, stack array or list of arrays/paths
        The training collection (see :func:`~napari_useg.io.collections.collect_images`);
        all images need
        the same number of channels, sizes may differ.
    method : str
        A dataset-level method: ``"iic"``, ``"inmars"`` or ``"dfc_ref"``.
    preset : str, optional
        ``"paper"`` or ``"fast"`` (the method's default when omitted).
    channel_axis : int, optional
        Channel axis of each image.
    seed : int
        Seed of every random choice (initialisation, crops, transforms).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    normalisation : {"auto", "dataset", "per_image", "per_image_dark"}
        How raw values are scaled to [0, 1] (stored in the model, see
        :mod:`napari_useg.core.model`): ``"auto"`` (default) is
        ``"per_image_dark"`` for a collection of objects on a plain background (more
        than half of its images mostly one plain background, see
        :func:`~napari_useg.core.image.objects_on_background`: nuclei, cells) and
        ``"per_image"`` otherwise; ``"per_image"`` stretches each
        image, at training and at prediction, between its own 1st and 99.8th
        percentiles per channel, whatever its dtype (measured: much better on
        collections mixing exposures or modalities, e.g. dim fluorescence with
        brightfield, and as good on satellite tiles); ``"dataset"`` uses one set of
        ranges for every image (from the pooled training pixels: keep it when
        absolute intensity carries meaning);
        ``"per_image_dark"`` does the same and then inverts every image whose
        background is light, so that all have a dark background (nuclei in
        fluorescence and brightfield alike are then the bright structure).
    rgb : bool, optional
        Whether the first three channels are RGB (default: true for 3-channel
        and RGB(A) images). With ``rgb=True`` further channels (infrared...) are
        extra channels that colour jitter leaves alone.
    checkpoint : path-like, optional
        File for the training state; rerunning with the same file, images,
        parameters and seed resumes an interrupted run.
    checkpoint_every : int
        Steps between checkpoint saves.
    **params
        Method parameters (override the preset).

    Returns
    -------
    iterator of Progress
    """
    opts = FitOptions(seed=seed, device=device, preset=preset, channel_axis=channel_axis,
                      normalisation=normalisation, rgb=rgb, checkpoint=checkpoint,
                      checkpoint_every=checkpoint_every)
    return iter_fit_with(images, method, opts, **params)


def iter_fit_with(images, method: str, options: FitOptions, **params: Any
                  ) -> Iterator[Progress]:
    """:func:`iter_fit` with the run options given as one :class:`FitOptions`."""
    m = get_method(method)
    if m.kind != "dataset" or m.fit is None:
        dataset = sorted(n for n, mm in all_methods().items() if mm.kind == "dataset")
        raise ValueError(f"method {m.name!r} is fitted per image; use segment() "
                         f"(dataset-level methods: {', '.join(dataset)})")
    p = m.build(options.preset, params)
    dev = options.torch_device()
    arrays, is_rgb, names = collect_images(images, options.channel_axis)
    c = int(arrays[0].shape[-1])
    rgb = is_rgb if options.rgb is None else bool(options.rgb)
    if rgb and c < 3:
        raise ValueError(f"rgb=True needs at least 3 channels, the images have {c}")
    data, norm = normalise_collection(arrays, options.normalisation)
    prepared = [PreparedImage(d, rgb and c == 3, np.dtype(a.dtype))
                for d, a in zip(data, arrays, strict=True)]
    ctx = FitContext(seed=options.seed, device=dev, rgb=rgb, checkpoint=options.checkpoint,
                     checkpoint_every=options.checkpoint_every)
    about = {"sizes": [list(a.shape[:2]) for a in arrays], "value_range": value_range(arrays),
             "version": __version__}
    return _fit_iter(m.fit(prepared, p, ctx), norm, names, options.preset or m.default_preset,
                     about)


def _fit_iter(snaps: Iterator[Progress], norm: dict[str, Any], names: list[str],
              preset: str | None, about: dict[str, Any]) -> Iterator[Progress]:
    t0 = time.perf_counter()
    try:
        for snap in snaps:
            snap.elapsed = time.perf_counter() - t0
            if snap.done:
                model = snap.info.get("model")
                if model is None:  # pragma: no cover - method bug
                    raise RuntimeError("dataset-level method finished without a model")
                model.normalisation = norm
                model.training.update({"images": len(names), "preset": preset,
                                       "seconds": round(snap.elapsed, 1), **about})
            yield snap
            if snap.done:
                return
    finally:
        close = getattr(snaps, "close", None)
        if close is not None:
            close()


def fit(images, method: str = "iic", *, preset: str | None = None,
        channel_axis: int | None = None, seed: int = 0, device: str = "auto",
        normalisation: str = "auto", rgb: bool | None = None,
        checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 50,
        progress: bool = False, **params: Any):
    """Train a dataset-level method on a collection and return the fitted model.

    Parameters are those of :func:`iter_fit`, plus ``progress`` (print one line
    per step to stderr).

    Returns
    -------
    napari_useg.core.model.Model
        Call ``model.predict(image)`` on new images, ``model.save(folder)`` to keep it.

    Examples
    --------
    >>> import numpy as np, napari_useg
    >>> imgs = np.random.default_rng(0).integers(0, 255, (3, 32, 32), np.uint8)
    >>> model = napari_useg.fit(imgs, "iic", preset="fast", steps=2, input_size=16, batch_size=2)
    >>> model.predict(imgs[0]).shape
    (32, 32)
    """
    snap = None
    for snap in iter_fit(images, method, preset=preset, channel_axis=channel_axis, seed=seed,
                         device=device, normalisation=normalisation, rgb=rgb,
                         checkpoint=checkpoint, checkpoint_every=checkpoint_every, **params):
        if progress:
            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.done
    return snap.info["model"]


def segment_collection(images, *, preset: str | None = None, channel_axis: int | None = None,
                       seed: int = 0, device: str = "auto", progress: bool = False,
                       **params: Any) -> list[np.ndarray]:
    """Segment several images with one DFC network: labels mean the same in every image.

    DFC's reference-image mode (the dataset-level method ``dfc_ref``,
    :mod:`napari_useg.methods.dfc_reference`): one network is trained on all the
    images resized to ``work_size x work_size`` (continuity weight ``mu`` = 5) and
    then applied to each image at full size. The same as
    ``fit(images, "dfc_ref", ...)`` followed by ``model.predict`` on every image,
    with the labels renumbered over the whole collection.

    Parameters
    ----------
    images : sequence of array_like, or array
        The images (same number of channels, sizes may differ), or a stack with the
        image index first (e.g. a ``(N, H, W)`` or ``(N, H, W, 3)`` napari layer).
    preset : {"fast", "full", "paper"}, optional
        Named parameter set of ``dfc_ref`` (default ``"fast"``).
    channel_axis : int, optional
        Channel axis of each image (as in :func:`segment`).
    seed : int
        Seed of the initialisation and of the batch order.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    progress : bool
        Print one line per 10 steps to stderr.
    **params
        Parameters of ``dfc_ref`` (override the preset).

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
    method = "dfc_ref"
    get_method(method).build(preset, params)  # parameters first, as fit does
    arrays, is_rgb, _ = collect_images(images, channel_axis)
    snap = None
    for snap in iter_fit(arrays, method, preset=preset, channel_axis=-1, seed=seed,
                         device=device, rgb=is_rgb, **params):
        if progress and (snap.step % 10 == 0 or snap.done):
            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.done
    model = snap.info["model"]
    raw = [model.predict(a, channel_axis=-1, tile_size=1024) for a in arrays]
    joint = sequential(np.concatenate([r.ravel() for r in raw]))
    out, start = [], 0
    for r in raw:
        out.append(joint[start:start + r.size].reshape(r.shape))
        start += r.size
    return out


def iter_segment_stack(stack, method: str = "kanezaki", **kwargs: Any) -> Iterator[Progress]:
    """:func:`segment_stack` step by step: one :class:`Progress` per method snapshot.

    Parameters
    ----------
    stack, method, **kwargs
        As :func:`segment_stack`.

    Returns
    -------
    iterator of Progress
        ``step`` counts the slices done out of ``total`` slices; ``loss``, ``n_labels``
        and ``message`` are the current slice's. The last snapshot has ``done=True``,
        ``labels`` (the whole stack's), ``info["n_slices"]``, and with ``runs > 1``
        ``info["agreement"]`` (the stack's agreement map).
    """
    options = options_from_keywords(RunOptions, None, kwargs)
    return iter_segment_stack_with(stack, method, options, **kwargs)


def iter_segment_stack_with(stack, method: str, options: RunOptions, **params: Any
                            ) -> Iterator[Progress]:
    """:func:`iter_segment_stack` with the run options given as one :class:`RunOptions`.

    Everything the first slice needs is checked before this returns (bad input raises
    here); ``options.channel_axis`` is an axis of ``stack``.
    """
    arr = stack if is_lazy_array(stack) else np.asarray(stack)
    dims = options.spatial_dims
    slice_axis: int | None = None
    if options.channel_axis is not None:
        ax = options.channel_axis
        if not -arr.ndim <= ax < arr.ndim:
            raise ValueError(f"channel_axis {ax} is out of range for a stack of shape "
                             f"{tuple(arr.shape)}")
        arr, slice_axis, n_ch = np.moveaxis(arr, ax, -1), -1, 1
    else:  # a last axis of 3 or 4 after the spatial ones is RGB(A), as in a 2-D image
        n_ch = int(arr.ndim >= dims + 2 and arr.shape[-1] in (3, 4))
    lead = tuple(arr.shape[:arr.ndim - dims - n_ch])
    spatial = tuple(arr.shape[len(lead):len(lead) + dims])
    if not lead:
        raise ValueError(
            f"an array of shape {tuple(np.shape(stack))} is one "
            f"{'volume' if dims == 3 else 'image'}, not a stack: it has no axis before its "
            f"{dims} spatial axes"
            f"{' and its channels' if n_ch else ''}")
    input_names = {i.name for i in get_method(method).inputs}
    inputs = {k: np.asarray(params.pop(k)) for k in list(params) if k in input_names}
    for k, v in inputs.items():
        if v.shape != lead + spatial:
            raise ValueError(f"{k} has shape {v.shape}; a stack of shape {tuple(arr.shape)} "
                             f"needs it of shape {lead + spatial}, one map per slice")
    opts = options.replace(channel_axis=slice_axis)

    def segment_slice(index: tuple[int, ...]) -> Iterator[Progress]:
        extra = {k: v[index] for k, v in inputs.items()}
        return iter_segment_with(np.asarray(arr[index]), method, opts, **params, **extra)

    indices = list(np.ndindex(*lead))
    first = segment_slice(indices[0])  # validates before anything runs

    def slices(index: tuple[int, ...]) -> Iterator[Progress]:
        return first if index == indices[0] else segment_slice(index)

    out = np.zeros(lead + spatial, np.int32)
    return _stack_progress(iter_stack(indices, slices, out), out)


def _stack_progress(steps: Iterator[StackStep], out: np.ndarray) -> Iterator[Progress]:
    t0 = time.perf_counter()
    agreement: np.ndarray | None = None
    try:
        for st in steps:
            snap = st.snap
            done = snap.done and st.slice_index == st.n_slices - 1
            agreement = keep_agreement(agreement, st, out.shape)
            where = f"slice {st.slice_index + 1}/{st.n_slices} {st.index}"
            if not done:
                yield Progress(step=st.slice_index + int(snap.done), total=st.n_slices,
                               loss=snap.loss, n_labels=snap.n_labels,
                               message=f"{where}: {snap.message or f'step {snap.step}'}",
                               elapsed=time.perf_counter() - t0)
                continue
            info: dict[str, Any] = {"n_slices": st.n_slices}
            if agreement is not None:
                info["agreement"] = agreement
            yield Progress(step=st.n_slices, total=st.n_slices, loss=snap.loss,
                           n_labels=int(np.unique(out[out > 0]).size), labels=out, done=True,
                           message=f"{st.n_slices} slices, ids aligned; last: {snap.message}",
                           elapsed=time.perf_counter() - t0, info=info)
            return
    finally:
        steps.close()


def segment_stack(stack, method: str = "kanezaki", *, progress: bool = False,
                  **kwargs: Any) -> np.ndarray:
    """Segment every slice of a z-stack or time-lapse (or every volume of a stack of them).

    Each slice is segmented alone, exactly as :func:`segment` on that slice with the
    same seed, and its label ids are renamed to agree with the previous slice's by
    Hungarian matching on their overlap (:func:`napari_useg.core.align.align_to`), so a
    structure keeps its id through the stack; a cluster with no partner gets a new id,
    never one in use, and with ``result="instances"`` the background stays 0. The same
    loop runs the napari widget on stack layers.

    Parameters
    ----------
    stack : array_like
        ``(..., Y, X)``: every axis before the last two is a stack axis, e.g.
        ``(Z, Y, X)`` or ``(T, Y, X)``; ``(..., Y, X, 3 or 4)`` an RGB(A) stack; with
        ``spatial_dims=3``, ``(..., Z, Y, X)`` a stack of volumes (e.g. a 4-D time
        series of z-stacks). A multichannel stack needs ``channel_axis``.
    method : str
        A name from :func:`napari_useg.list_methods`.
    progress : bool
        Print one line per slice to stderr.
    **kwargs
        Run options as for :func:`segment` (``preset``, ``channel_axis`` (an axis of
        ``stack``), ``seed``, ``device``, ``spatial_dims``, ``spacing`` (of the spatial
        axes), ``result``, ``runs``...), the method's parameters, and extra inputs
        (e.g. ``scribbles``) with one map per slice (the stack's shape without channels).

    Returns
    -------
    numpy.ndarray
        ``int32`` labels with the stack's shape without its channel axis.

    Raises
    ------
    ValueError, TypeError
        For an array with no stack axis, bad values or parameters, before anything runs.

    Examples
    --------
    >>> import numpy as np
    >>> movie = np.zeros((3, 32, 32), np.uint8)
    >>> for t in range(3):  # a bright region whose edge moves right
    ...     movie[t, :, 12 + 4 * t:] = 200
    >>> labels = segment_stack(movie, "kmeans", n_clusters=2, window=1)
    >>> labels.shape, len(np.unique(labels[:, 0, 0])), len(np.unique(labels[:, 0, -1]))
    ((3, 32, 32), 1, 1)
    """
    snap = None
    for snap in iter_segment_stack(stack, method, preview_every=0, **kwargs):
        if progress and (snap.done or snap.step > 0):
            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.labels is not None
    return snap.labels
