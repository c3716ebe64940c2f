"""Checking and normalising input images before any computation starts.

All methods see the same thing: a ``float32`` array of shape ``(H, W, C)`` with
values in ``[0, 1]``. How it gets there:

* ``uint8`` (and ``bool``) images are divided by their type's maximum;
* other integer images (``uint16`` microscopy, ``int32``...) and floating-point
  images outside ``[0, 1]`` are scaled per channel between the 1st and 99.8th
  percentiles and clipped (robust to a few hot pixels);
* floating-point images already in ``[0, 1]`` are used as they are.

A 3-D array without ``channel_axis`` is read as RGB when its last axis has 3
entries (napari's ``rgb`` convention). A last axis of 4 is RGBA when the 4th
value is the same everywhere (an opaque alpha, dropped: it holds no information);
otherwise the 4th channel is data (RGB + infrared, say) and is kept, with a
warning that ``channel_axis=-1`` silences. Any other 3-D array needs ``channel_axis``.
Raw values are scaled in float64 before the cast to float32, so large offsets
(``uint32`` counts, float64 data at 1e8 or 1e300) keep their steps.

With ``spatial_dims=3`` the array is one volume: ``(Z, Y, X)``, or ``(Z, Y, X, C)`` once
``channel_axis`` (needed for a 4-D array) is moved last; the methods then see ``float32``
``(Z, Y, X, C)`` scaled by the same rules.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.transform import resize

__all__ = ["PreparedImage", "prepare_image", "PERCENTILES", "channels_last", "channel_ranges",
           "apply_ranges", "to_working_resolution", "layout_shape", "light_background",
           "plain_background", "objects_on_background", "subtract_background"]

#: Lower and upper percentiles of the robust per-channel scaling.
PERCENTILES = (1.0, 99.8)
MIN_SIDE = 4


@dataclass(frozen=True)
class PreparedImage:
    """A validated image ready for the methods.

    Attributes
    ----------
    data : numpy.ndarray
        ``float32`` array ``(H, W, C)`` (a volume: ``(Z, Y, X, C)``), values in ``[0, 1]``;
        for a method with ``lazy_volumes`` given a lazy volume, a
        :class:`~napari_useg.core.lazy_volume.LazyVolume` that reads such arrays one
        window at a time.
    is_rgb : bool
        True when the channels are red, green, blue (SLIC then works in CIELAB).
    source_dtype : numpy.dtype
        Data type of the array the user passed.
    """

    data: np.ndarray
    is_rgb: bool
    source_dtype: np.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        """Spatial shape ``(H, W)`` (a volume: ``(Z, Y, X)``)."""
        return self.data.shape[:-1]

    @property
    def n_channels(self) -> int:
        """Number of channels ``C``."""
        return self.data.shape[-1]

    @property
    def spatial_dims(self) -> int:
        """2 for an image, 3 for a volume."""
        return self.data.ndim - 1


def _as_array(image) -> np.ndarray:
    if image is None:
        raise TypeError("image is None; pass a 2-D or 3-D array")
    if isinstance(image, (str, bytes)):
        raise TypeError(
            "image must be an array, not a path; read it first "
            "(e.g. napari_useg.io.read_image(path))"
        )
    # dask arrays and other array-likes: materialise (per-image methods need all pixels)
    if hasattr(image, "compute") and not isinstance(image, np.ndarray):
        image = image.compute()
    try:
        arr = np.asarray(image)
    except Exception as exc:  # noqa: BLE001 - report any conversion failure clearly
        raise TypeError(f"image could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or arr.dtype == bool
    ):
        raise TypeError(f"image must hold numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError("complex images are not supported")
    return arr


def _rescale(x, lo, hi) -> np.ndarray:
    """``(x - lo) / (hi - lo)`` clipped to [0, 1], computed in float64, returned as float32.

    Subtracting before any cast to float32 keeps small steps on a large offset
    (``uint32`` counts near 3e9, ``int32`` ramps at 1e9, float64 data at 1e8); dividing
    everything by ``max(|lo|, |hi|)`` first keeps finite float64 values beyond the float32
    range (1e300) finite. ``lo`` and ``hi`` broadcast against ``x``'s last axis.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), 1.0)
    lo_s, hi_s = lo / scale, hi / scale
    span = hi_s - lo_s
    ok = span > 0
    out = np.asarray(x, dtype=np.float64) / scale - lo_s
    out /= np.where(ok, span, 1.0)
    np.clip(out, 0.0, 1.0, out=out)
    out = out.astype(np.float32)
    if not np.all(ok):
        out[..., ~np.broadcast_to(ok, out.shape[-1:])] = 0.0
    return out


def _scale_channel(ch: np.ndarray) -> np.ndarray:
    # percentiles in float64: numpy interpolates in the input type, where int16 overflows
    lo, hi = np.percentile(ch.astype(np.float64), PERCENTILES)
    if not hi > lo:
        lo, hi = float(ch.min()), float(ch.max())
    return _rescale(ch, lo, hi)


def _alpha_is_constant(alpha) -> bool:
    """Whether a 4th channel holds one value everywhere (an opaque alpha: no information)."""
    lo, hi = alpha.min(), alpha.max()
    if hasattr(lo, "compute"):  # dask: one pass over the alpha plane
        lo, hi = lo.compute(), hi.compute()
    return bool(lo == hi)


def _channels_to_last(arr, channel_axis, ndim: int, needs: str):
    """Check ``channel_axis`` against an array that must be ``ndim``-D; move it last."""
    if isinstance(channel_axis, bool) or not isinstance(channel_axis, (int, np.integer)):
        raise TypeError(f"channel_axis must be an integer or None, got {channel_axis!r}")
    if arr.ndim != ndim:
        raise ValueError(f"channel_axis={channel_axis} {needs}, got {arr.ndim}-D with shape "
                         f"{arr.shape}")
    if not -arr.ndim <= channel_axis < arr.ndim:
        raise ValueError(
            f"channel_axis={channel_axis} is out of range for an array of shape {arr.shape}"
        )
    return np.moveaxis(arr, channel_axis, -1)


def _layout_volume(arr, channel_axis: int | None):
    """Validate a volume's dimensions and move channels last: ``(Z, Y, X, C)``."""
    if channel_axis is not None:
        arr = _channels_to_last(arr, channel_axis, 4, "with spatial_dims=3 needs a 4-D array "
                                                      "(volume + channels)")
    elif arr.ndim == 3:
        arr = arr[..., None]
    else:
        raise ValueError(
            f"a volume (spatial_dims=3) must be 3-D (Z, Y, X), or 4-D with channel_axis; got "
            f"{arr.ndim}-D with shape {arr.shape}"
        )
    spatial = tuple(int(n) for n in arr.shape[:3])
    if min(spatial) < MIN_SIDE:
        raise ValueError(
            f"volume is too small: spatial shape {spatial}, need at least {MIN_SIDE} voxels "
            "per side"
        )
    if arr.shape[-1] > 64:
        raise ValueError(
            f"volume has {arr.shape[-1]} channels; at most 64 are supported (is channel_axis "
            "right?)"
        )
    return arr, False


def _layout(arr, channel_axis: int | None, spatial_dims: int = 2):
    """Validate dimensions and move channels last (works lazily on dask arrays too)."""
    if spatial_dims == 3:
        return _layout_volume(arr, channel_axis)
    if spatial_dims != 2:
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    is_rgb = False
    if channel_axis is not None:
        arr = _channels_to_last(arr, channel_axis, 3, "needs a 3-D array (2-D image + channels)")
        is_rgb = arr.shape[-1] == 3
    elif arr.ndim == 2:
        arr = arr[..., None]
    elif arr.ndim == 3:
        if arr.shape[-1] not in (3, 4):
            raise ValueError(
                f"3-D image of shape {arr.shape} is ambiguous: pass channel_axis "
                "(e.g. channel_axis=0 for a (C, H, W) stack of channels); only a last axis "
                "of 3 or 4 is read as RGB(A) by default"
            )
        is_rgb = True
        if arr.shape[-1] == 4:
            if _alpha_is_constant(arr[..., 3]):
                arr = arr[..., :3]  # RGBA with a constant alpha: nothing is lost
            else:
                warnings.warn(
                    f"image of shape {tuple(arr.shape)} has 4 values per pixel and the 4th is "
                    "not a constant alpha, so it is kept as a 4th channel (e.g. RGB + "
                    "infrared); pass channel_axis=-1 to say so, or drop it yourself if it is "
                    "a transparency mask", UserWarning, stacklevel=4)
                is_rgb = False
    else:
        raise ValueError(
            f"image must be 2-D (grayscale) or 3-D (with channels), got {arr.ndim}-D with "
            f"shape {arr.shape}; segment stacks slice by slice"
        )
    h, w, c = arr.shape
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(
            f"image is too small: spatial shape {(h, w)}, need at least {MIN_SIDE} pixels per side"
        )
    if c > 64:
        raise ValueError(
            f"image has {c} channels; at most 64 are supported (is channel_axis right?)"
        )
    return arr, is_rgb


def layout_shape(image, channel_axis: int | None = None,
                 spatial_dims: int = 2) -> tuple[int, ...] | None:
    """``(H, W, C)`` an image will have once prepared, from its shape alone (no pixel read).

    A volume (``spatial_dims=3``): ``(Z, Y, X, C)``. ``None`` when the shape is not a valid
    layout (:func:`prepare_image` then says why). Used to estimate a run's memory before
    any copy of the image is made.
    """
    shape = tuple(int(n) for n in getattr(image, "shape", np.shape(image)))
    if spatial_dims == 3:
        if channel_axis is None:
            return (*shape, 1) if len(shape) == 3 else None
        if len(shape) != 4 or isinstance(channel_axis, bool) or \
                not isinstance(channel_axis, (int, np.integer)) or not -4 <= channel_axis < 4:
            return None
        rest = tuple(n for i, n in enumerate(shape) if i != channel_axis % 4)
        return (*rest, shape[channel_axis])
    if channel_axis is not None:
        if len(shape) != 3 or isinstance(channel_axis, bool) or \
                not isinstance(channel_axis, (int, np.integer)) or \
                not -3 <= channel_axis < 3:
            return None
        c = shape[channel_axis]
        h, w = (n for i, n in enumerate(shape) if i != channel_axis % 3)
        return h, w, c
    if len(shape) == 2:
        return shape[0], shape[1], 1
    if len(shape) == 3 and shape[-1] in (3, 4):
        return shape[0], shape[1], shape[-1]
    return None


def prepare_image(image, channel_axis: int | None = None,
                  spatial_dims: int = 2) -> PreparedImage:
    """Validate an image and bring it to ``float32`` ``(H, W, C)`` in ``[0, 1]``.

    Parameters
    ----------
    image : array_like
        2-D grayscale, 2-D RGB/RGBA (last axis 3 or 4), or 2-D multichannel with
        ``channel_axis``; with ``spatial_dims=3`` a ``(Z, Y, X)`` volume, or 4-D with
        ``channel_axis``. NumPy or dask arrays.
    channel_axis : int, optional
        Axis holding the channels (negative values count from the end).
    spatial_dims : {2, 3}
        3: the array is one volume, prepared as ``(Z, Y, X, C)``.

    Returns
    -------
    PreparedImage

    Raises
    ------
    TypeError
        If ``image`` is not numeric array data.
    ValueError
        If it is empty, has the wrong number of dimensions, a bad ``channel_axis``,
        NaN or infinite values, or is smaller than 4 pixels on a side.

    Examples
    --------
    >>> import numpy as np
    >>> prepare_image(np.zeros((8, 8), np.uint8)).data.shape
    (8, 8, 1)
    >>> prepare_image(np.zeros((5, 8, 8), np.uint8), spatial_dims=3).data.shape
    (5, 8, 8, 1)
    """
    arr = _as_array(image)
    if arr.size == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    arr, is_rgb = _layout(arr, channel_axis, spatial_dims)
    c = arr.shape[-1]
    src_dtype = arr.dtype
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("image contains NaN or infinite values")
        if arr.min() >= 0.0 and arr.max() <= 1.0:
            data = arr.astype(np.float32)
        else:
            data = np.stack([_scale_channel(arr[..., i]) for i in range(c)], axis=-1)
    elif arr.dtype == bool:
        data = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        data = arr.astype(np.float32) / np.float32(255.0)
    else:
        data = np.stack([_scale_channel(arr[..., i]) for i in range(c)], axis=-1)
    return PreparedImage(np.ascontiguousarray(data, dtype=np.float32), is_rgb, src_dtype)


# --- fixed normalisation (dataset-level models) -------------------------------------------


def channels_last(image, channel_axis: int | None = None, spatial_dims: int = 2):
    """Validate an image's layout and move its channels last, without reading its pixels.

    Same layout rules as :func:`prepare_image` (2-D grayscale, RGB(A) last axis,
    or ``channel_axis``; a volume with ``spatial_dims=3``), but dask (and other lazy)
    arrays stay lazy, so a tiled prediction can read one tile at a time.

    Parameters
    ----------
    image : array_like
        NumPy, dask or other array with ``shape``, ``dtype`` and slicing.
    channel_axis : int, optional
        Axis holding the channels.
    spatial_dims : {2, 3}
        3: a volume, ``(Z, Y, X)`` or 4-D with ``channel_axis``.

    Returns
    -------
    array : array_like
        ``(H, W, C)`` view of the raw values (alpha dropped); ``(Z, Y, X, C)`` for a
        volume.
    is_rgb : bool
        True when the channels are red, green, blue.

    Raises
    ------
    TypeError, ValueError
        As :func:`prepare_image`, for non-numeric data or a bad layout.
    """
    if image is None or isinstance(image, (str, bytes)):
        raise TypeError(f"image must be an array, got {type(image).__name__}")
    if not (hasattr(image, "shape") and hasattr(image, "dtype") and hasattr(image, "__getitem__")):
        image = _as_array(image)
    dtype = np.dtype(image.dtype)
    if dtype.kind == "O" or not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
        raise TypeError(f"image must hold numbers, got dtype {dtype}")
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError("complex images are not supported")
    if 0 in tuple(image.shape):
        raise ValueError(f"image is empty (shape {tuple(image.shape)})")
    return _layout(image, channel_axis, spatial_dims)


def _sample(arr, max_samples: int) -> np.ndarray:
    """``(n, C)`` values of a strided subsample of an ``(H, W, C)`` (or ``(Z, Y, X, C)``)
    array: the same step along every spatial axis, all values when small."""
    spatial = [int(n) for n in arr.shape[:-1]]
    ratio = float(np.prod(spatial, dtype=np.float64)) / max(1, max_samples)
    step = max(1, int(np.ceil(ratio ** (1.0 / len(spatial)))))
    sub = np.asarray(arr[(slice(None, None, step),) * len(spatial)])
    return sub.reshape(-1, sub.shape[-1])


def channel_ranges(arrays, max_samples: int = 4_000_000, *,
                   percentiles: tuple[float, float] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(lo, hi)`` in raw units that map a set of images to ``[0, 1]``.

    The rules of :func:`prepare_image`, applied to the pooled pixels of all
    ``arrays``: ``uint8`` gives ``(0, 255)``, ``bool`` ``(0, 1)``, floating point
    already in ``[0, 1]`` ``(0, 1)``; anything else the 1st and 99.8th
    percentiles per channel (the minimum and maximum when those coincide). For a
    single NumPy image of at most ``max_samples`` pixels,
    ``apply_ranges(arr, *channel_ranges([arr]))`` equals ``prepare_image(arr).data``;
    larger or lazy images are subsampled on a regular grid.

    With ``percentiles`` given, every data type (``uint8`` and ``[0, 1]``
    floats included) is stretched between those percentiles per channel: the
    per-image normalisation of dataset-level models, which maps a dim and a
    bright exposure of the same scene to the same range.

    Parameters
    ----------
    arrays : sequence of array_like
        ``(H, W, C)`` raw images (see :func:`channels_last`), same ``C`` and dtype.
    max_samples : int
        Pixels used in total for the percentiles.
    percentiles : tuple of float, optional
        ``(low, high)`` percentiles (``0 <= low < high <= 100``) used whatever
        the data type; default: the data-type rules above.

    Returns
    -------
    lo, hi : numpy.ndarray
        ``float64`` arrays of length ``C``.

    Raises
    ------
    ValueError
        If the images have different data types or channel counts, or hold NaN/inf.
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("no images given")
    dtypes = sorted({str(np.dtype(a.dtype)) for a in arrays})
    if len(dtypes) > 1:
        raise ValueError(
            f"images have different data types {dtypes}; one normalisation cannot serve them "
            "all: convert them to one type or use per-image normalisation"
        )
    chans = sorted({int(a.shape[-1]) for a in arrays})
    if len(chans) > 1:
        raise ValueError(f"images have different numbers of channels {chans}")
    c = chans[0]
    dtype = np.dtype(dtypes[0])
    if percentiles is not None:
        pct = tuple(float(q) for q in percentiles)
        if len(pct) != 2 or not 0.0 <= pct[0] < pct[1] <= 100.0:
            raise ValueError(f"percentiles must be (low, high) with 0 <= low < high <= 100, "
                             f"got {percentiles!r}")
    else:
        pct = PERCENTILES
        if dtype == np.dtype(np.uint8):
            return np.zeros(c), np.full(c, 255.0)
        if dtype.kind == "b":
            return np.zeros(c), np.ones(c)
    per = max(1, max_samples // len(arrays))
    samples = np.concatenate([_sample(a, per) for a in arrays], axis=0)
    if np.issubdtype(dtype, np.floating):
        if not np.isfinite(samples).all():
            raise ValueError("image contains NaN or infinite values")
        if percentiles is None and samples.min() >= 0.0 and samples.max() <= 1.0:
            return np.zeros(c), np.ones(c)
    samples = samples.astype(np.float64)  # percentiles interpolate in the input type
    lo = np.empty(c)
    hi = np.empty(c)
    for i in range(c):  # loop over channels only
        ch = samples[:, i]
        a, b = np.percentile(ch, pct)
        if not b > a:
            a, b = float(ch.min()), float(ch.max())
        lo[i], hi[i] = a, b
    return lo, hi


def apply_ranges(arr, lo, hi) -> np.ndarray:
    """Scale raw ``(H, W, C)`` values to ``float32`` in ``[0, 1]`` with given per-channel ranges.

    ``(x - lo) / (hi - lo)``, clipped; channels with ``hi <= lo`` become 0.

    Parameters
    ----------
    arr : array_like
        ``(H, W, C)`` raw values (a tile of an image, for instance).
    lo, hi : array_like
        Per-channel ranges from :func:`channel_ranges` (stored in a model).

    Returns
    -------
    numpy.ndarray
        ``float32`` ``(H, W, C)``.
    """
    x = np.asarray(arr)
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if lo.shape != (x.shape[-1],) or hi.shape != (x.shape[-1],):
        raise ValueError(
            f"ranges for {lo.shape[0] if lo.ndim else 1} channel(s) given for an image with "
            f"{x.shape[-1]} channel(s)"
        )
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"normalisation ranges must be finite, got lo={lo.tolist()}, "
                         f"hi={hi.tolist()}")
    return _rescale(x, lo, hi)


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


def light_background(arr, lo, hi, max_samples: int = 250_000) -> bool:
    """Whether an image scaled with ``(lo, hi)`` has a light background (median above 0.5).

    The rule of the ``"per_image_dark"`` normalisation: such images (brightfield,
    stained tissue) are inverted so that every image of a collection has a dark
    background, as fluorescence has. The median of the channel mean is taken on a
    regular subsample (a lazy image is read only there).

    Examples
    --------
    >>> light = np.full((8, 8, 1), 200, np.uint8); light[2:4, 2:4] = 20
    >>> light_background(light, [0], [255]), light_background(255 - light, [0], [255])
    (True, False)
    """
    return bool(np.median(_scaled_grey(arr, lo, hi, max_samples)) > 0.5)


def _scaled_grey(arr, lo, hi, max_samples: int) -> np.ndarray:
    """Channel mean of ``arr`` scaled with ``(lo, hi)``, on a regular subsample."""
    h, w = arr.shape[:2]
    step = max(1, int(np.sqrt(h * w / max_samples)))
    return apply_ranges(np.asarray(arr[::step, ::step]), lo, hi).mean(axis=-1)


#: Largest median absolute deviation from the median (channel mean, image scaled to its
#: 1st-99.8th percentiles) of an image that is mostly one plain background.
BACKGROUND_SPREAD = 0.08


def plain_background(arr, lo, hi, max_samples: int = 250_000) -> bool:
    """Whether most of an image scaled with ``(lo, hi)`` is one plain background.

    True when half of its pixels lie within :data:`BACKGROUND_SPREAD` of its median
    (channel mean, on a regular subsample): fluorescence, brightfield and stained
    tissue with sparse cells or nuclei are; land cover and natural scenes are not.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> nuclei = np.full((64, 64, 1), 10.0); nuclei[8:20, 8:20] = 200
    >>> scene = rng.uniform(0, 255, (64, 64, 1))
    >>> plain_background(nuclei, [10.0], [200.0]), plain_background(scene, [0.0], [255.0])
    (True, False)
    """
    g = _scaled_grey(arr, lo, hi, max_samples)
    return bool(np.median(np.abs(g - np.median(g))) < BACKGROUND_SPREAD)


def objects_on_background(arrays) -> bool:
    """Whether a collection holds objects on a plain background (nuclei, cells).

    The rule of the ``"auto"`` normalisation: more than half of the images, each
    scaled to its own 1st-99.8th percentiles, are mostly one plain background
    (:func:`plain_background`).

    Examples
    --------
    >>> cells = np.zeros((32, 32, 1)); cells[4:9, 4:9] = 1.0
    >>> objects_on_background([cells, 1.0 - cells])
    True
    """
    votes = []
    for a in arrays:
        lo, hi = channel_ranges([a], percentiles=PERCENTILES)
        votes.append(plain_background(a, lo, hi))
    return 2 * sum(votes) > len(votes)


def subtract_background(values: np.ndarray, size: tuple[int, ...], dark: bool = False
                        ) -> np.ndarray:
    """``values`` minus their background: a grey opening (closing where ``dark``) of ``size``.

    A white top-hat (black top-hat, negated, where the objects are dark), as a rolling
    ball does: structures smaller than the window stay, uneven illumination goes.

    Examples
    --------
    >>> x = np.zeros((9, 9)); x[:, 5:] = 0.5; x[2, 2] = 1.0
    >>> subtract_background(x, (3, 3))[[2, 4], [2, 7]].tolist()  # the spot stays, the step goes
    [1.0, 0.0]
    """
    morph = ndi.grey_closing if dark else ndi.grey_opening
    return values - morph(values, size=size, mode="nearest")
