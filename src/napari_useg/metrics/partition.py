"""Comparing two partitions: Rand index, adjusted Rand index, variation of information.

All three read the contingency table of the two label maps, so they compare
partitions (label ids do not matter). They also measure stability: the agreement
of two runs of a method with different seeds.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from napari_useg.metrics.contingency import contingency

__all__ = [
    "adjusted_rand_index",
    "ari_from_table",
    "rand_index",
    "ri_from_table",
    "variation_of_information",
    "voi_from_table",
]


def ri_from_table(table: np.ndarray) -> float:
    """Rand index of a contingency table (the BSDS benchmark's ``rand_index``).

    The fraction of pixel pairs on which the two partitions agree (both in one
    region, or both in different regions).
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()
    if n < 2:
        return 1.0
    rows = t.sum(axis=1)
    cols = t.sum(axis=0)
    disagree = (rows @ rows) / 2 + (cols @ cols) / 2 - (t * t).sum()
    return float(1.0 - disagree / (n * (n - 1) / 2))


def voi_from_table(table: np.ndarray, base: float = 2.0) -> float:
    """Variation of information ``H(A) + H(B) - 2 I(A; B)`` of a contingency table.

    In bits by default (``base=2``), as the BSDS benchmark reports it.
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()
    if n == 0:
        return 0.0
    joint = t[t > 0] / n
    pa = t.sum(axis=1) / n
    pb = t.sum(axis=0) / n
    pa = pa[pa > 0]
    pb = pb[pb > 0]
    # VOI = 2 H(A, B) - H(A) - H(B)
    h_ab = -(joint * np.log(joint)).sum()
    h_a = -(pa * np.log(pa)).sum()
    h_b = -(pb * np.log(pb)).sum()
    return float(max(2 * h_ab - h_a - h_b, 0.0) / np.log(base))


def ari_from_table(table: np.ndarray) -> float:
    """Adjusted Rand index (Hubert and Arabie 1985) of a contingency table.

    1 for identical partitions, about 0 for independent ones (can be negative).
    When both partitions are trivial (one region each, or all singletons) the
    index is undefined and 1.0 is returned, as scikit-learn does.
    """
    t = np.asarray(table, dtype=np.float64)
    n = t.sum()

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1)).sum() / 2)

    index = pairs(t)
    a = pairs(t.sum(axis=1))
    b = pairs(t.sum(axis=0))
    total = n * (n - 1) / 2
    if total == 0:
        return 1.0
    expected = a * b / total
    maximum = (a + b) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))


def rand_index(a: np.ndarray, b: np.ndarray,
               ignore: int | Iterable[int] | None = None) -> float:
    """Rand index between two label maps.

    Parameters
    ----------
    a, b : numpy.ndarray
        Integer label maps of the same shape (``b`` is the reference when ``ignore`` is given).
    ignore : int or iterable of int, optional
        Values of ``b`` whose pixels are left out.

    Returns
    -------
    float
        In [0, 1]; 1 for the same partition.

    Examples
    --------
    >>> rand_index(np.array([1, 1, 2, 2]), np.array([5, 5, 5, 6]))
    0.5
    """
    return ri_from_table(contingency(a, b, ignore)[0])


def adjusted_rand_index(a: np.ndarray, b: np.ndarray,
                        ignore: int | Iterable[int] | None = None) -> float:
    """Adjusted Rand index between two label maps (chance-corrected Rand index).

    Parameters
    ----------
    a, b : numpy.ndarray
        Integer label maps of the same shape; symmetric in ``a`` and ``b``.
    ignore : int or iterable of int, optional
        Values of ``b`` whose pixels are left out.

    Returns
    -------
    float
        1 for the same partition, about 0 for unrelated ones.

    Examples
    --------
    >>> adjusted_rand_index(np.array([1, 1, 2, 2]), np.array([7, 7, 3, 3]))
    1.0
    """
    return ari_from_table(contingency(a, b, ignore)[0])


def variation_of_information(a: np.ndarray, b: np.ndarray,
                             ignore: int | Iterable[int] | None = None,
                             base: float = 2.0) -> float:
    """Variation of information ``H(a | b) + H(b | a)`` between two label maps (Meila 2003).

    Parameters
    ----------
    a, b : numpy.ndarray
        Integer label maps of the same shape; symmetric in ``a`` and ``b``.
    ignore : int or iterable of int, optional
        Values of ``b`` whose pixels are left out.
    base : float
        Logarithm base: 2 gives bits (the BSDS benchmark's unit), ``e`` nats.

    Returns
    -------
    float
        0 for the same partition; larger is worse.

    Examples
    --------
    >>> variation_of_information(np.array([1, 1, 2, 2]), np.array([1, 1, 1, 1]))
    1.0
    """
    return voi_from_table(contingency(a, b, ignore)[0], base=base)
