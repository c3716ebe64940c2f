"""Scoring one Labels layer against another (the accuracy widget's job, Qt-free)."""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_useg.metrics import hungarian_match, score_all
from napari_useg.viewer.output import put_derived_layer
from napari_useg.viewer.sources import is_layer, resolve_layer

__all__ = ["score_layers"]


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
    pred_layer = resolve_layer(viewer, prediction)
    gt_layer = resolve_layer(viewer, ground_truth)
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
