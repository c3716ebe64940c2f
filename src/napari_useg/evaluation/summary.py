"""Dataset figures of an evaluation: ODS and OIS over the settings, from per-image records.

ODS ("optimal dataset scale") is the one setting best for the whole set, OIS ("optimal
image scale") takes each image's best setting. Accuracy and ARI are averaged per image;
covering, PRI, VOI and boundary F are collected from the per-image counts as the BSDS500
benchmark does; segment AP pools the size-ranked segment matches of every image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_useg.evaluation.jobs import IOU_THRESHOLDS
from napari_useg.metrics.bsds import (
    BoundaryCounts,
    RegionCounts,
    collect_boundary,
    collect_region,
)
from napari_useg.metrics.protocol import ods_ois
from napari_useg.metrics.segments import SegmentMatches, segment_pr

__all__ = ["summarise"]


def summarise(records: list[dict[str, Any]], arrays: list[dict[str, np.ndarray]],
              labels: list[str]) -> dict[str, Any]:
    """Dataset figures (ODS / OIS over the settings) from per-image records.

    Parameters
    ----------
    records : list of dict
        Per-image records of :func:`~napari_useg.evaluation.evaluate_image`, all with the
        same settings.
    arrays : list of dict
        The matching segment arrays.
    labels : list of str
        Name of each setting.

    Returns
    -------
    dict
        ``n_images``, ``settings`` (the labels), ``metrics`` (per metric: ``ods``,
        ``ods_setting``, ``ois``, ``per_setting``, ...), ``seconds_per_image``, and
        ``_curves`` (segment PR curves per IoU threshold and setting; not JSON).

    Raises
    ------
    ValueError
        If the images were evaluated with different numbers of settings.
    """
    n_set = len(records[0]["settings"])
    if any(len(r["settings"]) != n_set for r in records):
        raise ValueError("images were evaluated with different numbers of settings")
    out: dict[str, Any] = {"n_images": len(records), "settings": labels, "metrics": {}}

    def table(key: str) -> np.ndarray:
        return np.array([[s[key] for s in r["settings"]] for r in records], np.float64)

    for key, better in (("hungarian", True), ("many_to_one", True), ("ari", True)):
        r = ods_ois(table(key), higher_is_better=better)
        out["metrics"][key] = {"ods": r.ods, "ods_setting": labels[r.ods_index], "ois": r.ois,
                               "per_setting": r.per_setting.tolist()}
    thr = np.arange(1, n_set + 1, dtype=np.float64)
    rc = [RegionCounts(thr, *np.array([s["region_counts"] for s in r["settings"]]).T,
                       r["cnt_r_best"], np.array([s["ri"] for s in r["settings"]]),
                       np.array([s["region_voi"] for s in r["settings"]])) for r in records]
    reg = collect_region(rc)
    out["metrics"]["covering"] = {
        "ods": reg.covering_ods, "ods_setting": labels[int(reg.covering_ods_threshold) - 1],
        "ois": reg.covering_ois, "best": reg.covering_best, "per_setting": reg.covering.tolist()}
    out["metrics"]["pri"] = {"ods": reg.pri_ods, "ods_setting": labels[int(reg.pri_ods_threshold)
                                                                      - 1],
                             "ois": reg.pri_ois, "per_setting": reg.pri.tolist()}
    out["metrics"]["voi"] = {"ods": reg.voi_ods, "ods_setting": labels[int(reg.voi_ods_threshold)
                                                                      - 1],
                             "ois": reg.voi_ois, "per_setting": reg.voi.tolist()}
    if all("boundary_counts" in s for r in records for s in r["settings"]):
        bc = [BoundaryCounts(thr, *np.array([s["boundary_counts"] for s in r["settings"]]).T)
              for r in records]
        b = collect_boundary(bc)
        k = int(np.argmax(b.f))
        out["metrics"]["boundary_f"] = {
            "ods": float(b.f[k]), "ods_setting": labels[k], "ois": b.ois_f,
            "ods_recall": float(b.recall[k]), "ods_precision": float(b.precision[k]),
            "ap": b.ap, "ods_interpolated": b.ods_f,
            "per_setting": b.f.tolist(), "recall": b.recall.tolist(),
            "precision": b.precision.tolist()}
    for t in IOU_THRESHOLDS:
        aps, curves = [], []
        for s in range(n_set):
            pooled = SegmentMatches.concatenate([SegmentMatches.from_arrays(
                {f: a[f"s{s}_{f}"] for f in ("thresholds", "sizes", "best_iou", "new_found",
                                             "n_gt")}) for a in arrays])
            c = segment_pr(pooled, t)
            aps.append(c.ap)
            curves.append(c)
        k = int(np.argmax(aps))
        out["metrics"][f"segment_ap@{t}"] = {
            "ods": float(aps[k]), "ods_setting": labels[k], "per_setting": aps,
            "precision": curves[k].final_precision, "recall": curves[k].final_recall}
        out.setdefault("_curves", {})[t] = curves
    seg_seconds = np.array([[s["seconds"] for s in r["settings"]] for r in records])
    out["seconds_per_image"] = {
        "segmentation_per_setting": float(seg_seconds.mean()),
        "segmentation_all_settings": float(seg_seconds.sum(axis=1).mean()),
        "total": float(np.mean([r["seconds_total"] for r in records])),
    }
    return out

