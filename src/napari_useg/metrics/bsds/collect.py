"""Dataset figures from per-image counts (``collect_eval_bdry.m``, ``collect_eval_reg.m``).

ODS ("optimal dataset scale") is the best single threshold for the whole set, from
counts pooled over images; OIS ("optimal image scale") takes the best threshold of
each image. Boundary figures also have the average precision (area under the pooled
precision-recall curve) and, as in the benchmark, the ODS point is searched on the
straight segments between consecutive thresholds.
:func:`official_files` formats the benchmark's own text files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from napari_useg.metrics.bsds.image import BoundaryCounts, RegionCounts

__all__ = [
    "BoundarySummary",
    "RegionSummary",
    "collect_boundary",
    "collect_region",
    "fmeasure",
    "official_files",
]


def fmeasure(r, p):
    """Harmonic mean of recall and precision (0 where both are 0)."""
    r = np.asarray(r, np.float64)
    p = np.asarray(p, np.float64)
    return 2 * p * r / (p + r + ((p + r) == 0))


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a / (b + (b == 0))


def _stacked(counts: Sequence[BoundaryCounts] | Sequence[RegionCounts]
             ) -> tuple[np.ndarray, ...]:
    """Thresholds and the per-image count arrays ``cnt_r, sum_r, cnt_p, sum_p`` (images x
    thresholds) of a set of images, checked to share their thresholds."""
    if not counts:
        raise ValueError("no images to collect")
    thresh = np.asarray(counts[0].thresholds, np.float64)
    for c in counts:
        if len(c.thresholds) != len(thresh):
            raise ValueError("images were evaluated at different numbers of thresholds")
    return (thresh, *(np.array([getattr(c, f) for c in counts], np.float64)
                      for f in ("cnt_r", "sum_r", "cnt_p", "sum_p")))


def _max_f(thresh: np.ndarray, r: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """Best F on the polyline through the (R, P) points (100 steps per segment, first best)."""
    best = (float(thresh[0]), float(r[0]), float(p[0]), float(fmeasure(r[0], p[0])))
    if len(thresh) < 2:
        return best
    d = np.linspace(0, 1, 100)[None, :]
    t = thresh[1:, None] * d + thresh[:-1, None] * (1 - d)
    rr = r[1:, None] * d + r[:-1, None] * (1 - d)
    pp = p[1:, None] * d + p[:-1, None] * (1 - d)
    f = fmeasure(rr, pp).ravel()
    k = int(np.argmax(f))
    if f[k] > best[3]:
        best = (float(t.ravel()[k]), float(rr.ravel()[k]), float(pp.ravel()[k]), float(f[k]))
    return best


class _Summary:
    """``as_dict`` for the summary dataclasses below."""

    def as_dict(self) -> dict:
        """JSON-friendly dictionary."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in asdict(self).items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class BoundarySummary(_Summary):
    """Boundary benchmark of a set of images (``eval_bdry*.txt``).

    Attributes
    ----------
    ods_threshold, ods_recall, ods_precision, ods_f : float
        The ODS point.
    ois_recall, ois_precision, ois_f : float
        Pooled counts at each image's best threshold.
    ap : float
        Average precision: area under the pooled precision-recall curve, sampled at
        recall 0, 0.01, ..., 1 (zero outside the recall range reached).
    thresholds, recall, precision, f : numpy.ndarray
        The pooled curve, one value per threshold.
    per_image : numpy.ndarray
        ``(n_images, 4)``: best threshold, recall, precision, F of each image.
    """

    ods_threshold: float
    ods_recall: float
    ods_precision: float
    ods_f: float
    ois_recall: float
    ois_precision: float
    ois_f: float
    ap: float
    thresholds: np.ndarray
    recall: np.ndarray
    precision: np.ndarray
    f: np.ndarray
    per_image: np.ndarray


def collect_boundary(counts: Sequence[BoundaryCounts]) -> BoundarySummary:
    """ODS, OIS and AP of the boundary benchmark over a set of images.

    Parameters
    ----------
    counts : sequence of BoundaryCounts
        One per image, all with the same thresholds.

    Returns
    -------
    BoundarySummary
    """
    thresh, cr, sr, cp, spp = _stacked(counts)
    per_image = []
    ois = np.zeros(4)
    for i in range(len(counts)):  # loop over images (a few hundred at most)
        r = _ratio(cr[i], sr[i])
        p = _ratio(cp[i], spp[i])
        f = fmeasure(r, p)
        bt, br, bp, bf = _max_f(thresh, r, p)
        per_image.append((bt, br, bp, bf))
        k = int(np.flatnonzero(f == f.max())[0])
        ois += (cr[i, k], sr[i, k], cp[i, k], spp[i, k])
    r = _ratio(cr.sum(0), sr.sum(0))
    p = _ratio(cp.sum(0), spp.sum(0))
    f = fmeasure(r, p)
    bt, br, bp, bf = _max_f(thresh, r, p)
    r_max = float(_ratio(ois[0], ois[1]))
    p_max = float(_ratio(ois[2], ois[3]))
    ru, first = np.unique(r, return_index=True)
    if len(ru) > 1:
        grid = np.linspace(0, 1, 101)
        pi = np.interp(grid, ru, p[first])
        pi[(grid < ru[0]) | (grid > ru[-1])] = 0.0
        ap = float(pi.sum() * 0.01)
    else:
        ap = 0.0
    return BoundarySummary(bt, br, bp, bf, r_max, p_max, float(fmeasure(r_max, p_max)), ap,
                           thresh, r, p, f, np.array(per_image))


@dataclass(frozen=True)
class RegionSummary(_Summary):
    """Region benchmark of a set of images (``eval_cover*.txt``, ``eval_RI_VOI*.txt``).

    Attributes
    ----------
    covering_ods_threshold, covering_ods, covering_ois, covering_best : float
        Segmentation covering: best pooled threshold, each image's best threshold, and
        each ground-truth region's best threshold.
    pri_ods_threshold, pri_ods, pri_ois : float
        Probabilistic Rand index (mean over images; higher is better).
    voi_ods_threshold, voi_ods, voi_ois : float
        Variation of information in bits (mean over images; lower is better).
    thresholds, covering, pri, voi : numpy.ndarray
        Per-threshold values over the set.
    per_image : numpy.ndarray
        ``(n_images, 3)``: best covering threshold, covering at it, and the reverse
        covering (of the segmentation by the ground truth) at it.
    """

    covering_ods_threshold: float
    covering_ods: float
    covering_ois: float
    covering_best: float
    pri_ods_threshold: float
    pri_ods: float
    pri_ois: float
    voi_ods_threshold: float
    voi_ods: float
    voi_ois: float
    thresholds: np.ndarray
    covering: np.ndarray
    pri: np.ndarray
    voi: np.ndarray
    per_image: np.ndarray


def collect_region(counts: Sequence[RegionCounts]) -> RegionSummary:
    """ODS and OIS of covering, PRI and VOI over a set of images.

    Parameters
    ----------
    counts : sequence of RegionCounts
        One per image, all with the same thresholds.

    Returns
    -------
    RegionSummary
    """
    thresh, cr, sr, cp, spp = _stacked(counts)
    ri = np.array([c.ri for c in counts], np.float64)
    voi = np.array([c.voi for c in counts], np.float64)
    per_image = []
    best = np.zeros(2)
    for i in range(len(counts)):  # loop over images
        r = _ratio(cr[i], sr[i])
        p = _ratio(cp[i], spp[i])
        k = int(np.argmax(r))
        per_image.append((thresh[k], r[k], p[k]))
        last = int(np.flatnonzero(r == r.max())[-1])
        best += (cr[i, last], sr[i, last])
    r = _ratio(cr.sum(0), sr.sum(0))
    k = int(np.argmax(r))
    cover_best = float(sum(c.cnt_r_best for c in counts) / sr[:, 0].sum()) if sr[:, 0].sum() \
        else 0.0
    g_ri = ri.mean(0)
    g_voi = voi.mean(0)
    ri_best = float(np.mean([row[np.flatnonzero(row == row.max())[-1]] for row in ri]))
    voi_best = float(np.mean([row[np.flatnonzero(row == row.min())[-1]] for row in voi]))
    kri = int(np.argmax(g_ri))
    kvoi = int(np.argmin(g_voi))
    return RegionSummary(
        float(thresh[k]), float(r[k]), float(_ratio(best[0], best[1])), cover_best,
        float(thresh[kri]), float(g_ri[kri]), ri_best,
        float(thresh[kvoi]), float(g_voi[kvoi]), voi_best,
        thresh, r, g_ri, g_voi, np.array(per_image),
    )


def _g(x: float) -> str:
    return f"{x:10g}"


def official_files(boundary: BoundarySummary | None = None,
                   region: RegionSummary | None = None) -> dict[str, str]:
    """The text of the benchmark's result files (``eval_bdry.txt``, ``eval_cover.txt``, ...).

    Same names, columns and ``%10g`` formatting as the official code, so results can
    be compared with published ones line by line
    (:func:`napari_useg.evaluation.write_official_files` writes them).

    Parameters
    ----------
    boundary, region : summaries, optional
        What to include.

    Returns
    -------
    dict of str to str
        File name to file content.
    """
    files: dict[str, str] = {}
    if boundary is not None:
        b = boundary
        files["eval_bdry.txt"] = " ".join(_g(v) for v in (
            b.ods_threshold, b.ods_recall, b.ods_precision, b.ods_f, b.ois_recall,
            b.ois_precision, b.ois_f, b.ap)) + "\n"
        files["eval_bdry_img.txt"] = "".join(
            f"{i + 1:10d} " + " ".join(_g(v) for v in row) + "\n"
            for i, row in enumerate(b.per_image))
        files["eval_bdry_thr.txt"] = "".join(
            " ".join(_g(v) for v in row) + "\n"
            for row in zip(b.thresholds, b.recall, b.precision, b.f, strict=True))
    if region is not None:
        g = region
        files["eval_cover.txt"] = " ".join(_g(v) for v in (
            g.covering_ods_threshold, g.covering_ods, g.covering_ois, g.covering_best)) + "\n"
        files["eval_cover_img.txt"] = "".join(
            f"{i + 1:10d} " + " ".join(_g(v) for v in row) + "\n"
            for i, row in enumerate(g.per_image))
        files["eval_cover_th.txt"] = "".join(
            f"{_g(t)} {_g(c)}\n" for t, c in zip(g.thresholds, g.covering, strict=True))
        files["eval_RI_VOI.txt"] = " ".join(_g(v) for v in (
            g.pri_ods_threshold, g.pri_ods, g.pri_ois, g.voi_ods_threshold, g.voi_ods,
            g.voi_ois)) + "\n"
        files["eval_RI_VOI_thr.txt"] = "".join(
            f"{_g(t)} {_g(r)} {_g(v)}\n" for t, r, v in zip(g.thresholds, g.pri, g.voi,
                                                          strict=True))
    return files
