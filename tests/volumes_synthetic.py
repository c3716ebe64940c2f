"""Small synthetic volumes for the volume tests: anisotropic nuclei-like blobs."""

from __future__ import annotations

import numpy as np


def blob_volume(shape=(16, 48, 48), spacing=(2.5, 1.0, 1.0), radius=6.0, seed=0,
                centres=None, noise=0.08):
    """``uint8`` volume of bright balls (physical ``radius``) on a dark noisy background.

    Returns the volume and the true objects (``int32``, 0 = background). Balls are round
    in physical units, so with ``spacing[0] > 1`` they are flat in voxels.
    """
    rng = np.random.default_rng(seed)
    if centres is None:
        centres = [(0.5, 0.28, 0.28), (0.5, 0.28, 0.72), (0.5, 0.72, 0.3), (0.5, 0.7, 0.72)]
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)],
                        indexing="ij")
    extent = [n * s for n, s in zip(shape, spacing, strict=True)]
    truth = np.zeros(shape, np.int32)
    for i, c in enumerate(centres, start=1):
        d2 = sum((g - f * e) ** 2 for g, f, e in zip(grids, c, extent, strict=True))
        truth[d2 <= radius**2] = i
    img = 0.15 + 0.6 * (truth > 0) + rng.normal(0, noise, shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8), truth
