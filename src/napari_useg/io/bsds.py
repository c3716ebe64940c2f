"""BSDS500 ``.mat`` files: ground truth (``groundTruth``), ``segs`` and ``ucm2``.

A BSDS500 ground-truth file holds one variable, ``groundTruth``: a 1xK MATLAB cell
array, one struct per annotator with

* ``Segmentation``: ``uint16`` label map, labels from 1;
* ``Boundaries``: ``logical`` map of the same shape, the thinned boundaries of the
  segmentation (``bwmorph(seg2bdry(seg, 'imageSize'), 'thin', inf)``).

:func:`read_bsds_gt` reads one, checking its structure; :func:`write_bsds_gt` writes
label maps in the same structure (MATLAB v5 format, readable by ``scipy.io.loadmat``
and by MATLAB, so the official benchmark can use it). :func:`read_segs` /
:func:`write_segs` handle the benchmark's ``segs`` input format (a 1xN cell of label
maps, one per threshold) and :func:`read_ucm2` / :func:`write_ucm2` its ``ucm2`` format.

Every reader raises :class:`BSDSFormatError` (a ``ValueError``) naming the file and
what is wrong; MATLAB v7.3 files (HDF5) are recognised and refused with a hint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from napari_useg.core.atomic import atomic_write
from napari_useg.core.labels import sequential
from napari_useg.metrics.bsds.boundaries import seg2bdry, thin_boundaries

__all__ = [
    "BSDSFormatError",
    "BSDSGroundTruth",
    "is_bsds_gt",
    "mat_version",
    "read_bsds_gt",
    "read_segs",
    "read_ucm2",
    "write_bsds_gt",
    "write_segs",
    "write_ucm2",
]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


class BSDSFormatError(ValueError):
    """A ``.mat`` file that is not what was expected (the message names the file)."""


@dataclass(frozen=True)
class BSDSGroundTruth:
    """All annotators of one BSDS image.

    Attributes
    ----------
    segmentations : list of numpy.ndarray
        ``uint16`` label maps (labels from 1), one per annotator.
    boundaries : list of numpy.ndarray
        Boolean boundary maps, one per annotator.
    path : pathlib.Path or None
        The file read (``None`` when built in memory).
    """

    segmentations: list[np.ndarray]
    boundaries: list[np.ndarray]
    path: Path | None = None

    @property
    def n_annotators(self) -> int:
        """Number of annotators."""
        return len(self.segmentations)

    @property
    def shape(self) -> tuple[int, int]:
        """Image shape ``(H, W)``."""
        return tuple(self.segmentations[0].shape)  # type: ignore[return-value]

    @property
    def image_id(self) -> str:
        """The file's stem (the BSDS image id), or ``"groundTruth"``."""
        return self.path.stem if self.path is not None else "groundTruth"


def mat_version(path: str | os.PathLike) -> str:
    """``"v4"``, ``"v5"`` (also v6 and v7) or ``"v7.3"`` (HDF5) from a ``.mat`` file's header.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    BSDSFormatError
        If it is not a MATLAB file at all.
    """
    from scipy.io.matlab import matfile_version

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no file at {p}")
    with open(p, "rb") as fh:
        head = fh.read(520)
    if head[512:520] == _HDF5_MAGIC:
        return "v7.3"
    try:
        major, _ = matfile_version(str(p))
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a .mat file"
        raise BSDSFormatError(f"{p}: not a MATLAB .mat file ({exc})") from None
    return {0: "v4", 1: "v5", 2: "v7.3"}.get(major, f"v{major}")


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    version = mat_version(path)
    if version == "v7.3":
        raise BSDSFormatError(
            f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; re-save it in MATLAB "
            f"with save(..., '-v7')"
        )
    try:
        return loadmat(path, mat_dtype=False, squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a format problem
        raise BSDSFormatError(f"{path}: could not read the .mat file: {exc}") from exc


def _cell_items(value, path: Path, name: str) -> list:
    if not isinstance(value, np.ndarray) or value.dtype != object:
        raise BSDSFormatError(f"{path}: {name!r} must be a cell array, got "
                              f"{type(value).__name__} of dtype "
                              f"{getattr(value, 'dtype', '?')}")
    if value.ndim != 2 or 1 not in value.shape or value.size == 0:
        raise BSDSFormatError(f"{path}: {name!r} must be a non-empty 1xK cell, got shape "
                              f"{value.shape}")
    return list(value.ravel())


def _field(struct, field: str, path: Path, k: int) -> np.ndarray:
    names = struct.dtype.names if isinstance(struct, np.ndarray) else None
    if not names or field not in names:
        raise BSDSFormatError(f"{path}: annotator {k + 1} has no field {field!r} "
                              f"(fields: {list(names or [])})")
    value = struct[field]
    # a 1x1 struct gives a (1, 1) object array holding the matrix
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.ravel()[0]
    if not isinstance(value, np.ndarray) or value.ndim != 2:
        raise BSDSFormatError(f"{path}: annotator {k + 1}: {field} must be a 2-D matrix, "
                              f"got {getattr(value, 'shape', type(value).__name__)}")
    return value


def read_bsds_gt(path: str | os.PathLike) -> BSDSGroundTruth:
    """Read a BSDS500 ground-truth ``.mat`` file (every annotator).

    Parameters
    ----------
    path : path-like
        A ``groundTruth/<split>/<id>.mat`` file.

    Returns
    -------
    BSDSGroundTruth
        ``uint16`` segmentations and boolean boundaries, in the file's order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    BSDSFormatError
        If it is not BSDS ground truth: no ``groundTruth`` variable, not a cell of
        structs, missing ``Segmentation``/``Boundaries``, non-integer or negative
        labels, shapes that differ, or a MATLAB v7.3 (HDF5) file.
    """
    p = Path(path)
    data = _loadmat(p)
    if "groundTruth" not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise BSDSFormatError(f"{p}: not BSDS ground truth: no 'groundTruth' variable "
                              f"(variables: {found or 'none'})")
    items = _cell_items(data["groundTruth"], p, "groundTruth")
    segs, bdrys = [], []
    for k, struct in enumerate(items):
        seg = _field(struct, "Segmentation", p, k)
        bdry = _field(struct, "Boundaries", p, k)
        if not (np.issubdtype(seg.dtype, np.integer) or np.issubdtype(seg.dtype, np.floating)):
            raise BSDSFormatError(f"{p}: annotator {k + 1}: Segmentation has dtype {seg.dtype}")
        if seg.size and (not np.all(np.isfinite(seg)) or seg.min() < 0 or seg.max() > 65535
                         or np.any(seg != np.round(seg))):
            raise BSDSFormatError(f"{p}: annotator {k + 1}: Segmentation must hold integer "
                                  f"labels in [0, 65535]")
        if bdry.shape != seg.shape:
            raise BSDSFormatError(f"{p}: annotator {k + 1}: Boundaries has shape {bdry.shape} "
                                  f"but Segmentation {seg.shape}")
        if segs and seg.shape != segs[0].shape:
            raise BSDSFormatError(f"{p}: annotator {k + 1} has shape {seg.shape}, annotator 1 "
                                  f"{segs[0].shape}")
        if bdry.size and not np.isin(bdry, (0, 1)).all():
            raise BSDSFormatError(f"{p}: annotator {k + 1}: Boundaries must be 0/1")
        segs.append(np.ascontiguousarray(seg.astype(np.uint16)))
        bdrys.append(np.ascontiguousarray(bdry.astype(bool)))
    return BSDSGroundTruth(segs, bdrys, p)


def is_bsds_gt(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a readable BSDS ground-truth ``.mat`` file (never raises)."""
    try:
        if Path(path).suffix.lower() != ".mat":
            return False
        read_bsds_gt(path)
    except Exception:  # noqa: BLE001 - a yes/no question
        return False
    return True


def _label_maps(labels, what: str, relabel: bool) -> list[np.ndarray]:
    if isinstance(labels, np.ndarray):
        maps = [labels] if labels.ndim == 2 else list(labels)
    else:
        maps = [np.asarray(x) for x in labels]
    if not maps:
        raise ValueError(f"no {what} given")
    out = []
    for k, m in enumerate(maps):
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f"{what} {k + 1} must be 2-D, got shape {m.shape}")
        if not (np.issubdtype(m.dtype, np.integer) or m.dtype == bool):
            raise TypeError(f"{what} {k + 1} must hold integer labels, got dtype {m.dtype}")
        if m.shape != maps[0].shape:
            raise ValueError(f"{what} {k + 1} has shape {m.shape}, the first {maps[0].shape}")
        if relabel:
            m = sequential(m, start=1)
        elif m.size and (int(m.min()) < 1 or int(m.max()) > 65535):
            raise ValueError(
                f"{what} {k + 1} has labels in [{int(m.min())}, {int(m.max())}]; BSDS labels "
                f"are 1..65535 (pass relabel=True to renumber them 1..n)"
            )
        if m.size and int(m.max()) > 65535:
            raise ValueError(f"{what} {k + 1} has more than 65535 labels")
        out.append(np.ascontiguousarray(m.astype(np.uint16)))
    return out


def _savemat(path: str | os.PathLike, variables: dict, overwrite: bool) -> Path:
    from scipy.io import savemat

    dest = Path(path)
    if dest.suffix.lower() != ".mat":
        raise ValueError(f"{dest}: the file name must end in .mat")
    with atomic_write(dest, overwrite=overwrite, suffix=".mat") as tmp:
        savemat(tmp, variables, format="5", do_compression=True, oned_as="row")
    return dest


def write_bsds_gt(path: str | os.PathLike, segmentations, *, boundaries=None,
                  relabel: bool = False, overwrite: bool = False) -> Path:
    """Write label maps as a BSDS500 ground-truth ``.mat`` file (one annotator each).

    Parameters
    ----------
    path : path-like
        Destination ``.mat``.
    segmentations : numpy.ndarray or sequence of numpy.ndarray
        One 2-D label map, a list of them, or a ``(K, H, W)`` stack (one per annotator).
        Labels must be 1..65535 unless ``relabel``.
    boundaries : sequence of numpy.ndarray, optional
        Boundary maps to store; by default derived as the benchmark's ground truth has
        them (thinned ``seg2bdry``).
    relabel : bool
        Renumber each map's labels to 1..n first (needed when label 0 is present, e.g.
        napari's background).
    overwrite : bool
        Replace an existing file (otherwise an existing destination raises).

    Returns
    -------
    pathlib.Path
        The file written (atomically).

    Examples
    --------
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp(); seg = np.array([[1, 1, 2], [1, 1, 2]])
    >>> p = write_bsds_gt(os.path.join(d, "x.mat"), [seg])
    >>> read_bsds_gt(p).segmentations[0].tolist()
    [[1, 1, 2], [1, 1, 2]]
    """
    segs = _label_maps(segmentations, "segmentation", relabel)
    if boundaries is None:
        bdrys = [thin_boundaries(seg2bdry(s)) for s in segs]
    else:
        bdrys = [np.asarray(b) for b in (
            [boundaries] if isinstance(boundaries, np.ndarray) and boundaries.ndim == 2
            else boundaries)]
        if len(bdrys) != len(segs):
            raise ValueError(f"{len(bdrys)} boundary maps for {len(segs)} segmentations")
        for k, (b, s) in enumerate(zip(bdrys, segs, strict=True)):
            if b.shape != s.shape:
                raise ValueError(f"boundaries {k + 1} has shape {b.shape}, segmentation "
                                 f"{s.shape}")
        bdrys = [b != 0 for b in bdrys]
    cell = np.empty((1, len(segs)), dtype=object)
    for k, (s, b) in enumerate(zip(segs, bdrys, strict=True)):
        struct = np.empty((1, 1), dtype=[("Segmentation", object), ("Boundaries", object)])
        struct[0, 0]["Segmentation"] = s
        struct[0, 0]["Boundaries"] = np.ascontiguousarray(b, dtype=bool)
        cell[0, k] = struct
    return _savemat(path, {"groundTruth": cell}, overwrite)


def write_segs(path: str | os.PathLike, segs, *, relabel: bool = False,
               overwrite: bool = False) -> Path:
    """Write the benchmark's ``segs`` format: a 1xN cell of ``uint16`` label maps.

    Parameters
    ----------
    path : path-like
        Destination ``.mat`` (the official benchmark reads ``<id>.mat`` from its input folder).
    segs : numpy.ndarray or sequence of numpy.ndarray
        One label map per threshold (or a single one).
    relabel : bool
        Renumber each map's labels to 1..n first.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    maps = _label_maps(segs, "segmentation", relabel)
    cell = np.empty((1, len(maps)), dtype=object)
    for k, m in enumerate(maps):
        cell[0, k] = m
    return _savemat(path, {"segs": cell}, overwrite)


def read_segs(path: str | os.PathLike) -> list[np.ndarray]:
    """Read a ``segs`` ``.mat`` file: the list of label maps.

    Raises
    ------
    BSDSFormatError
        If there is no ``segs`` cell of 2-D integer matrices of one shape.
    """
    p = Path(path)
    data = _loadmat(p)
    if "segs" not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise BSDSFormatError(f"{p}: no 'segs' variable (variables: {found or 'none'})")
    value = data["segs"]
    items = [value] if (isinstance(value, np.ndarray) and value.dtype != object) \
        else _cell_items(value, p, "segs")
    out = []
    for k, m in enumerate(items):
        m = np.asarray(m)
        if m.ndim != 2 or not (np.issubdtype(m.dtype, np.integer) or
                               np.issubdtype(m.dtype, np.floating)):
            raise BSDSFormatError(f"{p}: segs{{{k + 1}}} must be a 2-D label matrix, got "
                                  f"shape {m.shape} dtype {m.dtype}")
        if np.issubdtype(m.dtype, np.floating):
            if m.size and np.any(m != np.round(m)):
                raise BSDSFormatError(f"{p}: segs{{{k + 1}}} holds non-integer labels")
            m = m.astype(np.int64)
        if out and m.shape != out[0].shape:
            raise BSDSFormatError(f"{p}: segs{{{k + 1}}} has shape {m.shape}, segs{{1}} "
                                  f"{out[0].shape}")
        out.append(np.ascontiguousarray(m))
    return out


def read_ucm2(path: str | os.PathLike) -> np.ndarray:
    """Read a ``ucm2`` ``.mat`` file: the ``(2H+1, 2W+1)`` ultrametric contour map (``float64``)."""
    p = Path(path)
    data = _loadmat(p)
    if "ucm2" not in data:
        found = sorted(k for k in data if not k.startswith("__"))
        raise BSDSFormatError(f"{p}: no 'ucm2' variable (variables: {found or 'none'})")
    u = np.asarray(data["ucm2"])
    if u.ndim != 2 or u.shape[0] % 2 == 0 or u.shape[1] % 2 == 0 \
            or not np.issubdtype(u.dtype, np.number):
        raise BSDSFormatError(f"{p}: ucm2 must be a numeric matrix of odd shape "
                              f"(2H+1, 2W+1), got {u.shape} {u.dtype}")
    return u.astype(np.float64)


def write_ucm2(path: str | os.PathLike, ucm2: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write the benchmark's ``ucm2`` format: one ``(2H+1, 2W+1)`` ``double`` matrix.

    Parameters
    ----------
    path : path-like
        Destination ``.mat`` (the benchmark reads ``<id>.mat`` from its input folder).
    ucm2 : numpy.ndarray
        Ultrametric contour map of odd shape, finite values (e.g.
        :meth:`napari_useg.core.hierarchy.Hierarchy.ucm2`).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    u = np.asarray(ucm2, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] % 2 == 0 or u.shape[1] % 2 == 0 or min(u.shape) < 3:
        raise ValueError(f"ucm2 must be a 2-D map of odd shape (2H+1, 2W+1), got {u.shape}")
    if not np.isfinite(u).all():
        raise ValueError("ucm2 holds NaN or infinite values")
    return _savemat(path, {"ucm2": u}, overwrite)
