"""One image of a batch and the files it writes: the job, the output names, the formats.

A :class:`BatchJob` names an input image, its labels output (a ``.tif`` file or a
``.zarr`` folder) and its record; :func:`output_paths` gives those names. Every task
of a batch (a whole image, or the tasks of a tiled one) shares the helpers here.

This module needs the standard library only: the command line reads
:data:`OUTPUT_FORMATS` and :data:`DEFAULT_TILE_TASKS_ABOVE` from it to build its
parser, and so does not import Dask or zarr before a batch runs.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LABELS_SUFFIX",
    "RECORD_SUFFIX",
    "ZARR_SUFFIX",
    "PARTIAL_SUFFIX",
    "WRITER",
    "OUTPUT_FORMATS",
    "DEFAULT_TILE_TASKS_ABOVE",
    "BatchJob",
    "output_paths",
    "labels_format",
    "partial_path",
    "remove_other_format",
    "now",
]

LABELS_SUFFIX = "_labels.tif"
RECORD_SUFFIX = "_labels.json"
ZARR_SUFFIX = "_labels.zarr"
#: Suffix of a zarr array being written (renamed when complete).
PARTIAL_SUFFIX = ".partial"
OUTPUT_FORMATS = ("auto", "tif", "zarr")
#: ``writer`` of the description every labels output of a batch run carries (how a rerun
#: tells its own outputs from a file of the same name written by anything else).
WRITER = "napari-useg batch"
#: Images with more pixels than this are "large" (64 megapixels).
DEFAULT_TILE_TASKS_ABOVE = 64_000_000


@dataclass(frozen=True)
class BatchJob:
    """One image of a batch (picklable; shipped to a worker as the task's argument).

    Attributes
    ----------
    image : str
        Input file.
    labels, record : str
        Output files.
    config : dict
        Settings of the run (method, preset, validated params, seed, channel axis,
        device, model); stored verbatim in the record.
    replace : bool
        Replace existing (untrusted or stale) outputs.
    fmt : {"tif", "zarr"}
        Format of the labels output (``labels`` ends in ``.tif`` or ``.zarr``).
    chunk : int
        Side of the square chunks of a zarr output.
    """

    image: str
    labels: str
    record: str
    config: dict[str, Any]
    replace: bool = False
    fmt: str = "tif"
    chunk: int = 512


def output_paths(out_dir: str | os.PathLike, image: str | os.PathLike,
                 fmt: str = "tif") -> tuple[Path, Path]:
    """``(labels, record)`` paths of ``image``'s outputs in ``out_dir``.

    ``fmt="zarr"`` names the labels ``<stem>_labels.zarr`` instead of ``<stem>_labels.tif``.
    """
    if fmt not in ("tif", "zarr"):
        raise ValueError(f"fmt must be 'tif' or 'zarr', got {fmt!r}")
    stem = Path(image).stem
    out = Path(out_dir)
    labels = f"{stem}{LABELS_SUFFIX}" if fmt == "tif" else f"{stem}{ZARR_SUFFIX}"
    return out / labels, out / f"{stem}{RECORD_SUFFIX}"


def labels_format(path: str | os.PathLike) -> str:
    """``"zarr"`` for a ``.zarr`` labels folder, ``"tif"`` otherwise."""
    return "zarr" if Path(path).suffix.lower() == ".zarr" else "tif"


def partial_path(labels: str | os.PathLike) -> Path:
    """Where the zarr array of ``labels`` is written before it is complete."""
    dest = Path(labels)
    return dest.with_name(dest.name + PARTIAL_SUFFIX)


def remove_other_format(job: BatchJob) -> None:
    """After a replacing write, drop this image's labels left in the other format."""
    if not job.replace:
        return
    labels = Path(job.labels)
    other = labels.with_suffix(".tif" if job.fmt == "zarr" else ".zarr")
    if other.is_dir():
        shutil.rmtree(other, ignore_errors=True)
    elif other.exists():
        other.unlink()


def now() -> str:
    """The current UTC time, ISO 8601 to the second (time stamps of the records)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
