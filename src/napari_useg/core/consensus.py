"""Consensus of several segmentations of one image, and a per-pixel agreement map.

Runs of a learned method with different seeds give different partitions. The consensus
here is relabel-and-vote (the "voting" combination of Dudoit and Fridlyand 2003): the
run that agrees best with the others (highest mean adjusted Rand index, the medoid) is
the reference; every run's segments are renamed to the reference segment of highest
intersection over union with them (a many-to-one renaming, so a run that splits a
reference segment still votes for it, and IoU rather than raw overlap, so a small
segment is not renamed to a large one that merely covers it); each pixel takes the
label most runs give it (ties go to the reference). Segments of the result smaller than
``min_size`` pixels are absorbed by their nearest neighbour.
Linking pixels that most runs group together (evidence accumulation) would be the other
classical choice, but linked through neighbours it chains across every boundary that
moves between runs (a 2-of-3 majority holds on each side of a moving boundary), so a
handful of runs collapses to a few segments.

The agreement map says, at every pixel, how much the runs agree with the consensus
there: the mean over runs of the intersection over union between the pixel's consensus
segment and the pixel's segment in that run. It is 1 where every run drew exactly the
consensus segment, and low on boundaries that move from seed to seed and on regions
that some runs split or merge: an uncertainty output a user can look at.

Everything is vectorised over pixels (``np.unique`` and ``np.bincount`` on label pairs);
the only loops are over the handful of runs.

Examples
--------
>>> import numpy as np
>>> a = np.zeros((6, 6), int); a[:, 3:] = 1
>>> b = a.copy(); b[:, 2] = 1                  # one run draws the boundary elsewhere
>>> labels, agreement = consensus([a, a, b], min_size=1)
>>> int(labels.max()), bool((labels[:, :3] == labels[0, 0]).all())
(2, True)
>>> agreement[0, [0, 2, 4]].round(2)           # lowest where the boundary moves
array([0.89, 0.72, 0.92], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from skimage.segmentation import expand_labels

from napari_useg.core.labels import sequential


def _check_maps(label_maps: Sequence[np.ndarray]) -> np.ndarray:
    """Stack the runs as ``(K, N)`` int64 after checking they agree in shape and kind."""
    if len(label_maps) < 1:
        raise ValueError("consensus needs at least one label map")
    maps = [np.asarray(m) for m in label_maps]
    shape = maps[0].shape
    for i, m in enumerate(maps):
        if m.shape != shape:
            raise ValueError(f"label map {i} has shape {m.shape}, map 0 has {shape}: "
                             "the runs must be of one image")
        if not np.issubdtype(m.dtype, np.integer):
            raise ValueError(f"label map {i} has dtype {m.dtype}: labels must be integers")
    if len(shape) not in (2, 3):
        raise ValueError(f"label maps must be 2-D or 3-D, got shape {shape}")
    return np.stack([m.reshape(-1) for m in maps]).astype(np.int64, copy=False)


def _dense(run: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels renumbered ``0..n-1`` and ``n``."""
    values, ids = np.unique(run, return_inverse=True)
    return ids.reshape(-1), len(values)


def _overlap(a: np.ndarray, na: int, b: np.ndarray, nb: int) -> np.ndarray:
    """``na x nb`` pixel counts of every label pair of two dense label vectors."""
    return np.bincount(a * nb + b, minlength=na * nb).reshape(na, nb)


def _best_match(ids: np.ndarray, n: int, ref_ids: np.ndarray, n_ref: int) -> np.ndarray:
    """For each label of a run, the reference label of highest intersection over union.

    IoU rather than the raw overlap: a small segment lying mostly inside a large one of the
    reference would otherwise be renamed to it whenever the large one covers more of it
    than the segment's own counterpart, and votes would drift towards large segments.
    """
    inter = _overlap(ids, n, ref_ids, n_ref).astype(np.float64)
    union = inter.sum(axis=1, keepdims=True) + inter.sum(axis=0, keepdims=True) - inter
    return (inter / union).argmax(axis=1)


def _medoid(dense: list[tuple[np.ndarray, int]]) -> int:
    """Index of the run with the highest summed adjusted Rand index to the others."""
    k = len(dense)
    if k <= 2:
        return 0
    n = dense[0][0].size
    pairs = n * (n - 1) / 2

    def comb(x: np.ndarray) -> float:
        return float((x.astype(np.float64) * (x - 1) / 2).sum())

    sizes = [comb(np.bincount(ids)) for ids, _ in dense]
    total = np.zeros(k)
    for i in range(k):  # a handful of runs
        for j in range(i + 1, k):
            both = comb(_overlap(*dense[i], *dense[j]))
            expected = sizes[i] * sizes[j] / pairs
            top = (sizes[i] + sizes[j]) / 2
            ari = 1.0 if top == expected else (both - expected) / (top - expected)
            total[i] += ari
            total[j] += ari
    return int(np.argmax(total))


def medoid(label_maps: Sequence[np.ndarray]) -> int:
    """Index of the run that agrees best with the others (highest summed adjusted Rand
    index; the first of one or two runs).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 4), int); a[:, 2:] = 1
    >>> b = a.copy(); b[0, 1] = 1
    >>> c = a.copy(); c[3, 2] = 0
    >>> medoid([b, a, c])     # a differs from each by one pixel, b and c by two
    1
    """
    return _medoid([_dense(run) for run in _check_maps(label_maps)])


def agreement_map(labels: np.ndarray, label_maps: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel agreement of the runs with a segmentation, in ``[0, 1]``.

    Parameters
    ----------
    labels : ndarray of int
        The segmentation the runs are compared with (the consensus).
    label_maps : sequence of ndarray of int
        The runs, each of ``labels``' shape.

    Returns
    -------
    ndarray of float32
        At each pixel the mean over runs of ``|S & R| / |S | R|``, with ``S`` the pixel's
        segment in ``labels`` and ``R`` its segment in the run.
    """
    runs = _check_maps(label_maps)
    ref = np.asarray(labels).reshape(-1).astype(np.int64)
    if ref.size != runs.shape[1]:
        raise ValueError(f"labels has {ref.size} pixels, the runs {runs.shape[1]}")
    _, ref_ids = np.unique(ref, return_inverse=True)
    ref_sizes = np.bincount(ref_ids)
    total = np.zeros(ref.size, np.float64)
    for run in runs:  # K runs (a handful), each fully vectorised
        _, run_ids = np.unique(run, return_inverse=True)
        run_sizes = np.bincount(run_ids)
        pair, pair_ids = np.unique(ref_ids * len(run_sizes) + run_ids, return_inverse=True)
        inter = np.bincount(pair_ids)[pair_ids]
        union = ref_sizes[ref_ids] + run_sizes[run_ids] - inter
        total += inter / union
    return (total / len(runs)).astype(np.float32).reshape(np.shape(labels))


def consensus(label_maps: Sequence[np.ndarray], *, min_size: int = 64,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Consensus segmentation of several runs and its per-pixel agreement.

    Parameters
    ----------
    label_maps : sequence of ndarray of int
        Segmentations of one image (2-D or 3-D, one shape), e.g. the same method run
        with different seeds. Label values need not correspond between runs.
    min_size : int
        Consensus segments smaller than this many pixels join their nearest neighbour.

    Returns
    -------
    labels : ndarray of int32
        Consensus segments ``1..n``: at each pixel the reference (medoid) run's segment
        that most runs vote for.
    agreement : ndarray of float32
        :func:`agreement_map` of ``labels`` with the runs.

    Examples
    --------
    >>> import numpy as np
    >>> runs = [np.eye(4, dtype=int)] * 3
    >>> labels, agreement = consensus(runs, min_size=1)
    >>> float(agreement.mean())
    1.0
    """
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    runs = _check_maps(label_maps)
    shape = np.shape(label_maps[0])
    dense = [_dense(run) for run in runs]
    ref = _medoid(dense)
    ref_ids, n_ref = dense[ref]
    order = [ref] + [i for i in range(len(dense)) if i != ref]  # the reference first
    # every run's segments renamed to the reference segment of highest IoU with them
    renamed = np.stack([_best_match(*dense[i], ref_ids, n_ref)[dense[i][0]] for i in order])
    counts = np.stack([(renamed == r).sum(axis=0) for r in renamed])  # runs agreeing with run r
    choice = counts.argmax(axis=0)  # first maximum: the reference wins ties
    labels = np.take_along_axis(renamed, choice[None], axis=0)[0].reshape(shape) + 1
    if min_size > 1 and labels.max() > 1:
        kept = np.where(np.bincount(labels.ravel())[labels] < min_size, 0, labels)
        if kept.any():
            labels = expand_labels(kept, distance=max(shape))
    labels = sequential(labels).astype(np.int32)
    return labels, agreement_map(labels, label_maps)
