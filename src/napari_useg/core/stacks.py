"""Stacks segmented slice by slice (or volume by volume), label ids aligned along the stack.

A stack is every axis before the spatial ones: ``(Z, Y, X)`` or ``(T, Y, X)`` slices, or
``(T, Z, Y, X)`` volumes. Each slice is segmented alone, exactly as segmenting it on its
own with the same seed would, and its label ids are then renamed to agree with the
previous slice's (:func:`napari_useg.core.align.align_to`: Hungarian matching on the
overlap; a cluster with no partner gets a new id; the background 0 of an objects map
stays 0). This module holds the loop; :func:`napari_useg.segment_stack` and the napari
segmentation job run it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from napari_useg.core.align import align_to
from napari_useg.core.progress import Progress

__all__ = ["StackStep", "iter_stack", "keep_agreement"]


@dataclass
class StackStep:
    """One method snapshot of one slice of a stack.

    Attributes
    ----------
    slice_index : int
        0-based position of the slice in the order segmented.
    n_slices : int
        Number of slices.
    index : tuple of int
        Position of the slice in the stack axes.
    snap : Progress
        The method's snapshot of that slice.
    labels : numpy.ndarray or None
        The snapshot's labels with ids aligned (``int32``), when it carries labels.
    """

    slice_index: int
    n_slices: int
    index: tuple[int, ...]
    snap: Progress
    labels: np.ndarray | None

    @property
    def fraction(self) -> float:
        """Fraction of the whole stack done, in ``[0, 1]``."""
        total = max(int(self.snap.total), 1)
        step = total if self.snap.done else min(int(self.snap.step), total)
        return (self.slice_index + step / total) / self.n_slices


def iter_stack(indices: Iterable[tuple[int, ...]],
               segment_slice: Callable[[tuple[int, ...]], Iterator[Progress]],
               out: np.ndarray, reference: np.ndarray | None = None) -> Iterator[StackStep]:
    """Segment the slices at ``indices`` in turn, writing aligned labels into ``out``.

    Parameters
    ----------
    indices : iterable of tuple of int
        Positions of the slices in the stack axes of ``out`` (``()`` for one image).
    segment_slice : callable
        ``segment_slice(index)`` returns the method's iterator of snapshots for that slice.
    out : numpy.ndarray
        Integer array of the whole stack's shape; ``out[index]`` receives each snapshot's
        aligned labels (previews included), so after the last slice it holds the result.
    reference : numpy.ndarray, optional
        Labels to align the first slice to (a previous result of the same shape as
        ``out``: keeps colours when a result is overwritten).

    Yields
    ------
    StackStep
        Every snapshot of every slice, in order. Closing the iterator closes the slice's
        own iterator (the method stops).
    """
    indices = list(indices)
    prev: np.ndarray | None = None
    for i, index in enumerate(indices):
        ref = prev
        if ref is None and reference is not None:
            ref = reference[index] if index else reference
        snaps = segment_slice(index)
        try:
            for snap in snaps:
                labels = align_to(ref, snap.labels) if snap.labels is not None else None
                if labels is not None:
                    out[index] = labels
                    if snap.done:
                        prev = labels
                yield StackStep(i, len(indices), index, snap, labels)
        finally:
            snaps.close()


def keep_agreement(agreement: np.ndarray | None, step: StackStep,
                   shape: tuple[int, ...]) -> np.ndarray | None:
    """The stack's agreement map with ``step``'s slice added, when it has one.

    A slice's final snapshot carries ``info["agreement"]`` when it was made of several
    runs (``runs > 1``); the stack's map (``float32``, ``shape``, 1 where nothing was
    compared) is created at the first one.
    """
    slice_map = step.snap.info.get("agreement") if step.snap.done else None
    if slice_map is None:
        return agreement
    if agreement is None:
        agreement = np.ones(shape, np.float32)
    agreement[step.index] = slice_map
    return agreement
