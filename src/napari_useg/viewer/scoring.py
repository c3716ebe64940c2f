"""Scoring one Labels layer against another (the accuracy widget's job, Qt-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_useg.metrics import hungarian_match, score_all
from napari_useg.viewer.output import put_derived_layer
from napari_useg.viewer.sources import is_layer, resolve_layer

__all__ = ["score_layers", "SCORE_HELP", "score_help", "pick_pair"]

#: What each score of :func:`napari_useg.metrics.score_all` measures, and which way is better.
SCORE_HELP: dict[str, str] = {
    "hungarian": "pixel accuracy after matching each predicted segment to at most one "
                 "ground-truth segment (Hungarian matching); 0 to 1, higher is better",
    "many_to_one": "pixel accuracy when every predicted segment takes its majority "
                   "ground-truth label (several segments may share one); 0 to 1, higher is "
                   "better, and it favours over-segmentation",
    "covering": "segmentation covering: how well the predicted segments overlap the "
                "ground-truth ones (best overlap per segment, weighted by size); 0 to 1, "
                "higher is better",
    "pri": "probabilistic Rand index: the share of pixel pairs that both maps put in the "
           "same or in different segments alike; 0 to 1, higher is better",
    "voi": "variation of information: the information (bits) that one map lacks about the "
           "other; 0 for identical maps, lower is better",
    "ari": "adjusted Rand index: the Rand index corrected for chance agreement; 1 for "
           "identical maps, about 0 for random ones, higher is better",
}


def score_help(name: str) -> str:
    """What the score ``name`` measures and which way is better (``""`` if unknown)."""
    return SCORE_HELP.get(name.lower().replace("-", "_"), "")


_GT_WORDS = ("ground truth", "groundtruth", "annotation", "manual")
_DERIVED = (" matched", " errors")  # layers this module adds


def _says_ground_truth(name: str) -> bool:
    words = name.lower().replace("-", " ").replace("_", " ")
    return any(w in words for w in _GT_WORDS) or "gt" in words.split()


def pick_pair(names: list[str]) -> tuple[int, int] | None:
    """Indices (prediction, ground truth) of two different layers among ``names``.

    The ground truth is the last layer whose name says so (``"ground truth"``, ``"gt"``,
    ``"annotation"``...), else the second-to-last layer; the prediction is the last other
    layer, preferring one that is not a ``matched``/``errors`` layer added by
    :func:`score_layers`. ``None`` with fewer than two layers.
    """
    if len(names) < 2:
        return None
    said = [i for i, n in enumerate(names) if _says_ground_truth(n)]
    gt = said[-1] if said else len(names) - 2
    others = [i for i in range(len(names)) if i != gt]
    plain = [i for i in others if not names[i].endswith(_DERIVED)]
    return (plain or others)[-1], gt


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
        If the layers are not Labels layers, are the same layer, or their shapes differ.
    """
    pred_layer = resolve_layer(viewer, prediction)
    gt_layer = resolve_layer(viewer, ground_truth)
    if pred_layer is gt_layer:
        raise ValueError(
            f"prediction and ground truth are the same layer ({pred_layer.name!r}): a layer "
            "scored against itself is always perfect; choose two different Labels layers"
        )
    for role, lay in (("prediction", pred_layer), ("ground truth", gt_layer)):
        if not is_layer(lay, "labels"):
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
            put_derived_layer(viewer, matched.astype(np.int32), f"{pred_layer.name} matched",
                              pred_layer, "matched")
        if add_errors:
            wrong = matched != gt
            if zero_unannotated:
                wrong &= gt != 0
            # deferred: napari is heavy and the CLI imports this package
            from napari.utils.colormaps import DirectLabelColormap

            cmap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent",
                                                   1: "red"})
            put_derived_layer(viewer, wrong.astype(np.uint8), f"{pred_layer.name} errors",
                              pred_layer, "errors", colormap=cmap)
    return scores
