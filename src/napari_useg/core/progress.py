"""Progress snapshots yielded by every method's iterator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Progress"]


@dataclass
class Progress:
    """One snapshot of a running method.

    Attributes
    ----------
    step : int
        Steps done so far (1-based once the first step finished).
    total : int
        Maximum number of steps (the run may stop earlier: see ``done``).
    loss : float or None
        Training loss of the last step (``None`` for methods without a loss).
    n_labels : int or None
        Number of distinct labels in the current label map.
    labels : numpy.ndarray or None
        Current label map at full resolution (labels ``1..n``), present every
        ``preview_every`` steps and always in the final snapshot.
    done : bool
        True for the final snapshot; its ``labels`` is the result.
    message : str
        Human-readable status (also why the run stopped, in the final snapshot).
    elapsed : float
        Seconds since the run started.
    info : dict
        Method-specific extras (e.g. the fitted model of a dataset-level method).
    """

    step: int
    total: int
    loss: float | None = None
    n_labels: int | None = None
    labels: np.ndarray | None = None
    done: bool = False
    message: str = ""
    elapsed: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"step {self.step}/{self.total}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if self.n_labels is not None:
            parts.append(f"{self.n_labels} labels")
        if self.message:
            parts.append(self.message)
        return ", ".join(parts)
