"""Choosing one of several runs: a run whose objects stand out from their background.

Runs of a learned method with different seeds can differ a lot on images of objects on
a background (nuclei in dense tissue): one run draws the nuclei, another makes the
tissue between them foreground. :func:`choose_by_contrast` picks one, without
annotations, in two steps:

1. **contrast**: every run is scored by how much of the image's intensity variance its
   split into foreground and background explains (:func:`foreground_contrast`); runs
   scoring at least :data:`CONTRAST_SHARE` of the best are the candidates (a run that
   got the foreground wrong scores far lower);
2. **agreement**: among three or more candidates, the one agreeing best with the other
   candidates (:func:`napari_useg.core.consensus.medoid`), as runs that score alike can
   still differ in how they split or merge touching objects; of one or two, the higher
   score.

The score is Otsu's criterion, the between-class variance

.. math:: \\sigma_B^2 = w_f \\, w_b \\, \\lVert \\mu_f - \\mu_b \\rVert^2

of the foreground (weight ``w_f``, mean ``mu_f``) and the background (``w_b``, ``mu_b``),
summed over channels. The foreground is the one the ``instances`` output uses: every
label but the one owning the largest connected region
(:func:`napari_useg.core.instances.background_class`). The total variance is the same
for every run of one image, so the run with the largest ``sigma_B^2`` is also the one
with the largest share of the variance explained (Otsu's ``eta``).

The criterion suits images of objects on a background (fluorescent nuclei, cells,
particles); it says nothing useful about a photograph without one such background.

Examples
--------
>>> import numpy as np
>>> img = np.zeros((20, 20, 1), np.float32); img[5:15, 5:15] = 1.0
>>> good = np.ones((20, 20), int); good[5:15, 5:15] = 2      # the square
>>> off = np.ones((20, 20), int); off[5:15, 5:10] = 2        # half of it
>>> index, scores = choose_by_contrast([off, good], img)
>>> index, np.round(scores, 3).tolist()
(1, [0.08, 0.188])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from napari_useg.core.consensus import medoid
from napari_useg.core.hierarchy import region_statistics
from napari_useg.core.instances import foreground_mask

__all__ = ["CONTRAST_SHARE", "foreground_contrast", "candidates", "choose_run",
           "choose_by_contrast"]

#: Runs scoring at least this share of the best contrast are the candidates. Chosen on the
#: annotated nuclei volumes (docs/consensus.md): 0.9 and 0.95 kept the same runs on the
#: dense tissue and the better ones on the sparse embryo; 0.8 let in worse runs.
CONTRAST_SHARE = 0.9


def foreground_contrast(labels: np.ndarray, image: Any) -> float:
    """Between-class variance of ``image`` split into the foreground of ``labels`` and the rest.

    Parameters
    ----------
    labels : numpy.ndarray
        Label map (2-D or 3-D) of one run.
    image : array_like
        Features of the shape of ``labels`` plus a last channel axis (a prepared image's
        ``data``; a lazy volume is read one slab at a time).

    Returns
    -------
    float
        ``w_f * w_b * |mu_f - mu_b|^2`` (0 when the run has no foreground).
    """
    fg = foreground_mask(labels).astype(np.int8)
    if np.shape(image)[:-1] != fg.shape:
        raise ValueError(f"labels of shape {fg.shape} do not match an image of spatial shape "
                         f"{np.shape(image)[:-1]}")
    counts, means = region_statistics(fg, image)
    if counts.size < 2 or counts[1] == 0 or counts[0] == 0:
        return 0.0
    w = counts / counts.sum()
    return float(w[0] * w[1] * np.sum((means[1] - means[0]) ** 2))


def candidates(scores: Sequence[float], share: float = CONTRAST_SHARE) -> np.ndarray:
    """Indices of the runs scoring at least ``share`` times the best contrast.

    Examples
    --------
    >>> candidates([0.0029, 0.0008, 0.0027]).tolist()
    [0, 2]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        raise ValueError("no scores: at least one run is needed")
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share}")
    return np.flatnonzero(scores >= share * scores.max())


def choose_run(label_maps: Sequence[np.ndarray], scores: Sequence[float],
               share: float = CONTRAST_SHARE) -> int:
    """Index of the run kept, given every run's :func:`foreground_contrast`.

    Parameters
    ----------
    label_maps : sequence of numpy.ndarray
        The runs' label maps, all of one shape.
    scores : sequence of float
        Their contrasts.
    share : float
        Candidates score at least ``share`` times the best.

    Returns
    -------
    int
        Among the candidates, the medoid of three or more, else the higher score (the
        first of equal ones).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size != len(label_maps):
        raise ValueError(f"choose_run needs one score per run, got {len(label_maps)} runs and "
                         f"{scores.size} scores")
    kept = candidates(scores, share)
    if kept.size <= 2:
        return int(kept[np.argmax(scores[kept])])
    return int(kept[medoid([label_maps[i] for i in kept])])


def choose_by_contrast(label_maps: Sequence[np.ndarray], image: Any,
                       share: float = CONTRAST_SHARE) -> tuple[int, np.ndarray]:
    """The run kept by ``combine="contrast"`` (see the module docstring).

    Parameters
    ----------
    label_maps : sequence of numpy.ndarray
        The runs' label maps, all of one shape.
    image : array_like
        The image they segment, with a last channel axis.
    share : float
        See :func:`choose_run`.

    Returns
    -------
    index : int
        The chosen run.
    scores : numpy.ndarray
        :func:`foreground_contrast` of every run.
    """
    if len(label_maps) == 0:
        raise ValueError("choose_by_contrast needs at least one label map")
    scores = np.array([foreground_contrast(lab, image) for lab in label_maps])
    return choose_run(label_maps, scores, share), scores
