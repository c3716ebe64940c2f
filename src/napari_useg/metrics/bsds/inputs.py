"""The benchmark's three input formats and their thresholds.

* ``segs``: a list of label maps, one per "threshold" (thresholds are ``1..N``);
* ``ucm2``: an ultrametric contour map at twice the resolution plus one
  (``(2H+1, 2W+1)``, boundaries on the odd lattice); threshold ``t`` gives the regions
  of ``ucm2 <= t`` (8-connected, as MATLAB's ``bwlabel``) read at ``[1::2, 1::2]``, and
  the boundary map ``ucm2[2::2, 2::2] >= t``;
* ``pb``: a soft boundary map in [0, 1] (an 8-bit PNG divided by 255); threshold
  ``t`` gives ``pb >= t``.

For ``ucm2`` and ``pb`` the thresholds are ``nthresh`` values evenly spaced in
``(0, 1)``, computed as MATLAB's ``linspace(1/(n+1), 1-1/(n+1), n)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "check_segs",
    "linspace_thresholds",
    "pb_boundaries",
    "ucm2_boundaries",
    "ucm2_regions",
    "ucm2_to_segs",
]


def linspace_thresholds(nthresh: int) -> np.ndarray:
    """``nthresh`` thresholds evenly spaced in (0, 1), bit-for-bit as the benchmark's.

    Examples
    --------
    >>> linspace_thresholds(5).round(6).tolist()
    [0.166667, 0.333333, 0.5, 0.666667, 0.833333]
    """
    n = int(nthresh)
    if n < 1:
        raise ValueError(f"nthresh must be >= 1, got {nthresh}")
    d1 = 1.0 / (n + 1)
    d2 = 1.0 - 1.0 / (n + 1)
    if n == 1:
        return np.array([d2])
    t = d1 + np.arange(n) * (d2 - d1) / (n - 1)
    t[-1] = d2
    return t


def check_segs(segs: Sequence[np.ndarray] | np.ndarray,
               shape: tuple[int, ...] | None = None) -> list[np.ndarray]:
    """Validate a ``segs`` input: a label map or a list of 2-D integer label maps."""
    if isinstance(segs, np.ndarray) and segs.ndim == 2:
        segs = [segs]
    elif isinstance(segs, np.ndarray) and segs.ndim == 3 and segs.dtype != object:
        segs = list(segs)
    out = [np.asarray(s) for s in segs]
    if not out:
        raise ValueError("segs is empty: give at least one label map")
    for k, s in enumerate(out):
        if s.ndim != 2:
            raise ValueError(f"segs[{k}] must be a 2-D label map, got shape {s.shape}")
        if not (np.issubdtype(s.dtype, np.integer) or s.dtype == bool):
            raise ValueError(f"segs[{k}] must hold integer labels, got dtype {s.dtype}")
        if shape is not None and s.shape != tuple(shape):
            raise ValueError(f"segs[{k}] has shape {s.shape}, ground truth has {tuple(shape)}")
    return out


def _check_ucm2(ucm2: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    u = np.asarray(ucm2, dtype=np.float64)
    if not np.isfinite(u).all():
        raise ValueError("ucm2 holds NaN or infinite values")
    if u.ndim != 2 or u.shape[0] % 2 != 1 or u.shape[1] % 2 != 1 or min(u.shape) < 3:
        raise ValueError(f"ucm2 must be a 2-D map of odd shape (2H+1, 2W+1), got {u.shape}")
    if shape is not None and (u.shape[0] // 2, u.shape[1] // 2) != tuple(shape):
        raise ValueError(f"ucm2 of shape {u.shape} is for images of "
                         f"{(u.shape[0] // 2, u.shape[1] // 2)}, ground truth has {tuple(shape)}")
    return u


def ucm2_regions(ucm2: np.ndarray, threshold: float) -> np.ndarray:
    """Label map of ``ucm2`` at ``threshold``: ``bwlabel(ucm2 <= t, 8)`` at ``[1::2, 1::2]``."""
    u = _check_ucm2(ucm2, None)
    lab, _ = ndi.label(u <= threshold, structure=np.ones((3, 3), bool))
    return lab[1::2, 1::2]


def ucm2_to_segs(ucm2: np.ndarray, thresholds: Sequence[float]) -> list[np.ndarray]:
    """The ``segs`` of a ``ucm2`` at several thresholds."""
    return [ucm2_regions(ucm2, t) for t in thresholds]


def ucm2_boundaries(ucm2: np.ndarray, thresholds: Sequence[float],
                    shape: tuple[int, ...] | None = None) -> Iterator[np.ndarray]:
    """Boundary maps of a ``ucm2``: ``ucm2[2::2, 2::2] >= t`` for each threshold."""
    pb = _check_ucm2(ucm2, shape)[2::2, 2::2]
    for t in thresholds:
        yield pb >= t


def pb_boundaries(pb: np.ndarray, thresholds: Sequence[float],
                  shape: tuple[int, ...] | None = None) -> Iterator[np.ndarray]:
    """Boundary maps of a soft boundary map: ``pb >= t`` for each threshold.

    ``uint8`` maps are divided by 255 (as the benchmark reads PNGs); float maps must be
    in [0, 1].
    """
    p = np.asarray(pb)
    if p.ndim != 2:
        raise ValueError(f"a soft boundary map must be 2-D, got shape {p.shape}")
    if shape is not None and p.shape != tuple(shape):
        raise ValueError(f"boundary map has shape {p.shape}, ground truth has {tuple(shape)}")
    if p.dtype == np.uint8:
        p = p.astype(np.float64) / 255
    elif np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
        if not np.isfinite(p).all():
            raise ValueError("the boundary map holds NaN or infinite values")
        if p.size and (p.min() < 0 or p.max() > 1):
            raise ValueError("a float boundary map must be in [0, 1]")
    else:
        raise ValueError(f"a soft boundary map must be uint8 or float in [0, 1], got {p.dtype}")
    for t in thresholds:
        yield p >= t
