"""Per-image counts of the BSDS500 benchmark (``evaluation_{bdry,reg}_image.m``).

:func:`boundary_counts` and :func:`region_counts` return, for every threshold, the
counts the benchmark writes to its per-image files; :mod:`.collect` turns the counts
of a set of images into ODS / OIS / AP figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from napari_useg.metrics.bsds.boundaries import correspond_pixels, seg2bdry, thin_boundaries
from napari_useg.metrics.bsds.inputs import (
    check_segs,
    linspace_thresholds,
    pb_boundaries,
    ucm2_boundaries,
    ucm2_to_segs,
)
from napari_useg.metrics.contingency import dense_ids
from napari_useg.metrics.partition import ri_from_table, voi_from_table

__all__ = [
    "BoundaryCounts",
    "RegionCounts",
    "boundary_counts",
    "boundary_counts_maps",
    "gt_boundaries_from_segs",
    "region_counts",
    "region_counts_segs",
]


@dataclass(frozen=True)
class BoundaryCounts:
    """Boundary counts of one image at each threshold (the benchmark's ``_ev1.txt``).

    Attributes
    ----------
    thresholds : numpy.ndarray
        ``(T,)`` thresholds (``1..N`` for ``segs``).
    cnt_r, sum_r : numpy.ndarray
        Matched human boundary pixels and all human boundary pixels, summed over
        annotators: recall is ``cnt_r / sum_r``.
    cnt_p, sum_p : numpy.ndarray
        Machine boundary pixels matched to some annotator, and all machine boundary
        pixels: precision is ``cnt_p / sum_p``.
    """

    thresholds: np.ndarray
    cnt_r: np.ndarray
    sum_r: np.ndarray
    cnt_p: np.ndarray
    sum_p: np.ndarray

    @property
    def recall(self) -> np.ndarray:
        """Recall at each threshold."""
        return self.cnt_r / np.where(self.sum_r == 0, 1, self.sum_r)

    @property
    def precision(self) -> np.ndarray:
        """Precision at each threshold."""
        return self.cnt_p / np.where(self.sum_p == 0, 1, self.sum_p)

    @property
    def f(self) -> np.ndarray:
        """F-measure at each threshold."""
        r, p = self.recall, self.precision
        return 2 * p * r / np.where(p + r == 0, 1, p + r)


@dataclass(frozen=True)
class RegionCounts:
    """Region counts of one image at each threshold (``_ev2``, ``_ev3``, ``_ev4`` files).

    Attributes
    ----------
    thresholds : numpy.ndarray
        ``(T,)`` thresholds.
    cnt_r, sum_r : numpy.ndarray
        Covering of the ground truth by the segmentation: ``sum(area * best IoU)`` over
        the regions of all annotators, and their total area (``cnt_r / sum_r`` is the
        segmentation covering).
    cnt_p, sum_p : numpy.ndarray
        The same with the roles swapped (covering of the segmentation by the ground truth).
    cnt_r_best : float
        ``cnt_r`` with each ground-truth region's best IoU over all thresholds.
    ri, voi : numpy.ndarray
        Rand index and variation of information (bits), averaged over annotators.
    """

    thresholds: np.ndarray
    cnt_r: np.ndarray
    sum_r: np.ndarray
    cnt_p: np.ndarray
    sum_p: np.ndarray
    cnt_r_best: float
    ri: np.ndarray
    voi: np.ndarray

    @property
    def covering(self) -> np.ndarray:
        """Segmentation covering at each threshold."""
        return self.cnt_r / np.where(self.sum_r == 0, 1, self.sum_r)


def _check_gt(gt: Sequence[np.ndarray] | np.ndarray, what: str) -> list[np.ndarray]:
    if isinstance(gt, np.ndarray):
        gt = [gt] if gt.ndim == 2 else list(gt)
    out = [np.asarray(g) for g in gt]
    if not out:
        raise ValueError(f"no ground-truth {what} given")
    for k, g in enumerate(out):
        if g.ndim != 2 or g.shape != out[0].shape:
            raise ValueError(f"ground-truth {what} {k} has shape {g.shape}; all must be 2-D "
                             f"of the same shape")
    return out


def check_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A scoring mask as a boolean array of exactly ``shape`` (never broadcast).

    Boolean masks are used as they are; integer masks must hold only 0 and 1, so a
    mask of value 2 cannot mean "everything" to one count and "nothing" to another.
    """
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"mask has shape {m.shape}, ground truth has {tuple(shape)}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.integer):
            raise TypeError(f"mask must be boolean or 0/1 integers, got dtype {m.dtype}")
        if m.size and (m.min() < 0 or m.max() > 1):
            raise ValueError(f"an integer mask must hold only 0 and 1, got values in "
                             f"[{m.min()}, {m.max()}]")
        m = m.astype(bool)
    if not m.any():
        raise ValueError("no pixels to score: the mask is empty")
    return m


def gt_boundaries_from_segs(gt_segs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Human boundary maps from annotations as BSDS500 stores them: thinned ``seg2bdry``."""
    return [thin_boundaries(seg2bdry(g)) for g in _check_gt(gt_segs, "segmentations")]


def boundary_counts_maps(bmaps: Iterable[np.ndarray], gt_boundaries: Sequence[np.ndarray],
                         thresholds: Sequence[float] | None = None, *,
                         max_dist: float = 0.0075, thin: bool = True,
                         mask: np.ndarray | None = None) -> BoundaryCounts:
    """Boundary counts of a sequence of binary machine boundary maps.

    Parameters
    ----------
    bmaps : iterable of numpy.ndarray
        One binary map per threshold.
    gt_boundaries : sequence of numpy.ndarray
        Every annotator's boundary map.
    thresholds : sequence of float, optional
        Recorded with the counts (``1..N`` when omitted).
    max_dist : float
        Matching tolerance, a fraction of the image diagonal.
    thin : bool
        Thin each machine map first (the benchmark's ``thinpb``, on by default).
    mask : numpy.ndarray, optional
        Boolean map of the pixels that count; machine and human boundary pixels outside
        it are dropped (for annotations with unannotated areas).

    Returns
    -------
    BoundaryCounts
    """
    gts = [np.asarray(g) != 0 for g in _check_gt(gt_boundaries, "boundary maps")]
    mask = check_mask(mask, gts[0].shape)
    if mask is not None:
        gts = [g & mask for g in gts]
    cnt_r, sum_r, cnt_p, sum_p = [], [], [], []
    for bmap in bmaps:
        b = np.asarray(bmap) != 0
        if b.shape != gts[0].shape:
            raise ValueError(f"boundary map of shape {b.shape} but ground truth {gts[0].shape}")
        if thin:
            b = thin_boundaries(b)
        if mask is not None:
            b = b & mask
        acc = np.zeros(b.shape, bool)
        cr = sr = 0
        for g in gts:
            m1, m2 = correspond_pixels(b, g, max_dist)
            acc |= m1
            cr += int(m2.sum())
            sr += int(g.sum())
        cnt_r.append(cr)
        sum_r.append(sr)
        cnt_p.append(int(acc.sum()))
        sum_p.append(int(b.sum()))
    n = len(cnt_r)
    thr = np.arange(1, n + 1, dtype=np.float64) if thresholds is None \
        else np.asarray(thresholds, np.float64)
    if len(thr) != n:
        raise ValueError(f"{len(thr)} thresholds for {n} boundary maps")
    return BoundaryCounts(thr, np.array(cnt_r, np.int64), np.array(sum_r, np.int64),
                          np.array(cnt_p, np.int64), np.array(sum_p, np.int64))


def _one_input(segs, ucm2, pb) -> str:
    given = [name for name, v in (("segs", segs), ("ucm2", ucm2), ("pb", pb)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of segs, ucm2 or pb (got {given or 'none'})")
    return given[0]


def boundary_counts(gt_boundaries: Sequence[np.ndarray], *, segs=None, ucm2=None, pb=None,
                    nthresh: int = 99, max_dist: float = 0.0075, thin: bool = True,
                    mask: np.ndarray | None = None) -> BoundaryCounts:
    """Boundary benchmark of one image (``evaluation_bdry_image.m``).

    Parameters
    ----------
    gt_boundaries : sequence of numpy.ndarray
        Annotators' boundary maps (the ``Boundaries`` of a BSDS file, or
        :func:`gt_boundaries_from_segs` of label maps).
    segs : label map or list of label maps, optional
        One segmentation per threshold; its boundaries are :func:`seg2bdry`.
    ucm2 : numpy.ndarray, optional
        Ultrametric contour map ``(2H+1, 2W+1)``, thresholded at ``nthresh`` levels.
    pb : numpy.ndarray, optional
        Soft boundary map (``uint8`` or float in [0, 1]), thresholded at ``nthresh`` levels.
    nthresh : int
        Number of thresholds for ``ucm2`` and ``pb`` (the benchmark's default is 99).
    max_dist, thin, mask
        See :func:`boundary_counts_maps`.

    Returns
    -------
    BoundaryCounts
    """
    kind = _one_input(segs, ucm2, pb)
    gts = _check_gt(gt_boundaries, "boundary maps")
    shape = gts[0].shape
    if kind == "segs":
        s = check_segs(segs, shape)
        return boundary_counts_maps((seg2bdry(x) for x in s), gts, None, max_dist=max_dist,
                                    thin=thin, mask=mask)
    thr = linspace_thresholds(nthresh)
    maps = ucm2_boundaries(ucm2, thr, shape) if kind == "ucm2" else pb_boundaries(pb, thr, shape)
    return boundary_counts_maps(maps, gts, thr, max_dist=max_dist, thin=thin, mask=mask)


class _GroundTruthTables:
    """Dense ids of each annotator's labels, computed once per image."""

    def __init__(self, gt_segs: list[np.ndarray], mask: np.ndarray | None,
                 zero_is_region: bool):
        self.mask = mask
        self.items = []
        for g in gt_segs:
            flat = g.ravel() if mask is None else g[mask]
            ids, inv = dense_ids(flat)
            area = np.bincount(inv, minlength=len(ids))
            # label 0 is not a region in the benchmark (its labels start at 1)
            region = np.ones(len(ids), bool) if zero_is_region else ids > 0
            self.items.append((ids, inv, area, region))
        self.sum_r = float(sum(a[r].sum() for _, _, a, r in self.items))


def region_counts_segs(gt_segs: Sequence[np.ndarray], segs: Sequence[np.ndarray],
                       thresholds: Sequence[float] | None = None, *,
                       mask: np.ndarray | None = None,
                       gt_zero_is_region: bool = False) -> RegionCounts:
    """Region counts of a list of segmentations (one per threshold).

    Label 0 is not a region (in the benchmark labels start at 1), but its pixels still
    count in the union of every intersection over union, as there.

    Parameters
    ----------
    gt_segs : sequence of numpy.ndarray
        Annotators' label maps.
    segs : sequence of numpy.ndarray
        One segmentation per threshold.
    thresholds : sequence of float, optional
        ``1..N`` when omitted.
    mask : numpy.ndarray, optional
        Boolean map of the scored pixels (others are left out of everything).
    gt_zero_is_region : bool
        Count ground-truth label 0 as a region (for masks where 0 is a class, such as
        background); the benchmark does not.

    Returns
    -------
    RegionCounts
    """
    gts = _check_gt(gt_segs, "segmentations")
    segs = check_segs(segs, gts[0].shape)
    mask = check_mask(mask, gts[0].shape)
    tables = _GroundTruthTables(gts, mask, gt_zero_is_region)
    best_gt = [np.zeros(len(ids)) for ids, _, _, _ in tables.items]
    cnt_r, sum_r, cnt_p, sum_p, ri, voi = [], [], [], [], [], []
    for seg in segs:
        flat = seg.ravel() if mask is None else seg[mask]
        sids, sinv = dense_ids(flat)
        sarea = np.bincount(sinv, minlength=len(sids))
        sregion = sids > 0
        best_seg = np.zeros(len(sids))
        cr = 0.0
        r_sum = v_sum = 0.0
        for k, (gids, ginv, garea, gregion) in enumerate(tables.items):
            table = np.bincount(sinv.astype(np.int64) * len(gids) + ginv,
                                minlength=len(sids) * len(gids)).reshape(len(sids), len(gids))
            union = sarea[:, None] + garea[None, :] - table
            iou = table / np.where(union == 0, 1, union)
            iou = iou * sregion[:, None] * gregion[None, :]
            best_seg = np.maximum(best_seg, iou.max(axis=1))
            gbest = iou.max(axis=0)
            best_gt[k] = np.maximum(best_gt[k], gbest)
            cr += float((garea * gbest)[gregion].sum())
            r_sum += ri_from_table(table)
            v_sum += voi_from_table(table)
        cnt_r.append(cr)
        sum_r.append(tables.sum_r)
        cnt_p.append(float((sarea * best_seg)[sregion].sum()))
        sum_p.append(float(sarea[sregion].sum()))
        ri.append(r_sum / len(tables.items))
        voi.append(v_sum / len(tables.items))
    cnt_r_best = float(sum((a * b)[r].sum() for (_, _, a, r), b in zip(tables.items, best_gt,
                                                                         strict=True)))
    n = len(segs)
    thr = np.arange(1, n + 1, dtype=np.float64) if thresholds is None \
        else np.asarray(thresholds, np.float64)
    return RegionCounts(thr, np.array(cnt_r), np.array(sum_r), np.array(cnt_p),
                        np.array(sum_p), cnt_r_best, np.array(ri), np.array(voi))


def region_counts(gt_segs: Sequence[np.ndarray], *, segs=None, ucm2=None,
                  nthresh: int = 99, mask: np.ndarray | None = None) -> RegionCounts:
    """Region benchmark of one image: covering, PRI and VOI (``evaluation_reg_image.m``).

    Parameters
    ----------
    gt_segs : sequence of numpy.ndarray
        Annotators' label maps (the ``Segmentation`` of a BSDS file).
    segs : label map or list of label maps, optional
        One segmentation per threshold.
    ucm2 : numpy.ndarray, optional
        Ultrametric contour map, cut at ``nthresh`` thresholds.
    nthresh : int
        Number of thresholds for ``ucm2``.
    mask : numpy.ndarray, optional
        Boolean map of the scored pixels.

    Returns
    -------
    RegionCounts
    """
    if segs is None and ucm2 is None:
        raise ValueError("the region benchmark needs segs or ucm2 (a soft boundary map has "
                         "no regions)")
    if segs is not None and ucm2 is not None:
        raise ValueError("give segs or ucm2, not both")
    if segs is not None:
        return region_counts_segs(gt_segs, check_segs(segs), None, mask=mask)
    thr = linspace_thresholds(nthresh)
    return region_counts_segs(gt_segs, ucm2_to_segs(ucm2, thr), thr, mask=mask)
