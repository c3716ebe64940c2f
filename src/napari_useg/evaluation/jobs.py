"""The per-image work of an evaluation: one picklable :class:`ImageJob` in, one record out.

:func:`evaluate_image` segments one image under every setting (or reads a saved
prediction) and scores each result against every annotator: Hungarian and many-to-one
accuracy, ARI, the BSDS region benchmark (covering, PRI, VOI), the boundary benchmark
and Kanezaki's segment precision/recall. It only reads files, so it runs the same in
this process or as a Dask task on another machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.api import iter_segment_with, segment_hierarchy_with
from napari_useg.core.image import layout_shape
from napari_useg.core.options import RunOptions
from napari_useg.evaluation.coverage import UnscorableImage, check_scorable
from napari_useg.evaluation.records import RECORD_VERSION
from napari_useg.io.bsds import read_bsds_gt, read_segs
from napari_useg.io.datasets import read_mask
from napari_useg.io.images import read_image
from napari_useg.metrics.bsds import (
    boundary_counts_maps,
    gt_boundaries_from_segs,
    linspace_thresholds,
    region_counts_segs,
    seg2bdry,
)
from napari_useg.metrics.contingency import dense_ids, valid_mask
from napari_useg.metrics.score import score_all
from napari_useg.metrics.segments import segment_matches, segment_pr

__all__ = ["IOU_THRESHOLDS", "PREDICTION_EXTENSIONS", "ImageJob", "evaluate_image",
           "prediction_file", "read_prediction"]

#: IoU thresholds of the segment precision/recall curves.
IOU_THRESHOLDS = (0.5, 0.7)
#: File types of saved predictions, in the order they are looked for.
PREDICTION_EXTENSIONS = (".tif", ".tiff", ".png", ".npy", ".mat")


@dataclass(frozen=True)
class ImageJob:
    """Everything :func:`evaluate_image` needs for one image (picklable).

    Attributes
    ----------
    id : str
        Image id.
    image, annotation : str
        Image file and ground-truth file (BSDS ``.mat`` or mask image).
    kind : {"bsds", "masks"}
        Ground-truth format.
    settings : list of dict
        Method parameters of each setting (empty for predictions).
    method : str or None
        Method to run (``None`` when scoring predictions).
    prediction : str or None
        Prediction file (instead of a method).
    options : RunOptions
        How the method runs (seed, device, preset, channel axis).
    ignore : tuple of int or None
        Ground-truth values not scored.
    boundary : bool
        Run the boundary benchmark.
    hierarchy : int
        0: one run per setting. N > 0: one run (the single setting), its hierarchy cut at
        the benchmark's N thresholds (``linspace_thresholds(N)``, as for a ``ucm2``); each
        cut is scored as a setting.
    """

    id: str
    image: str
    annotation: str
    kind: str
    settings: list[dict[str, Any]] = field(default_factory=list)
    method: str | None = None
    prediction: str | None = None
    options: RunOptions = field(default_factory=lambda: RunOptions(preview_every=0))
    ignore: tuple[int, ...] | None = None
    boundary: bool = True
    hierarchy: int = 0


def read_prediction(path: str | os.PathLike) -> list[np.ndarray]:
    """Label maps of a prediction file (several for a ``segs`` ``.mat``).

    Parameters
    ----------
    path : path-like
        ``.tif``, ``.png`` (a 2-D label image, gray RGB accepted), ``.npy`` or a
        benchmark ``segs`` ``.mat``.

    Returns
    -------
    list of numpy.ndarray
        One 2-D integer label map per setting.

    Raises
    ------
    ValueError
        If the file does not hold 2-D integer label maps.
    """
    p = Path(path)
    if p.suffix.lower() == ".mat":
        return read_segs(p)
    if p.suffix.lower() == ".npy":
        arr = np.load(p, allow_pickle=False)
    else:
        arr = read_image(p)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and np.all(arr[..., :3] == arr[..., :1]):
        arr = arr[..., 0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{p}: a prediction must be a 2-D integer label map, got shape "
                         f"{arr.shape} dtype {arr.dtype}")
    return [arr]


def prediction_file(pred_dir: Path, image_id: str) -> Path:
    """The prediction of ``image_id`` in ``pred_dir`` (first of :data:`PREDICTION_EXTENSIONS`).

    Raises
    ------
    FileNotFoundError
        If there is none.
    """
    for ext in PREDICTION_EXTENSIONS:
        p = pred_dir / f"{image_id}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"no prediction for image {image_id} in {pred_dir} "
                            f"(looked for {image_id}{{{','.join(PREDICTION_EXTENSIONS)}}})")


def _annotations(job: ImageJob) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    if job.kind == "bsds":
        gt = read_bsds_gt(job.annotation)
        return gt.segmentations, gt.boundaries
    return [read_mask(job.annotation)], None


def evaluate_image(job: ImageJob) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Segment one image under every setting and score it (pure: files are only read).

    Parameters
    ----------
    job : ImageJob

    Returns
    -------
    record : dict
        JSON-serialisable scores: per setting ``params``, ``n_labels``, ``seconds``,
        ``hungarian``, ``many_to_one``, ``covering``, ``pri``, ``voi``, ``ari``,
        region and boundary counts, segment precision/recall.
    arrays : dict
        Segment match records (``s<k>_<field>``) for pooling over the dataset.

    Raises
    ------
    UnscorableImage
        If the ground truth leaves no pixel to score (every pixel an ``ignore`` value),
        before the method runs.
    ValueError, TypeError, FileNotFoundError, KeyError
        With the image id in the message.
    """
    try:
        return _evaluate_image(job)
    except UnscorableImage:
        raise
    except (ValueError, TypeError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise type(exc)(f"image {job.id}: {msg}") from exc


def _segment(image: np.ndarray, method: str, options: RunOptions,
             setting: dict[str, Any]) -> np.ndarray:
    *_, last = iter_segment_with(image, method, options, **setting)  # the final snapshot
    assert last.labels is not None
    return last.labels


def _every_label_a_region(labels: np.ndarray, kind: str) -> np.ndarray:
    """Labels as the region benchmark should read them.

    The benchmark's code never counts label 0 (nor a negative one) as a region: right for
    BSDS ``segs``, whose labels start at 1. With mask annotations every label of the
    ground truth is a region, and so is every label of a prediction: a prediction
    numbered from 0 (or holding negative labels) is renumbered 1..n first, so it scores
    the covering its partition earns (the same as ``score_all``'s per-image covering).
    """
    if kind == "bsds" or labels.size == 0 or labels.min() > 0:
        return labels
    return dense_ids(labels)[1].reshape(labels.shape) + 1


def _hierarchy_cuts(job: ImageJob, image: np.ndarray
                    ) -> tuple[list[np.ndarray], list[float], list[dict]]:
    """One run of the method, its hierarchy cut at the benchmark's thresholds."""
    assert job.method is not None
    t0 = time.perf_counter()
    res = segment_hierarchy_with(image, job.method, job.options, **job.settings[0])
    spent = time.perf_counter() - t0  # the run and its hierarchy: the cost of every cut
    cuts = [res.hierarchy.cut(threshold=t) for t in linspace_thresholds(job.hierarchy)]
    params = [{**job.settings[0], "threshold": round(float(t), 4)}
              for t in linspace_thresholds(job.hierarchy)]
    return cuts, [spent] * len(cuts), params


def check_image_size(path: str | os.PathLike, image: np.ndarray, channel_axis: int | None,
                     shape: tuple[int, ...]) -> None:
    """Refuse an image whose spatial size is not its annotation's ``shape`` (before any run)."""
    layout = layout_shape(image, channel_axis)
    if layout is not None and tuple(layout[:2]) != tuple(shape):
        raise ValueError(f"{path} is {layout[0]}x{layout[1]} but its ground truth is "
                         f"{shape[0]}x{shape[1]}")


def _image_for(job: ImageJob, shape: tuple[int, ...]) -> np.ndarray:
    """The job's image, refused before any run when its size is not the annotation's."""
    image = read_image(job.image)
    check_image_size(job.image, image, job.options.channel_axis, shape)
    return image


def _evaluate_image(job: ImageJob) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    t_start = time.perf_counter()
    gts, gt_bdry = _annotations(job)
    shape = gts[0].shape
    masks = [valid_mask(g, job.ignore) for g in gts]
    mask = None if masks[0] is None else np.logical_and.reduce(masks)
    check_scorable(job.id, mask, job.ignore)
    labels_list: list[np.ndarray] = []
    seconds: list[float] = []
    params_list: list[dict[str, Any]] = []
    if job.prediction is not None:
        t0 = time.perf_counter()
        labels_list = read_prediction(job.prediction)
        seconds = [(time.perf_counter() - t0) / len(labels_list)] * len(labels_list)
        params_list = [{"segs": k + 1} for k in range(len(labels_list))]
    elif job.hierarchy:
        if job.method is None or len(job.settings) != 1:
            raise ValueError("a hierarchy job needs a method and exactly one setting")
        labels_list, seconds, params_list = _hierarchy_cuts(job, _image_for(job, shape))
    else:
        if job.method is None:
            raise ValueError("an image job needs a method or a prediction file")
        image = _image_for(job, shape)
        for setting in job.settings:
            t0 = time.perf_counter()
            labels = _segment(image, job.method, job.options, setting)
            seconds.append(time.perf_counter() - t0)
            labels_list.append(labels)
            params_list.append(dict(setting))
    for k, lab in enumerate(labels_list):
        if lab.shape != shape:
            raise ValueError(f"prediction {k + 1} has shape {lab.shape}, ground truth {shape}")
    region = region_counts_segs(gts, [_every_label_a_region(lab, job.kind) for lab in labels_list],
                                mask=mask, gt_zero_is_region=job.kind != "bsds")
    bcounts = None
    if job.boundary:
        if gt_bdry is None:
            gt_bdry = gt_boundaries_from_segs(gts)
        bcounts = boundary_counts_maps((seg2bdry(lab) for lab in labels_list), gt_bdry,
                                       mask=mask)
    settings_out = []
    arrays: dict[str, np.ndarray] = {}
    for k, lab in enumerate(labels_list):
        scores = score_all(lab, gts, ignore=job.ignore)
        seg = segment_matches(lab, gts, ignore=job.ignore, thresholds=IOU_THRESHOLDS)
        for name, arr in seg.to_arrays().items():
            arrays[f"s{k}_{name}"] = arr
        entry: dict[str, Any] = {
            "index": k, "params": params_list[k], "n_labels": int(len(np.unique(lab))),
            "seconds": round(seconds[k], 4), **{key: float(v) for key, v in scores.items()},
            "region_counts": [float(region.cnt_r[k]), float(region.sum_r[k]),
                              float(region.cnt_p[k]), float(region.sum_p[k])],
            "ri": float(region.ri[k]), "region_voi": float(region.voi[k]),
        }
        if bcounts is not None:
            entry["boundary_counts"] = [int(bcounts.cnt_r[k]), int(bcounts.sum_r[k]),
                                        int(bcounts.cnt_p[k]), int(bcounts.sum_p[k])]
        for t in IOU_THRESHOLDS:
            curve = segment_pr(seg, t)
            entry[f"segments@{t}"] = {"precision": curve.final_precision,
                                      "recall": curve.final_recall, "f": curve.f,
                                      "ap": curve.ap}
        settings_out.append(entry)
    record = {
        "version": RECORD_VERSION, "id": job.id, "shape": list(shape),
        "n_annotators": len(gts), "cnt_r_best": float(region.cnt_r_best),
        "settings": settings_out, "seconds_total": round(time.perf_counter() - t_start, 4),
    }
    return record, arrays
