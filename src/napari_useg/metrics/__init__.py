"""Scoring label maps against annotations (Qt-free; numpy, scipy and scikit-image).

* matched accuracy: :func:`hungarian_match` / :func:`hungarian_accuracy` (one-to-one),
  :func:`many_to_one_accuracy` and :func:`many_to_one_mapping` (over-clustering);
* pooled over a set (one mapping for every image, the protocol of dataset-level
  methods): :func:`pooled_hungarian_accuracy`, :func:`pooled_many_to_one_accuracy`
  (mapping optionally estimated on some images and applied to the others);
* partitions: :func:`adjusted_rand_index`, :func:`variation_of_information`,
  :func:`rand_index`;
* segments (Kanezaki 2018): :func:`segment_matches`, :func:`segment_pr`;
* everything at once: :func:`score_all`;
* the BSDS500 benchmark (covering, PRI, VOI, boundary P/R/F, ODS/OIS/AP):
  :mod:`napari_useg.metrics.bsds`;
* the dataset protocol (mean over annotators, then images; ODS/OIS over settings):
  :func:`bsds_accuracy`, :func:`annotator_mean`, :func:`ods_ois`.
"""

from napari_useg.metrics.accuracy import MatchResult, hungarian_accuracy, hungarian_match
from napari_useg.metrics.contingency import contingency
from napari_useg.metrics.many_to_one import (
    many_to_one_accuracy,
    many_to_one_mapping,
    many_to_one_match,
)
from napari_useg.metrics.partition import adjusted_rand_index, rand_index, variation_of_information
from napari_useg.metrics.pooled import (
    pooled_contingency,
    pooled_hungarian_accuracy,
    pooled_hungarian_match,
    pooled_many_to_one_accuracy,
    pooled_many_to_one_match,
)
from napari_useg.metrics.protocol import ODSOIS, annotator_mean, bsds_accuracy, ods_ois
from napari_useg.metrics.score import SCORE_KEYS, score_all
from napari_useg.metrics.segments import PRCurve, SegmentMatches, segment_matches, segment_pr

__all__ = [
    "MatchResult",
    "ODSOIS",
    "PRCurve",
    "SCORE_KEYS",
    "SegmentMatches",
    "adjusted_rand_index",
    "annotator_mean",
    "bsds_accuracy",
    "contingency",
    "hungarian_accuracy",
    "hungarian_match",
    "many_to_one_accuracy",
    "many_to_one_mapping",
    "many_to_one_match",
    "ods_ois",
    "pooled_contingency",
    "pooled_hungarian_accuracy",
    "pooled_hungarian_match",
    "pooled_many_to_one_accuracy",
    "pooled_many_to_one_match",
    "rand_index",
    "score_all",
    "segment_matches",
    "segment_pr",
    "variation_of_information",
]
