"""The results folder of an evaluation: per-image records (resume) and its ``config.json``.

Each finished image is saved as ``per_image/<id>.json`` (scores) and
``per_image/<id>.npz`` (segment match arrays), atomically; a rerun with the same
configuration finds them and skips those images, so an interrupted run resumes where it
stopped. ``config.json`` says what the folder holds: another configuration is refused
unless ``overwrite`` (then the old records are discarded).

Each record also holds the SHA-256 of the files it was computed from (image,
annotation, and the prediction when scoring saved predictions): a record whose inputs
changed since is recomputed, never reused (:func:`input_hashes`, :func:`is_current`).

A results folder is new or empty, or one of ours (its ``config.json``) being resumed;
anything else (a folder holding other files, or report files without a readable
``config.json``) is refused unless ``overwrite``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.batch.records import file_sha256
from napari_useg.core.atomic import atomic_write
from napari_useg.core.version import __version__

__all__ = ["RECORD_VERSION", "write_text", "save_record", "load_record", "load_arrays",
           "input_hashes", "is_current", "prepare_results_folder"]

#: Bump when the per-image record changes (older records are then recomputed).
RECORD_VERSION = 1


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically, replacing an existing one."""
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(text)


def save_record(per_image: Path, record: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Save one image's record (``<id>.json``) and arrays (``<id>.npz``), each atomically.

    The arrays are written first, so a record on disk always has its arrays.
    """
    with atomic_write(per_image / f"{record['id']}.npz", overwrite=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    write_text(per_image / f"{record['id']}.json", json.dumps(record, indent=1))


def load_record(per_image: Path, image_id: str) -> dict[str, Any] | None:
    """The saved record of an image, or ``None`` if missing, unreadable or of another version."""
    jp = per_image / f"{image_id}.json"
    if not jp.is_file() or not (per_image / f"{image_id}.npz").is_file():
        return None
    try:
        rec = json.loads(jp.read_text())
    except (OSError, ValueError):
        return None
    return rec if rec.get("version") == RECORD_VERSION else None


def load_arrays(per_image: Path, image_id: str) -> dict[str, np.ndarray]:
    """The saved segment match arrays of an image."""
    with np.load(per_image / f"{image_id}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def input_hashes(image: str | Path, annotation: str | Path,
                 prediction: str | Path | None = None) -> dict[str, str]:
    """SHA-256 of the files one image's record is computed from.

    Parameters
    ----------
    image, annotation : path-like
        The image and its ground truth.
    prediction : path-like, optional
        The saved prediction scored (instead of running a method).

    Returns
    -------
    dict
        ``{"image": ..., "annotation": ...[, "prediction": ...]}``, stored in the
        record as ``inputs``.
    """
    out = {"image": file_sha256(image), "annotation": file_sha256(annotation)}
    if prediction is not None:
        out["prediction"] = file_sha256(prediction)
    return out


def is_current(record: dict[str, Any] | None, hashes: dict[str, str]) -> bool:
    """Whether a saved record was computed from files with these :func:`input_hashes`."""
    return record is not None and record.get("inputs") == hashes


def _ours(out: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The configuration in ``out/config.json`` (``None`` when absent or unreadable) and
    the names of what ``out`` holds (entries starting with a dot left out)."""
    old = None
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        try:
            old = json.loads(cfg_path.read_text())
        except (OSError, ValueError):
            old = None
        if not isinstance(old, dict) or not {"data", "kind", "settings"} <= set(old):
            old = None
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) \
        if out.is_dir() else []
    return old, names


def prepare_results_folder(out: Path, config: dict[str, Any], *, overwrite: bool = False
                           ) -> Path:
    """Create ``out/per_image`` and write ``out/config.json``; return the ``per_image`` folder.

    ``out`` must be new or empty, or hold results of this package (its ``config.json``):
    of this configuration (resumed), or of another one (replaced only with ``overwrite``).

    Raises
    ------
    FileExistsError
        If ``out`` holds results of another configuration, or files that are not the
        results of an evaluation (e.g. a ``summary.md`` without a ``config.json``), and
        ``overwrite`` is false. With ``overwrite`` the old per-image records are
        deleted and the report files replaced; other files are left alone.
    NotADirectoryError
        If ``out`` is a file.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file; name a folder for the results")
    per_image = out / "per_image"
    cfg_path = out / "config.json"
    old, names = _ours(out)
    if old is None and names:
        if not overwrite:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise FileExistsError(
                f"{out} is not empty and holds no results of napari-useg evaluate (it holds "
                f"{shown}); use another --out or pass --overwrite to replace the report files "
                "in it")
        for p in per_image.glob("*.json") if per_image.is_dir() else ():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if old is not None:
        old.pop("napari_useg_version", None)
        if old != config:
            if not overwrite:
                diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise FileExistsError(
                    f"{out} holds results of a different evaluation (differs in {diff}); use "
                    f"another --out or pass --overwrite to discard them")
            for p in per_image.glob("*.json"):
                p.unlink()
    per_image.mkdir(exist_ok=True)
    write_text(cfg_path, json.dumps({**config, "napari_useg_version": __version__}, indent=1))
    return per_image
