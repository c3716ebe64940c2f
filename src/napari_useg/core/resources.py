"""Memory a run will need, estimated from the shape and parameters before it starts.

A method declares an estimate (:attr:`napari_useg.core.registry.Method.memory`); the
front doors compare it with the memory free on the chosen device and refuse at once,
with both numbers, instead of failing at allocation minutes later with a bare
``MemoryError``.
"""

from __future__ import annotations

import numpy as np
import psutil
import torch

__all__ = ["available_bytes", "check_fits", "pixel_memory", "patch_memory", "format_bytes"]


def format_bytes(n: float) -> str:
    """``1.5 GiB``-style text."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def available_bytes(device: torch.device | None = None) -> int:
    """Memory free now: on the GPU for a CUDA device, else the system's available RAM."""
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def check_fits(needed: int, what: str, device: torch.device | None = None) -> None:
    """Raise ``MemoryError`` naming both numbers when ``needed`` bytes exceed what is free.

    Parameters
    ----------
    needed : int
        Estimated peak bytes of the run.
    what : str
        What would run (named in the message), e.g. ``"kmeans on a 20000x20000 image"``.
    device : torch.device, optional
        Where it runs (GPU memory is checked for CUDA devices).
    """
    free = available_bytes(device)
    if needed > free:
        where = f"on {device}" if device is not None and device.type == "cuda" else "in RAM"
        raise MemoryError(
            f"{what} needs about {format_bytes(needed)} but only {format_bytes(free)} is free "
            f"{where}; use a smaller image or working resolution (max_side), fewer clusters or "
            "a smaller window, or a saved model's tiled prediction"
        )


def pixel_memory(shape: tuple[int, ...], n_channels: int, copies: float = 16.0) -> int:
    """A per-pixel estimate for classical methods: ``copies`` float32 images of the input.

    ``shape`` is ``(H, W)`` or, for a volume, ``(Z, Y, X)``.
    """
    return int(np.prod(shape, dtype=np.int64) * max(1, n_channels) * 4 * copies)


def patch_memory(shape: tuple[int, ...], n_channels: int, patch: tuple[int, ...],
                 per_voxel: int, *, volume_copies: float = 24.0) -> int:
    """Peak bytes of a volume method that trains and predicts on patches.

    The network's ``per_voxel`` bytes (activations and gradients) are paid on one patch
    (``patch`` voxels, halo included) only; the volume itself costs ``volume_copies``
    bytes per voxel per channel (float32 data, supervoxel ids, labels, vote counts).

    Examples
    --------
    >>> patch_memory((100, 100, 100), 1, (48, 48, 48), 1000) < 200 * 2**20
    True
    """
    n_volume = int(np.prod(shape, dtype=np.int64))
    n_patch = int(min(np.prod(patch, dtype=np.int64), n_volume))
    return int(n_patch * per_voxel + n_volume * (volume_copies + 4 * max(1, n_channels)))
