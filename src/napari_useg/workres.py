"""Working resolution: shrink an image so its longest side is at most ``max_side``."""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

__all__ = ["to_working_resolution"]


def to_working_resolution(data: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Resize ``(H, W, C)`` data (anti-aliased) so that ``max(H, W) <= max_side``.

    Parameters
    ----------
    data : numpy.ndarray
        ``(H, W, C)`` float image.
    max_side : int
        Longest side allowed; 0 keeps full resolution.

    Returns
    -------
    resized : numpy.ndarray
        ``float32`` ``(h, w, C)`` image (``data`` itself when no resizing is needed).
    scale : float
        ``h / H`` (1.0 when unchanged).
    """
    h, w = data.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return data, 1.0
    scale = max_side / max(h, w)
    new = (max(4, round(h * scale)), max(4, round(w * scale)))
    out = resize(data, new + data.shape[2:], order=1, anti_aliasing=True, preserve_range=True)
    return np.ascontiguousarray(out, dtype=np.float32), new[0] / h
