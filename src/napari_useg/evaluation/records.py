"""The results folder of an evaluation: per-image records (resume) and its ``config.json``.

Each finished image is saved as ``per_image/<id>.json`` (scores) and
``per_image/<id>.npz`` (segment match arrays), atomically; a rerun with the same
configuration finds them and skips those images, so an interrupted run resumes where it
stopped. ``config.json`` says what the folder holds: another configuration is refused
unless ``overwrite`` (then the old records are discarded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from napari_useg.core.atomic import atomic_write
from napari_useg.core.version import __version__

__all__ = ["RECORD_VERSION", "write_text", "save_record", "load_record", "load_arrays",
           "prepare_results_folder"]

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


def prepare_results_folder(out: Path, config: dict[str, Any], *, overwrite: bool = False
                           ) -> Path:
    """Create ``out/per_image`` and write ``out/config.json``; return the ``per_image`` folder.

    Raises
    ------
    FileExistsError
        If ``out`` holds results of another configuration and ``overwrite`` is false
        (with ``overwrite`` the old per-image records are deleted).
    """
    out.mkdir(parents=True, exist_ok=True)
    per_image = out / "per_image"
    cfg_path = out / "config.json"
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
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
