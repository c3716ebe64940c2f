"""The command line's progress bar over a stream of :class:`~napari_useg.core.progress.Progress`."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm

from napari_useg.core.progress import Progress

__all__ = ["follow"]


def follow(snaps: Iterable[Progress], desc: str, *, quiet: bool = False,
           unit: str = "step") -> Progress:
    """Drain ``snaps`` with a progress bar on stderr (none when ``quiet``); return the last one.

    The bar shows the step, the loss and the number of labels when the snapshots carry them.
    """
    bar = None if quiet else tqdm(desc=desc, unit=unit, file=sys.stderr, leave=True)
    snap = None
    try:
        for snap in snaps:
            if bar is None:
                continue
            bar.total = snap.total
            bar.n = snap.step
            post = {}
            if snap.loss is not None:
                post["loss"] = f"{snap.loss:.3f}"
            if snap.n_labels is not None:
                post["labels"] = snap.n_labels
            bar.set_postfix(post, refresh=False)
            bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    if snap is None:  # pragma: no cover - every iterator yields a final snapshot
        raise RuntimeError(f"{desc}: no progress reported")
    return snap
