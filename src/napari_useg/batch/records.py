"""Per-image outputs of a batch run, and deciding whether an existing one can be trusted.

For an input ``<stem>.<ext>`` the run writes, in the output folder:

``<stem>_labels.tif``
    The labels (compressed TIFF, ``uint16``/``uint32``), written atomically.
``<stem>_labels.json``
    The record, written atomically *after* the labels: the method, its validated
    parameters, seed, versions, runtime, the input's path, size, modification
    time and SHA-256, and the labels file's SHA-256 and shape. A failed image
    gets a record with ``"status": "error"`` and the error instead.

Large images are written as ``<stem>_labels.zarr`` instead (a folder; see
:mod:`napari_useg.batch.large`), with the same record. The names come from
:func:`napari_useg.batch.outputs.output_paths`.

A rerun trusts an output only when its record is complete (``"status": "ok"``,
this format), names the same settings and the same input content, and the labels
file (or zarr folder) has the recorded SHA-256 and a readable header of the
recorded shape.

A file at one of these names that this package did not write (:func:`foreign_outputs`:
labels without our metadata and without a record of ours naming them, a record that
is not one of ours) is never replaced without ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tifffile
import zarr

from napari_useg.batch.outputs import WRITER, labels_format
from napari_useg.core.atomic import atomic_write

__all__ = [
    "RECORD_FORMAT",
    "file_sha256",
    "tree_sha256",
    "input_fingerprint",
    "read_record",
    "write_record",
    "warning_texts",
    "labels_header",
    "zarr_header",
    "labels_sha256",
    "Check",
    "check_outputs",
    "is_batch_labels",
    "is_batch_record",
    "is_batch_output",
    "foreign_outputs",
]

#: Version of the record layout; records of another version are recomputed.
RECORD_FORMAT = 1
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def tree_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 over a folder's files: each relative path, size and content, sorted by path.

    Raises
    ------
    OSError
        If the folder cannot be read.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        h.update(f"{rel}\0{f.stat().st_size}\0".encode())
        with open(f, "rb") as fh:
            while block := fh.read(_CHUNK):
                h.update(block)
    return h.hexdigest()


def input_fingerprint(path: str | os.PathLike, *, content: bool = True) -> dict[str, Any]:
    """Path, size, modification time (ns) and, with ``content``, SHA-256 of an input file."""
    p = Path(path)
    st = p.stat()
    out: dict[str, Any] = {"path": str(p.resolve()), "size": st.st_size,
                           "mtime_ns": st.st_mtime_ns}
    if content:
        out["sha256"] = file_sha256(p)
    return out


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The record at ``path``, or ``None`` when it is missing or not a JSON object."""
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def write_record(path: str | os.PathLike, record: dict[str, Any], *,
                 overwrite: bool = False) -> Path:
    """Write ``record`` as JSON, atomically (temporary file, then rename)."""
    text = json.dumps(record, indent=1, default=str, allow_nan=False)
    with atomic_write(path, overwrite=overwrite, suffix=".json") as tmp:
        tmp.write_text(text)
    return Path(path)


def warning_texts(caught: list[warnings.WarningMessage]) -> list[str]:
    """The distinct messages of warnings caught while an image was processed, for its record.

    A ``UserWarning`` is its message alone; other categories are prefixed with their name.
    """
    texts = (f"{'' if issubclass(w.category, UserWarning) else w.category.__name__ + ': '}"
             f"{w.message}" for w in caught)
    return list(dict.fromkeys(texts))


def labels_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a labels output: of the file, or over the files of a zarr folder."""
    if labels_format(path) == "zarr":
        return tree_sha256(path)
    return file_sha256(path)


def labels_header(path: str | os.PathLike) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of the labels TIFF (or zarr array), read from its header (no pixel data).

    Raises
    ------
    ValueError
        If the file is not a readable TIFF (or zarr array).
    """
    if labels_format(path) == "zarr":
        return zarr_header(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(int(s) for s in series.shape), str(series.dtype)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not trusted"
        raise ValueError(f"{path} is not a readable TIFF: {exc}") from exc


def zarr_header(path: str | os.PathLike) -> tuple[tuple[int, ...], str]:
    """Shape and dtype of a zarr labels array, from its metadata (no chunk is read).

    Raises
    ------
    ValueError
        If ``path`` is not a readable zarr array.
    """
    try:
        z = zarr.open_array(str(path), mode="r")
        return tuple(int(s) for s in z.shape), str(z.dtype)
    except Exception as exc:  # noqa: BLE001 - anything unreadable is "not trusted"
        raise ValueError(f"{path} is not a readable zarr array: {exc}") from exc


@dataclass(frozen=True)
class Check:
    """Verdict on the existing outputs of one image.

    Attributes
    ----------
    state : {"missing", "complete", "incomplete", "stale"}
        ``missing``: nothing there. ``complete``: trusted, skip it.
        ``incomplete``: partial, corrupt or failed before; recompute.
        ``stale``: a complete result of other settings or of another version of
        the input; replaced only with ``overwrite``.
    reason : str
        Why (for messages).
    record : dict or None
        The record found.
    labels : pathlib.Path or None
        The labels output the record describes (``.tif`` or ``.zarr``), when known.
    """

    state: str
    reason: str = ""
    record: dict[str, Any] | None = None
    labels: Path | None = None


def _input_unchanged(recorded: dict[str, Any], image: Path) -> bool:
    st = image.stat()
    if recorded.get("size") != st.st_size:
        return False
    if recorded.get("mtime_ns") == st.st_mtime_ns:
        return True
    # touched or copied: same content is still the same input
    return recorded.get("sha256") is not None and recorded["sha256"] == file_sha256(image)


def _recorded_labels(labels: Path, rec: dict[str, Any]) -> Path:
    """The labels output ``rec`` names, when it is the other format of ``labels``."""
    name = (rec.get("labels") or {}).get("file")
    stem = labels.name[: -len(labels.suffix)] if labels.suffix else labels.name
    if isinstance(name, str) and name != labels.name and name in (f"{stem}.tif", f"{stem}.zarr"):
        return labels.with_name(name)
    return labels


def check_outputs(image: str | os.PathLike, labels: str | os.PathLike,
                  record: str | os.PathLike, config: dict[str, Any], *,
                  any_format: bool = False) -> Check:
    """Decide whether the outputs of ``image`` can be trusted by a rerun.

    Parameters
    ----------
    image : path-like
        The input file.
    labels, record : path-like
        Its labels output (``<stem>_labels.tif``, or ``<stem>_labels.zarr``) and
        record JSON.
    config : dict
        The settings of this run (as stored in ``record["config"]``).
    any_format : bool
        Accept labels in the other format (TIFF for zarr and the reverse) when the
        record names them. Otherwise complete outputs in the other format are
        ``"stale"`` (this run would replace them).

    Returns
    -------
    Check
        ``Check.labels`` is the output verified (the one the record names).
    """
    labels, record, image = Path(labels), Path(record), Path(image)
    has_record = record.exists()
    if not labels.exists() and not has_record:
        return Check("missing")
    rec = read_record(record) if has_record else None
    if rec is None:
        return Check("incomplete", "record missing or unreadable" if has_record
                     else "labels without a record", None, labels)
    found = _recorded_labels(labels, rec)
    if rec.get("format") != RECORD_FORMAT:
        return Check("incomplete", f"record format {rec.get('format')!r}", rec, found)
    if rec.get("status") != "ok":
        return Check("incomplete", f"failed before: {rec.get('error', {}).get('message')}",
                     rec, found)
    meta = rec.get("labels") or {}
    if not found.exists():
        return Check("incomplete", "labels file missing", rec, found)
    try:
        shape, _ = labels_header(found)
    except ValueError as exc:
        return Check("incomplete", str(exc), rec, found)
    if list(shape) != list(meta.get("shape", [])):
        return Check("incomplete", f"labels shape {shape} differs from the record's "
                                   f"{meta.get('shape')}", rec, found)
    try:
        digest = labels_sha256(found)
    except OSError as exc:
        return Check("incomplete", f"cannot read the labels: {exc}", rec, found)
    if meta.get("sha256") != digest:
        return Check("incomplete", "labels file does not match the record's checksum", rec,
                     found)
    if rec.get("config") != config:
        old = rec.get("config") or {}
        diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
        return Check("stale", f"made with other settings (differs in {diff})", rec, found)
    try:
        same = _input_unchanged(rec.get("input") or {}, image)
    except OSError as exc:
        return Check("incomplete", f"cannot stat input: {exc}", rec, found)
    if not same:
        return Check("stale", "the input file changed since", rec, found)
    if found != labels and not any_format:
        return Check("stale", f"written as {labels_format(found)}, this run writes "
                              f"{labels_format(labels)}", rec, found)
    return Check("complete", "", rec, found)


def _is_ours_meta(meta: Any) -> bool:
    """Whether labels metadata is the description a batch run writes (its ``writer``)."""
    return isinstance(meta, dict) and meta.get("writer") == WRITER


def is_batch_labels(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a labels output written by a batch run (from its own metadata).

    A TIFF whose ImageDescription, or a zarr array whose attributes, hold the JSON
    description every batch output carries (``"writer": "napari-useg batch"``; labels
    written by ``segment`` or ``predict`` are not batch outputs). Only the header is read.
    """
    p = Path(path)
    try:
        if labels_format(p) == "zarr" or p.is_dir():  # a zarr array (or one being written)
            if not p.is_dir():
                return False
            return _is_ours_meta(dict(zarr.open_array(str(p), mode="r").attrs))
        with tifffile.TiffFile(p) as tif:
            desc = tif.pages[0].description if len(tif.pages) else ""
        return _is_ours_meta(json.loads(desc))
    except Exception:  # noqa: BLE001 - anything unreadable is not known to be ours
        return False


def is_batch_record(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a batch record (a JSON object with ``format`` and ``status``)."""
    rec = read_record(path)
    return rec is not None and {"format", "status"} <= set(rec)


def is_batch_output(labels: str | os.PathLike, record: str | os.PathLike) -> bool:
    """Whether ``labels`` was written by a batch run: its own metadata says so, or the
    batch record beside it names it (outputs of versions without the metadata)."""
    labels = Path(labels)
    if is_batch_labels(labels):
        return True
    rec = read_record(record) if is_batch_record(record) else None
    return rec is not None and (rec.get("labels") or {}).get("file") == labels.name


def foreign_outputs(labels: list[Path], record: Path) -> list[Path]:
    """The files at an image's output names that a batch run did not write.

    Parameters
    ----------
    labels : list of pathlib.Path
        The image's labels outputs (each format: ``.tif`` and ``.zarr``, and the
        ``.zarr.partial`` folder a large image is written to).
    record : pathlib.Path
        Its record.

    Returns
    -------
    list of pathlib.Path
        Existing labels that carry no batch metadata, unless a record of ours names
        them; an existing record that is not ours, unless it sits beside labels of
        ours (a record cut short is then rebuilt).
    """
    rec = read_record(record) if record.exists() else None
    named = (rec.get("labels") or {}).get("file") if rec is not None else None
    ours_record = is_batch_record(record) if rec is not None else False
    out: list[Path] = []
    ours_labels = False
    for lab in labels:
        if not lab.exists():
            continue
        if is_batch_labels(lab) or (ours_record and named == lab.name):
            ours_labels = True
        else:
            out.append(lab)
    if record.exists() and not ours_record and not ours_labels:
        out.append(record)
    return out
