"""Which images of a dataset an evaluation scored, and why the others were not.

An evaluation never reports figures over fewer images than the dataset holds without
saying so: an image without an annotation (:attr:`~napari_useg.io.datasets.Dataset.unmatched`)
and an image whose annotation leaves nothing to score (every pixel an ``ignore``
value: :class:`UnscorableImage`) are each a :class:`Skipped` entry, listed and counted
in ``summary.md``, ``summary.json`` and on the command line's stderr.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.io.datasets import Dataset, Sample

__all__ = ["Skipped", "UnscorableImage", "check_scorable", "unmatched_images",
           "skipped_lines"]


class UnscorableImage(ValueError):
    """An image whose ground truth leaves no pixel to score (it is skipped and counted).

    Parameters
    ----------
    image_id : str
        The image.
    reason : str
        Why nothing can be scored.
    """

    def __init__(self, image_id: str, reason: str):
        super().__init__(image_id, reason)
        self.image_id = image_id
        self.reason = reason

    def __str__(self) -> str:
        return f"image {self.image_id}: {self.reason}"


@dataclass(frozen=True)
class Skipped:
    """An image of the dataset left out of the figures.

    Attributes
    ----------
    id : str
        Image id (file stem).
    reason : str
        ``"no annotation"`` or why nothing could be scored.
    """

    id: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (in ``summary.json``)."""
        return asdict(self)


def check_scorable(image_id: str, mask: np.ndarray | None,
                   ignore: Sequence[int] | None) -> None:
    """Refuse an image whose scored-pixel ``mask`` is empty.

    Raises
    ------
    UnscorableImage
        If ``mask`` (the pixels left after ``ignore``, over every annotator) holds none.
    """
    if mask is not None and not mask.any():
        raise UnscorableImage(image_id, f"nothing to score: every ground-truth pixel is an "
                                        f"ignore value {list(ignore or ())}")


def unmatched_images(ds: Dataset, samples: Sequence[Sample]) -> list[Skipped]:
    """The dataset's images without an annotation, within the range of ``samples``.

    With a ``limit`` (``samples`` the first images by id) only the unannotated images
    sorting before the last one evaluated are counted.
    """
    if not samples:
        return []
    last = samples[-1].id if len(samples) < len(ds.samples) else None
    stems = sorted(Path(p).stem for p in ds.unmatched)
    return [Skipped(s, "no annotation") for s in stems if last is None or s < last]


def skipped_lines(skipped: Sequence[dict[str, Any]], n_total: int) -> list[str]:
    """Lines naming the skipped images (for ``summary.md`` and stderr); empty when none."""
    if not skipped:
        return []
    lines = [f"{len(skipped)} of {n_total} image(s) not scored (left out of every figure):"]
    lines += [f"- {s['id']}: {s['reason']}" for s in skipped]
    return lines
