"""The Python entry points: :func:`segment` and its iterator form :func:`iter_segment`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .image import prepare_image
from .labels import sequential
from .progress import Progress
from .registry import RunContext, get_method

__all__ = ["segment", "iter_segment"]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    return int(seed)


def iter_segment(
    image,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    preview_every: int = 10,
    **params: Any,
) -> Iterator[Progress]:
    """Run a method step by step, yielding :class:`~napari_useg.progress.Progress` snapshots.

    Everything is validated before this function returns, so bad input raises
    here, not at the first ``next()``. Stop early by simply not asking for the
    next snapshot (or calling ``.close()`` on the iterator).

    Parameters
    ----------
    image : array_like
        2-D grayscale, RGB(A), or multichannel with ``channel_axis``.
    method : str
        A name from :func:`napari_useg.list_methods`.
    preset : str, optional
        A named set of parameter values (e.g. ``"paper"`` or ``"fast"``);
        the method's default preset when omitted.
    channel_axis : int, optional
        Axis of ``image`` holding channels.
    seed : int
        Seed of every random choice; same seed, input and device give the same labels.
    device : str
        ``"auto"`` (CUDA, then MPS, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    preview_every : int
        Attach the current label map to every ``preview_every``-th snapshot (0: final only).
    **params
        Method parameters (override the preset), and extra inputs such as ``scribbles``.

    Returns
    -------
    iterator of Progress
        The last snapshot has ``done=True`` and ``labels`` set (``int32``, ``1..n``).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((32, 32), np.uint8); img[:, 16:] = 255
    >>> for snap in iter_segment(img, "kmeans", n_clusters=2, window=1):
    ...     pass
    >>> snap.done, snap.labels.max()
    (True, 2)
    """
    m = get_method(method)
    prepared = prepare_image(image, channel_axis)
    input_names = {i.name for i in m.inputs}
    inputs = {k: params.pop(k) for k in list(params) if k in input_names}
    p = m.build(preset, params)
    inputs = m.check_inputs(inputs, prepared.shape)
    seed = _check_seed(seed)
    if isinstance(preview_every, bool) or not isinstance(preview_every, (int, np.integer)):
        raise TypeError(f"preview_every must be an integer, got {preview_every!r}")
    if preview_every < 0:
        raise ValueError(f"preview_every must be >= 0, got {preview_every}")
    if m.uses_torch:
        from .device import resolve_device

        dev = resolve_device(device)
    else:
        import torch

        if device not in (None, "auto", "cpu"):
            from .device import resolve_device

            resolve_device(device)  # still reject a missing device clearly
        dev = torch.device("cpu")
    ctx = RunContext(seed=seed, device=dev, preview_every=int(preview_every), inputs=inputs)
    return _finalise(m.run(prepared, p, ctx), prepared.shape)


def _finalise(snaps: Iterator[Progress], shape: tuple[int, int]) -> Iterator[Progress]:
    t0 = time.perf_counter()
    last: Progress | None = None
    try:
        for snap in snaps:
            snap.elapsed = time.perf_counter() - t0
            if snap.labels is not None:
                if snap.labels.shape != tuple(shape):  # pragma: no cover - method bug
                    raise RuntimeError(
                        f"method returned labels of shape {snap.labels.shape}, expected {shape}"
                    )
                snap.labels = sequential(snap.labels)
                if snap.n_labels is None:
                    snap.n_labels = int(snap.labels.max())
            last = snap
            if snap.done:
                yield snap
                return
            yield snap
    finally:
        close = getattr(snaps, "close", None)
        if close is not None:
            close()
    if last is None or last.labels is None:  # pragma: no cover - method bug
        raise RuntimeError("method finished without producing labels")
    last.done = True
    yield last


def segment(
    image,
    method: str = "kanezaki",
    *,
    preset: str | None = None,
    channel_axis: int | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    **params: Any,
) -> np.ndarray:
    """Segment one image without supervision.

    Parameters
    ----------
    image : array_like
        2-D grayscale, 2-D RGB/RGBA (last axis 3 or 4), or 2-D multichannel with
        ``channel_axis`` (e.g. RGB + infrared); ``uint8``, ``uint16`` or float.
    method : str
        A name from :func:`napari_useg.list_methods` (``"kanezaki"``, ``"kmeans"``,
        ``"felzenszwalb"``, ``"slic"``, ...).
    preset : str, optional
        Named parameter set (``"paper"`` or ``"fast"`` for learning methods).
    channel_axis : int, optional
        Axis holding the channels.
    seed : int
        Random seed; the same seed, input and device give identical labels.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    progress : bool
        Print one line per snapshot to stderr.
    **params
        Method parameters (see ``napari-useg methods``), overriding the preset.

    Returns
    -------
    numpy.ndarray
        ``int32`` labels ``1..n`` with the image's spatial shape.

    Raises
    ------
    ValueError, TypeError
        For bad images, unknown methods/presets/parameters or out-of-range values,
        before any computation starts.

    Examples
    --------
    >>> import numpy as np
    >>> from napari_useg import segment
    >>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = (200, 30, 30)
    >>> labels = segment(img, method="kmeans", n_clusters=2, window=1)
    >>> labels.shape, int(labels.max())
    ((32, 32), 2)
    """
    snap = None
    for snap in iter_segment(
        image, method, preset=preset, channel_axis=channel_axis, seed=seed, device=device,
        preview_every=0, **params,
    ):
        if progress:
            import sys

            print(f"[{method}] {snap}", file=sys.stderr)
    assert snap is not None and snap.labels is not None
    return snap.labels
