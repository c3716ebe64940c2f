"""napari reader and writer contributions for BSDS500 ground-truth ``.mat`` files (Qt-free).

* reader ``napari-useg.read_bsds``: one Labels layer per annotator, named
  ``"<id> annotator k"`` (k from 1). Asked to open the file *as a stack* (napari's
  "Open Files as Stack...", or ``viewer.open(path, stack=True)``) it gives instead one
  Labels layer ``"<id> annotators"`` with the annotator as the first axis, plus a
  Labels layer ``"<id> boundaries"`` of the stored boundary maps. It returns ``None``
  for any ``.mat`` file that is not BSDS ground truth, so other plugins can open it.
* writer ``napari-useg.write_bsds``: Labels layers (2-D: one annotator each; 3-D:
  annotator first) to a BSDS ``.mat`` (boundaries derived as the benchmark does).

From Python, :func:`bsds_layer_data` gives the layer data with every option::

    viewer.open("groundTruth/val/3096.mat", plugin="napari-useg")
    viewer.open(["groundTruth/val/3096.mat"], stack=True, plugin="napari-useg")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.labels import sequential
from napari_useg.io.bsds import is_bsds_gt, read_bsds_gt, write_bsds_gt

__all__ = ["bsds_layer_data", "get_bsds_reader", "write_bsds"]

LayerData = tuple[Any, dict[str, Any], str]


def bsds_layer_data(path: str | os.PathLike, *, stacked: bool = False,
                    boundaries: bool = False) -> list[LayerData]:
    """napari layer data of a BSDS ground-truth file.

    Parameters
    ----------
    path : path-like
        BSDS ``.mat`` file.
    stacked : bool
        One Labels layer with the annotator as the first axis, instead of one per annotator.
    boundaries : bool
        Also return the stored boundary maps (one layer per annotator, or one stacked
        layer when ``stacked``).

    Returns
    -------
    list of (data, metadata, layer_type)
        Labels layer data; label maps are ``uint16`` (labels from 1), boundaries ``uint8`` 0/1.

    Raises
    ------
    BSDSFormatError
        If the file is not BSDS ground truth.
    """
    gt = read_bsds_gt(path)
    stem = gt.image_id
    meta = {"source": str(gt.path), "format": "BSDS500 groundTruth"}
    out: list[LayerData] = []
    if stacked:
        out.append((np.stack(gt.segmentations), {
            "name": f"{stem} annotators",
            "metadata": {"napari_useg_bsds": {**meta, "n_annotators": gt.n_annotators}},
        }, "labels"))
        if boundaries:
            out.append((np.stack(gt.boundaries).astype(np.uint8), {
                "name": f"{stem} boundaries", "opacity": 1.0,
                "metadata": {"napari_useg_bsds": {**meta, "n_annotators": gt.n_annotators}},
            }, "labels"))
        return out
    for k, seg in enumerate(gt.segmentations, start=1):
        out.append((seg, {"name": f"{stem} annotator {k}",
                          "metadata": {"napari_useg_bsds": {**meta, "annotator": k}}}, "labels"))
    if boundaries:
        for k, b in enumerate(gt.boundaries, start=1):
            out.append((b.astype(np.uint8), {
                "name": f"{stem} annotator {k} boundaries", "opacity": 1.0,
                "metadata": {"napari_useg_bsds": {**meta, "annotator": k}},
            }, "labels"))
    return out


def _mat_paths(path: str | Sequence[str]) -> list[str] | None:
    paths = [str(p) for p in path] if isinstance(path, (list, tuple)) else [str(path)]
    if not paths or not all(p.lower().endswith(".mat") for p in paths):
        return None
    if not all(is_bsds_gt(p) for p in paths):
        return None
    return paths


def get_bsds_reader(path: str | Sequence[str]) -> Callable[..., list[LayerData]] | None:
    """npe2 reader of BSDS ground truth; ``None`` for anything else.

    A single path (napari's default) gives one Labels layer per annotator; a list of
    paths (napari's "open as stack") gives, for each file, the annotators stacked in one
    layer plus the boundary maps.
    """
    paths = _mat_paths(path)
    if paths is None:
        return None
    stacked = isinstance(path, (list, tuple))

    def reader(_path: Any) -> list[LayerData]:
        if not stacked:
            return bsds_layer_data(paths[0])
        out: list[LayerData] = []
        for p in paths:
            out.extend(bsds_layer_data(p, stacked=True, boundaries=True))
        return out

    return reader


def write_bsds(path: str, layer_data: list[LayerData]) -> list[str]:
    """npe2 writer: Labels layers to a BSDS ground-truth ``.mat`` file.

    Each 2-D layer is one annotator, a 3-D layer is several (annotator first axis), in
    layer order. Label maps holding 0 (napari's background) or labels above 65535 are
    renumbered 1..n (BSDS labels start at 1); others are stored as they are. The
    file is written atomically; napari's save dialog has already asked before
    replacing an existing file.

    Returns
    -------
    list of str
        The path written.
    """
    maps: list[np.ndarray] = []
    for data, meta, layer_type in layer_data:
        if layer_type != "labels":
            raise TypeError(f"only Labels layers can be saved as BSDS ground truth, got "
                            f"a {layer_type} layer ({meta.get('name', '?')!r})")
        arr = np.asarray(data)
        if arr.ndim == 2:
            maps.append(arr)
        elif arr.ndim == 3:
            maps.extend(list(arr))
        else:
            raise ValueError(f"layer {meta.get('name', '?')!r} has {arr.ndim} dimensions; "
                             f"BSDS ground truth needs 2-D maps (or a 3-D annotator stack)")
    if not maps:
        raise ValueError("no layers to write")
    relabel = any(m.size and (int(m.min()) < 1 or int(m.max()) > 65535) for m in maps)
    if relabel:
        maps = [sequential(m) if m.size and (int(m.min()) < 1 or int(m.max()) > 65535) else m
                for m in maps]
    out = write_bsds_gt(path, maps, overwrite=True)
    return [str(Path(out))]
