"""Folder layouts of annotated image sets: BSDS500, and images/ + masks/.

* BSDS500: ``images/<split>/<id>.jpg`` and ``groundTruth/<split>/<id>.mat`` (several
  annotators per image). Folders without a split level (``images/<id>.jpg`` and
  ``groundTruth/<id>.mat``, like the benchmark's own ``bench/`` folder) work too.
* images/ + masks/: ``images/<name>.<ext>`` with one label mask per image, matched by
  file stem, in ``masks/`` (or ``masks_semantic/``, or a folder you name). A split
  level (``images/<split>/``, ``masks/<split>/``) is used when present.

:func:`load_dataset` detects the layout. A :class:`Dataset` lists its samples and
reads images, annotations (always a list, one map per annotator) and boundary maps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_useg.io.bsds import read_bsds_gt
from napari_useg.io.collections import folder_images
from napari_useg.io.images import read_image
from napari_useg.metrics.bsds import gt_boundaries_from_segs

__all__ = [
    "Dataset",
    "Sample",
    "detect_layout",
    "load_bsds500",
    "load_dataset",
    "load_masks_dataset",
    "read_mask",
]

MASK_DIRS = ("masks", "masks_semantic")


@dataclass(frozen=True)
class Sample:
    """One annotated image.

    Attributes
    ----------
    id : str
        File stem.
    image : pathlib.Path
        The image file.
    annotation : pathlib.Path
        Ground truth: a BSDS ``.mat`` or a mask image.
    """

    id: str
    image: Path
    annotation: Path


@dataclass(frozen=True)
class Dataset:
    """An annotated image set.

    Attributes
    ----------
    root : pathlib.Path
        The folder given.
    kind : {"bsds", "masks"}
        Layout.
    split : str or None
        The split used (``None`` without a split level).
    samples : list of Sample
        In sorted order of id.
    ignore : tuple of int or None
        Ground-truth values not scored.
    unmatched : list of pathlib.Path
        Images without an annotation (left out of ``samples``).
    """

    root: Path
    kind: str
    split: str | None
    samples: list[Sample]
    ignore: tuple[int, ...] | None = None
    unmatched: list[Path] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def sample(self, image_id: str) -> Sample:
        """The sample with this id."""
        for s in self.samples:
            if s.id == image_id:
                return s
        raise KeyError(f"no image {image_id!r} in {self.root}")

    def read_image(self, sample: Sample) -> np.ndarray:
        """The image array."""
        return read_image(sample.image)

    def read_annotations(self, sample: Sample) -> list[np.ndarray]:
        """Every annotator's label map (one for a mask layout)."""
        if self.kind == "bsds":
            return read_bsds_gt(sample.annotation).segmentations
        return [read_mask(sample.annotation)]

    def read_boundaries(self, sample: Sample) -> list[np.ndarray]:
        """Every annotator's boundary map (stored for BSDS, else derived as BSDS does)."""
        if self.kind == "bsds":
            return read_bsds_gt(sample.annotation).boundaries
        return gt_boundaries_from_segs(self.read_annotations(sample))


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a label mask image: 2-D integer class indices (gray RGB masks are accepted).

    Raises
    ------
    ValueError
        If the file is not a 2-D integer label image (e.g. a colour-coded mask).
    """
    p = Path(path)
    mask = read_image(p)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4) and np.all(mask[..., :3] == mask[..., :1]):
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f"{p}: a mask must be a 2-D label image (class index per pixel), "
                         f"got shape {mask.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise ValueError(f"{p}: mask must hold integer labels, got {mask.dtype}")
    return mask


def detect_layout(root: str | os.PathLike) -> str:
    """``"bsds"`` or ``"masks"``.

    Raises
    ------
    NotADirectoryError
        If ``root`` is not a folder.
    ValueError
        If neither layout is found (the message says what is expected).
    """
    r = Path(root)
    if not r.is_dir():
        raise NotADirectoryError(f"{r} is not a folder")
    if (r / "images").is_dir() and (r / "groundTruth").is_dir():
        return "bsds"
    if (r / "images").is_dir() and any((r / m).is_dir() for m in MASK_DIRS):
        return "masks"
    raise ValueError(
        f"{r}: unknown dataset layout; expected images/<split>/ + groundTruth/<split>/ (BSDS500) "
        f"or images/ + masks/ (or masks_semantic/)"
    )


def _split_dirs(root: Path, split: str | None, *names: str) -> tuple[list[Path], str | None]:
    """The folders of ``split`` when it exists, else the folders themselves (no split level)."""
    if split is not None and (root / names[0] / split).is_dir():
        dirs = [root / n / split for n in names]
        missing = [d for d in dirs if not d.is_dir()]
        if missing:
            raise FileNotFoundError(f"{root}: split {split!r} has no folder {missing[0]}")
        return dirs, split
    base = [root / n for n in names]
    if base[0].is_dir() and not folder_images(base[0], required=False):
        subs = sorted(p.name for p in base[0].iterdir() if p.is_dir())
        if subs:
            raise FileNotFoundError(f"{root}: no split {split!r} in {base[0]} (splits: {subs})")
    return base, None


def _ignore(ignore: int | Iterable[int] | None) -> tuple[int, ...] | None:
    if ignore is None:
        return None
    values = (ignore,) if np.isscalar(ignore) else tuple(ignore)
    return tuple(int(v) for v in values) or None


def load_bsds500(root: str | os.PathLike, split: str | None = "val") -> Dataset:
    """The BSDS500 layout: ``images/<split>/*.jpg`` with ``groundTruth/<split>/*.mat``.

    Parameters
    ----------
    root : path-like
        Folder holding ``images/`` and ``groundTruth/``.
    split : str, optional
        ``"train"``, ``"val"`` or ``"test"``; ignored when the folders have no split level.

    Returns
    -------
    Dataset
    """
    r = Path(root)
    (img_dir, gt_dir), used = _split_dirs(r, split, "images", "groundTruth")
    if not img_dir.is_dir() or not gt_dir.is_dir():
        raise FileNotFoundError(f"{r}: expected folders {img_dir} and {gt_dir}")
    samples, unmatched = [], []
    for img in folder_images(img_dir, required=False):
        gt = gt_dir / f"{img.stem}.mat"
        if gt.is_file():
            samples.append(Sample(img.stem, img, gt))
        else:
            unmatched.append(img)
    if not samples:
        raise FileNotFoundError(f"{r}: no image in {img_dir} has a ground-truth .mat in {gt_dir}")
    return Dataset(r, "bsds", used, samples, None, unmatched)


def load_masks_dataset(root: str | os.PathLike, split: str | None = None, *,
                       masks_dir: str | None = None,
                       ignore: int | Iterable[int] | None = None) -> Dataset:
    """The images/ + masks/ layout (one label mask per image, matched by file stem).

    Parameters
    ----------
    root : path-like
        Folder holding ``images/`` and the masks folder.
    split : str, optional
        Used when ``images/<split>/`` exists.
    masks_dir : str, optional
        Name of the masks folder; the first of ``masks``, ``masks_semantic`` by default.
    ignore : int or iterable of int, optional
        Mask values not scored (e.g. 255).

    Returns
    -------
    Dataset
    """
    r = Path(root)
    if masks_dir is None:
        masks_dir = next((m for m in MASK_DIRS if (r / m).is_dir()), MASK_DIRS[0])
    if not (r / masks_dir).is_dir():
        raise FileNotFoundError(f"{r}: no masks folder {masks_dir!r}")
    (img_dir, mask_dir), used = _split_dirs(r, split, "images", masks_dir)
    masks = {p.stem: p for p in folder_images(mask_dir, required=False)}
    samples, unmatched = [], []
    for img in folder_images(img_dir, required=False):
        if img.stem in masks:
            samples.append(Sample(img.stem, img, masks[img.stem]))
        else:
            unmatched.append(img)
    if not samples:
        raise FileNotFoundError(f"{r}: no image in {img_dir} has a mask in {mask_dir}")
    return Dataset(r, "masks", used, samples, _ignore(ignore), unmatched)


def load_dataset(root: str | os.PathLike, split: str | None = None, *,
                 masks_dir: str | None = None,
                 ignore: int | Iterable[int] | None = None) -> Dataset:
    """Load an annotated image folder, detecting its layout (:func:`detect_layout`).

    Parameters
    ----------
    root : path-like
        Dataset folder.
    split : str, optional
        Split folder to use (BSDS500 default: ``"val"``).
    masks_dir : str, optional
        images/ + masks/ layout: name of the masks folder.
    ignore : int or iterable of int, optional
        Ground-truth values not scored (masks layout; BSDS has none).

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_dataset("../shared/bsds500", "val")  # doctest: +SKIP
    >>> len(ds), ds.kind  # doctest: +SKIP
    (100, 'bsds')
    """
    kind = detect_layout(root)
    if kind == "bsds":
        ds = load_bsds500(root, split if split is not None else "val")
        if ignore is not None:
            ds = Dataset(ds.root, ds.kind, ds.split, ds.samples, _ignore(ignore), ds.unmatched)
        return ds
    return load_masks_dataset(root, split, masks_dir=masks_dir, ignore=ignore)
