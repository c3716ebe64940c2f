"""Prediction of large images in overlapping tiles with a fixed network.

The image is seen as if it were extended without end by mirror reflection
(``numpy.pad(mode="reflect")``). Each tile is a *core* of ``tile_size`` pixels
plus a ``margin`` on every side read from that reflected image; the network
labels the whole window and only the core is kept. Because every window is a
crop of the same reflected image and window origins lie on a grid of
``multiple`` pixels (so max-pooling and up-sampling grids line up), a network
whose receptive field reaches at most ``margin`` pixels gives exactly the labels
it would give on the whole image at once: there are no seams to blend away.
Memory is bounded by one window (plus the ``int32`` label map of the result);
lazy arrays (dask, zarr) are read one window at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["reflect_index", "read_window", "tile_starts", "tile_windows", "plan_windows",
           "predict_tiled",
           "round_up", "clipped_windows"]


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is ``>= value``."""
    return -(-int(value) // int(multiple)) * int(multiple)


def reflect_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer coordinates into ``[0, n)`` by repeated mirror reflection.

    Matches ``numpy.pad(mode="reflect")`` (the edge pixel is not repeated):
    ``..., 2, 1, 0, 1, 2, ..., n-2, n-1, n-2, ...``.

    Examples
    --------
    >>> reflect_index(np.arange(-3, 7), 4).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    idx = np.asarray(idx, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    m = np.mod(idx, period)
    return np.where(m >= n, period - m, m)


def read_window(image, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Raw values of rows ``y0:y1`` and columns ``x0:x1`` of the reflected ``(H, W, C)`` image.

    Only the rows and columns actually needed are read from ``image`` (one
    slice), so a dask or zarr array stays lazy outside the window.
    """
    h, w = int(image.shape[0]), int(image.shape[1])
    rows = reflect_index(np.arange(y0, y1), h)
    cols = reflect_index(np.arange(x0, x1), w)
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    c0, c1 = int(cols.min()), int(cols.max()) + 1
    block = np.asarray(image[r0:r1, c0:c1])
    if hasattr(block, "compute"):  # pragma: no cover - array-likes returning lazy slices
        block = np.asarray(block.compute())
    return block[(rows - r0)[:, None], (cols - c0)[None, :]]


def tile_starts(length: int, tile: int) -> list[int]:
    """Start coordinates of the tile cores along one axis (cores of ``tile`` px, last shorter)."""
    return list(range(0, int(length), int(tile)))


def tile_windows(h: int, w: int, tile: int, margin: int,
                 multiple: int) -> Iterator[tuple[int, int, int, int, int, int, int, int]]:
    """``(ys, ye, xs, xe, wy0, wy1, wx0, wx1)`` per tile: its core and the window read for it.

    Cores of ``tile`` px (the last ones shorter), windows extended by ``margin`` on every
    side and rounded up to a ``multiple`` of the network's down-sampling factor.
    """
    for ys in tile_starts(h, tile):
        ye = min(ys + tile, h)
        for xs in tile_starts(w, tile):
            xe = min(xs + tile, w)
            wy1 = ys - margin + round_up(ye - ys + 2 * margin, multiple)
            wx1 = xs - margin + round_up(xe - xs + 2 * margin, multiple)
            yield ys, ye, xs, xe, ys - margin, wy1, xs - margin, wx1


def plan_windows(h: int, w: int, tile_size: int, margin: int,
                 multiple: int) -> list[tuple[int, int, int, int, int, int, int, int]]:
    """The tiles :func:`predict_tiled` labels an ``h x w`` image with (see :func:`tile_windows`).

    ``tile_size`` is rounded down and ``margin`` up to a multiple of ``multiple``.

    Raises
    ------
    ValueError
        For a non-positive ``tile_size`` or ``multiple``, or a negative ``margin``.
    """
    if isinstance(tile_size, bool) or int(tile_size) < 1:
        raise ValueError(f"tile_size must be a positive integer, got {tile_size!r}")
    if isinstance(multiple, bool) or int(multiple) < 1:
        raise ValueError(f"multiple must be a positive integer, got {multiple!r}")
    if isinstance(margin, bool) or int(margin) < 0:
        raise ValueError(f"margin must be >= 0, got {margin!r}")
    multiple = int(multiple)
    tile = max(multiple, (int(tile_size) // multiple) * multiple)
    return list(tile_windows(int(h), int(w), tile, round_up(int(margin), multiple), multiple))


def predict_tiled(
    image,
    fn: Callable[[np.ndarray], np.ndarray],
    *,
    tile_size: int = 512,
    margin: int = 32,
    multiple: int = 1,
    normalise: Callable[[np.ndarray], np.ndarray] | None = None,
    dtype=np.int32,
    on_tile: Callable[[int, int], None] | None = None,
    with_box: bool = False,
) -> np.ndarray:
    """Label a (possibly huge, possibly lazy) image tile by tile.

    Parameters
    ----------
    image : array_like
        ``(H, W, C)`` raw values; NumPy, dask or anything sliceable.
    fn : callable
        ``fn(window) -> labels``: ``window`` is a ``float32`` ``(h, w, C)`` array
        (after ``normalise``) whose sides are multiples of ``multiple``; it returns
        integer labels of shape ``(h, w)``.
    tile_size : int
        Side of a tile's core (rounded down to a multiple of ``multiple``).
    margin : int
        Context read around each core and discarded after labelling (rounded up
        to a multiple of ``multiple``). Make it at least the receptive-field
        radius of ``fn`` for results identical to a whole-image prediction.
    multiple : int
        Window sides and origins are multiples of this (the network's total
        down-sampling factor).
    normalise : callable, optional
        Applied to each raw window before ``fn`` (e.g. fixed per-channel ranges).
    dtype : numpy dtype
        Type of the returned label map.
    on_tile : callable, optional
        Called as ``on_tile(done, total)`` after each tile (progress reporting).
    with_box : bool
        Call ``fn(window, box)`` with the tile's ``(ys, ye, xs, xe, wy0, wy1, wx0, wx1)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` labels.

    Raises
    ------
    ValueError
        For a non-positive ``tile_size`` or ``multiple``, or a negative ``margin``.
    """
    h, w = int(image.shape[0]), int(image.shape[1])
    out = np.empty((h, w), dtype=dtype)
    wins = plan_windows(h, w, tile_size, margin, multiple)
    for i, box in enumerate(wins, 1):
        ys, ye, xs, xe, wy0, wy1, wx0, wx1 = box
        raw = read_window(image, wy0, wy1, wx0, wx1)
        win = normalise(raw) if normalise is not None else raw.astype(np.float32)
        labels = np.asarray(fn(win, box) if with_box else fn(win))
        if labels.shape != win.shape[:2]:
            raise RuntimeError(
                f"tile function returned shape {labels.shape} for a window of {win.shape[:2]}"
            )
        out[ys:ye, xs:xe] = labels[ys - wy0: ye - wy0, xs - wx0: xe - wx0]
        if on_tile is not None:
            on_tile(i, len(wins))
    return out


def clipped_windows(shape: tuple[int, ...], tile: tuple[int, ...], halo: int
                    ) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """Tiles of an N-D array for a zero-padded network: ``(window, core_in_window)`` slices.

    Cores of ``tile`` (the last ones shorter) cover the array; each window adds ``halo``
    on every side, clipped to the array. A network whose receptive field reaches at most
    ``halo`` voxels and pads with zeros at the array's faces (``padding=1`` convolutions)
    gives on each core exactly what it gives on the whole array: where the window is
    clipped, the window's face is the array's face.

    Examples
    --------
    >>> [(w[0].start, w[0].stop, c[0].start, c[0].stop)
    ...  for w, c in clipped_windows((10,), (4,), 1)]
    [(0, 5, 0, 4), (3, 9, 1, 5), (7, 10, 1, 3)]
    """
    starts = [range(0, n, t) for n, t in zip(shape, tile, strict=True)]
    for origin in np.ndindex(*[len(s) for s in starts]):
        window, core = [], []
        for axis, i in enumerate(origin):
            n, t = int(shape[axis]), int(tile[axis])
            s0 = i * t
            s1 = min(s0 + t, n)
            w0, w1 = max(0, s0 - halo), min(n, s1 + halo)
            window.append(slice(w0, w1))
            core.append(slice(s0 - w0, s1 - w0))
        yield tuple(window), tuple(core)
