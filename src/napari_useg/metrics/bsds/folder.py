"""Benchmark a folder of results against a folder of ground truth (the official ``allBench``).

:func:`evaluate_folder` does what the benchmark's ``allBench`` / ``boundaryBench`` /
``regionBench`` do: for every ground-truth file ``<id>.mat`` it reads the result
``<id>.mat`` (``segs`` or ``ucm2``) or ``<id>.png`` (soft boundaries) from the input
folder, computes the per-image counts and collects the dataset figures; with
``out_dir`` it also writes the benchmark's text files there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from napari_useg.metrics.bsds.collect import (
    BoundarySummary,
    RegionSummary,
    collect_boundary,
    collect_region,
)
from napari_useg.metrics.bsds.collect import write_official_files as _write_files
from napari_useg.metrics.bsds.image import (
    BoundaryCounts,
    RegionCounts,
    boundary_counts,
    region_counts,
)

__all__ = ["FolderResult", "evaluate_folder", "read_result"]


@dataclass(frozen=True)
class FolderResult:
    """Figures of a folder of results.

    Attributes
    ----------
    ids : list of str
        Image ids, in the order evaluated (sorted file names, as MATLAB's ``dir``).
    boundary : BoundarySummary or None
    region : RegionSummary or None
    boundary_counts, region_counts : list
        Per-image counts (empty when that benchmark was not run).
    """

    ids: list[str]
    boundary: BoundarySummary | None
    region: RegionSummary | None
    boundary_counts: list[BoundaryCounts]
    region_counts: list[RegionCounts]


def read_result(in_dir: str | os.PathLike, image_id: str) -> tuple[str, object]:
    """The result for ``image_id`` in ``in_dir``: ``("segs" | "ucm2" | "pb", data)``.

    ``<id>.mat`` holding ``segs`` or ``ucm2``, else ``<id>.png`` (soft boundaries).
    """
    from napari_useg.io.bsds import BSDSFormatError, read_segs, read_ucm2

    d = Path(in_dir)
    mat = d / f"{image_id}.mat"
    if mat.is_file():
        try:
            return "segs", read_segs(mat)
        except BSDSFormatError as exc:
            if "no 'segs' variable" not in str(exc):
                raise
        return "ucm2", read_ucm2(mat)
    png = d / f"{image_id}.png"
    if png.is_file():
        import imageio.v3 as iio

        pb = iio.imread(png)
        if pb.ndim == 3:
            pb = pb[..., 0]
        return "pb", pb
    raise FileNotFoundError(f"no result for image {image_id} in {d} (expected {mat.name} "
                            f"or {png.name})")


def evaluate_folder(in_dir: str | os.PathLike, gt_dir: str | os.PathLike, *,
                    nthresh: int = 99, boundary: bool = True, region: bool = True,
                    max_dist: float = 0.0075, thin: bool = True,
                    out_dir: str | os.PathLike | None = None,
                    overwrite: bool = False) -> FolderResult:
    """Run the BSDS500 benchmark on a folder of results.

    Parameters
    ----------
    in_dir : path-like
        Results: ``<id>.mat`` with ``segs`` or ``ucm2``, or ``<id>.png`` soft boundary maps.
    gt_dir : path-like
        Ground truth: ``<id>.mat`` BSDS files; every one of them is evaluated.
    nthresh : int
        Thresholds for ``ucm2`` and ``png`` inputs (``segs`` use one per segmentation).
    boundary, region : bool
        Which benchmarks to run (the region benchmark needs ``segs`` or ``ucm2``).
    max_dist, thin
        Boundary matching tolerance (fraction of the diagonal) and thinning.
    out_dir : path-like, optional
        Write ``eval_bdry.txt``, ``eval_cover.txt``, ... there.
    overwrite : bool
        Replace existing files in ``out_dir``.

    Returns
    -------
    FolderResult
    """
    from napari_useg.io.bsds import read_bsds_gt

    gt_files = sorted(Path(gt_dir).glob("*.mat"), key=lambda p: p.name)
    if not gt_files:
        raise FileNotFoundError(f"no ground-truth .mat files in {gt_dir}")
    if not (boundary or region):
        raise ValueError("nothing to do: boundary and region are both off")
    ids, bcounts, rcounts = [], [], []
    for f in gt_files:  # one image at a time
        gt = read_bsds_gt(f)
        kind, data = read_result(in_dir, f.stem)
        ids.append(f.stem)
        if boundary:
            bcounts.append(boundary_counts(gt.boundaries, **{kind: data}, nthresh=nthresh,
                                           max_dist=max_dist, thin=thin))
        if region:
            if kind == "pb":
                raise ValueError(f"{f.stem}: the region benchmark needs segs or ucm2, "
                                 f"got a soft boundary map")
            rcounts.append(region_counts(gt.segmentations, **{kind: data}, nthresh=nthresh))
    bsum = collect_boundary(bcounts) if boundary else None
    rsum = collect_region(rcounts) if region else None
    if out_dir is not None:
        _write_files(out_dir, bsum, rsum, overwrite=overwrite)
    return FolderResult(ids, bsum, rsum, bcounts, rcounts)
