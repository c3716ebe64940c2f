"""The BSDS500 benchmark (Arbelaez et al., TPAMI 2011), reimplemented with numpy and scipy.

Region benchmark (segmentation covering, probabilistic Rand index, variation of
information) and boundary benchmark (precision, recall, F with human and machine
boundary pixels matched one-to-one within 0.0075 of the image diagonal), with ODS,
OIS and average precision, for the benchmark's three inputs: a list of label maps
(``segs``), an ultrametric contour map (``ucm2``) or a soft boundary map (``pb``).
It reproduces the official numbers of the benchmark's own test cases (see
``tests/test_metrics_bsds.py`` and ``docs/evaluation.md``).

These are pure array functions: reading a folder of results and ground-truth files
and writing the benchmark's text files is
:func:`napari_useg.evaluation.evaluate_folder`'s job.
"""

from napari_useg.metrics.bsds.boundaries import (
    correspond_pixels,
    max_dist_pixels,
    seg2bdry,
    thin_boundaries,
)
from napari_useg.metrics.bsds.collect import (
    BoundarySummary,
    RegionSummary,
    collect_boundary,
    collect_region,
    fmeasure,
    official_files,
)
from napari_useg.metrics.bsds.image import (
    BoundaryCounts,
    RegionCounts,
    boundary_counts,
    boundary_counts_maps,
    gt_boundaries_from_segs,
    region_counts,
    region_counts_segs,
)
from napari_useg.metrics.bsds.inputs import linspace_thresholds, ucm2_regions, ucm2_to_segs

__all__ = [
    "BoundaryCounts",
    "BoundarySummary",
    "RegionCounts",
    "RegionSummary",
    "boundary_counts",
    "boundary_counts_maps",
    "collect_boundary",
    "collect_region",
    "correspond_pixels",
    "fmeasure",
    "gt_boundaries_from_segs",
    "linspace_thresholds",
    "max_dist_pixels",
    "official_files",
    "region_counts",
    "region_counts_segs",
    "seg2bdry",
    "thin_boundaries",
    "ucm2_regions",
    "ucm2_to_segs",
]
