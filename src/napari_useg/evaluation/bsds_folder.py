"""Benchmark a folder of results against a folder of ground truth (the official ``allBench``).

:func:`evaluate_folder` does what the benchmark's ``allBench`` / ``boundaryBench`` /
``regionBench`` do: for every ground-truth file ``<id>.mat`` it reads the result
``<id>.mat`` (``segs`` or ``ucm2``) or ``<id>.png`` (soft boundaries) from the input
folder, computes the per-image counts and collects the dataset figures; with
``out_dir`` it also writes the benchmark's text files there
(:func:`write_official_files`).

The counting and collecting are the pure array functions of
:mod:`napari_useg.metrics.bsds`; this module reads and writes the files around them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from napari_useg.core.atomic import atomic_write
from napari_useg.io.bsds import BSDSFormatError, read_bsds_gt, read_segs, read_ucm2
from napari_useg.io.images import read_image
from napari_useg.metrics.bsds import (
    BoundaryCounts,
    BoundarySummary,
    RegionCounts,
    RegionSummary,
    boundary_counts,
    collect_boundary,
    collect_region,
    official_files,
    region_counts,
)

__all__ = ["FolderResult", "evaluate_folder", "read_result", "write_official_files"]


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
        pb = read_image(png)
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
        write_official_files(out_dir, bsum, rsum, overwrite=overwrite)
    return FolderResult(ids, bsum, rsum, bcounts, rcounts)


def write_official_files(out_dir: str | os.PathLike, boundary: BoundarySummary | None = None,
                         region: RegionSummary | None = None, *,
                         overwrite: bool = False) -> list[Path]:
    """Write the benchmark's result files (``eval_bdry.txt``, ``eval_cover.txt``, ...).

    Same names, columns and ``%10g`` formatting as the official code
    (:func:`napari_useg.metrics.bsds.official_files`), so results can be compared with
    published ones line by line.

    Parameters
    ----------
    out_dir : path-like
        Existing folder.
    boundary, region : summaries, optional
        What to write.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of pathlib.Path
        The files written (each atomically).
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise NotADirectoryError(f"{out} is not a folder")
    written = []
    for name, text in official_files(boundary, region).items():
        with atomic_write(out / name, overwrite=overwrite) as tmp:
            tmp.write_text(text)
        written.append(out / name)
    return written
