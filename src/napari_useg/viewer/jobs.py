"""What the three napari jobs share: one progress type, one way to stop, run options.

A job (:class:`~napari_useg.viewer.segment_job.SegmentationJob`,
:class:`~napari_useg.viewer.model_jobs.TrainingJob`,
:class:`~napari_useg.viewer.model_jobs.PredictionJob`) is made and validated before any
compute; its ``iter()`` is a generator of :class:`JobProgress` whose **last** item has
``done=True`` and carries the result (labels, or a model) in ``result``. Iterating to the
end is running the job::

    for p in job.iter():
        print(p.describe())
    labels = p.result

**Stopping** is the same for every job: :meth:`Job.stop` (from any thread) sets a flag
that ``iter()`` checks between two steps; the job then ends with a last item marked
``stopped=True`` whose ``result`` is what is kept (the labels so far, the model of the
last checkpoint, or ``None``). Closing the generator instead abandons the run, keeping
nothing.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from napari_useg.core.align import align_to
from napari_useg.core.options import options_from_keywords as run_options
from napari_useg.core.progress import Progress

__all__ = ["JobProgress", "Job", "run_options", "align_to"]

@dataclass
class JobProgress:
    """One snapshot of a running job; the last one (``done``) carries the result.

    Attributes
    ----------
    fraction : float
        Overall fraction done, in ``[0, 1]``.
    slice_index : int
        0-based index of the 2-D slice being worked on (0 for training).
    n_slices : int
        Number of slices.
    index : tuple of int
        Position of the slice in the output's stack axes (empty for 2-D).
    snap : Progress or None
        The method's snapshot (segmentation and training; ``None`` for prediction).
    labels : numpy.ndarray or None
        Current labels of the slice at ``index`` (segmentation previews).
    tiles : tuple of int or None
        ``(tiles done, tiles)`` within the slice (prediction).
    done : bool
        True for the last item of the run.
    stopped : bool
        True when the run ended because :meth:`Job.stop` was called.
    result : object
        On the last item: the labels (``int32``, the output's shape) or the fitted model;
        what was kept after a stop (may be ``None``).
    """

    fraction: float
    slice_index: int = 0
    n_slices: int = 1
    index: tuple[int, ...] = ()
    snap: Progress | None = None
    labels: np.ndarray | None = None
    tiles: tuple[int, int] | None = None
    done: bool = False
    stopped: bool = False
    result: Any = None

    def describe(self) -> str:
        """One line for a status bar: slice, step or tile, loss, number of labels."""
        parts = []
        if self.n_slices > 1:
            parts.append(f"slice {self.slice_index + 1}/{self.n_slices}")
        if self.snap is not None:
            parts.append(f"step {self.snap.step}/{self.snap.total}")
            if self.snap.loss is not None:
                parts.append(f"loss {self.snap.loss:.4g}")
            if self.snap.n_labels is not None:
                parts.append(f"{self.snap.n_labels} labels")
        if self.tiles is not None and self.tiles[1] > 1:
            parts.append(f"tile {self.tiles[0]}/{self.tiles[1]}")
        return ", ".join(parts)

    def finished(self, result: Any, *, stopped: bool = False) -> JobProgress:
        """This snapshot as the last item of a run, carrying ``result``."""
        return dataclasses.replace(self, labels=None, done=True, stopped=stopped,
                                   result=result, fraction=self.fraction if stopped else 1.0)


@dataclass
class Job:
    """Base of the napari jobs: the stop flag :meth:`iter` checks between two steps."""

    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False,
                                   compare=False)

    def stop(self) -> None:
        """Ask the run to end after its current step (thread-safe); see the module doc."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def iter(self) -> Iterator[JobProgress]:
        """Run the job, yielding snapshots; the last one has ``done=True`` and the result."""
        raise NotImplementedError

    def run(self) -> Any:
        """:meth:`iter` to the end; the result."""
        (last,) = deque(self.iter(), maxlen=1)
        return last.result
